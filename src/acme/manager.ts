/**
 * Automatic certificates (`tls.acme` on an `https` listener), through acme-client (RFC 8555): for each
 * set of domains, a certificate is ordered when there is none (or it does not name every domain), and
 * renewed `renewBefore` its expiry. The protocol is acme-client's; what is ours is when to order, where
 * things are kept, and serving the http-01 answers (challenges.ts).
 *
 * - Storage (`tls.acme.storage`, made with mode 0700): `account.key` (the ACME account, made once) and
 *   `account.json` (its URL at the directory),
 *   `certs/<first domain>/certificate.pem` (the chain and a fresh key per order, in one file, so that
 *   one rename replaces both), `challenges/<token>` while
 *   an order runs. Files are written whole to a temporary name and renamed, so a reader never sees half.
 * - One process orders: the load balancer, or the supervisor when there are workers; every process
 *   serves (they read the files). A lock file (`<storage>/certs/<domain>/.lock`) keeps two instances
 *   that share a storage directory from ordering the same certificate at once; a lock older than ten
 *   minutes is taken over.
 * - While an order or renewal runs, the certificate already there keeps serving. `onIssued` is called
 *   once the new files are in place (the owner reloads, which swaps the listener's certificates).
 * - A failed order is tried again after a backoff: 1 minute, doubling up to 6 hours, with jitter. The
 *   failure is logged with its reason (the CA's problem document, when it sent one).
 * - The CA's terms of service are agreed to (as Caddy and Traefik do); the docs say so.
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto'
import {
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs'
import { Agent } from 'node:https'
import path from 'node:path'
import { rootCertificates } from 'node:tls'
import type { AcmeSettings, RuntimeConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import { alpnChallengeFile, challengeFile } from './challenges.js'

const MIN_BACKOFF_MS = 60_000
const MAX_BACKOFF_MS = 6 * 3600_000
/** Longest single wait: setTimeout takes at most 2^31 − 1 ms; the next check waits again. */
const MAX_WAIT_MS = 12 * 3600_000
const STALE_LOCK_MS = 10 * 60_000

export interface AcmeManagerOptions {
  readonly logger: Logger
  /** New certificate files are in place for `listener`. */
  readonly onIssued: (listener: string) => void
}

/** What a certificate on disk says of itself. */
export interface StoredCertificate {
  readonly names: readonly string[]
  readonly notAfterMs: number
  /** The key beside it is there and is the certificate's (false after a write cut short). Default true. */
  readonly keyMatches?: boolean
}

/** The certificate at `certFile` (and whether `keyFile` is its key), or undefined when there is none. */
export function storedCertificate(certFile: string, keyFile?: string): StoredCertificate | undefined {
  let pem: Buffer
  try {
    pem = readFileSync(certFile)
  } catch {
    return undefined
  }
  try {
    const cert = new X509Certificate(pem)
    const commonName = /(?:^|\n)CN=([^\n]*)/.exec(cert.subject)?.[1]
    const altNames = (cert.subjectAltName ?? '')
      .split(', ')
      .filter((n) => n.startsWith('DNS:'))
      .map((n) => n.slice(4))
    const names = new Set([commonName, ...altNames].filter((n) => n).map((n) => (n as string).toLowerCase()))
    const notAfterMs = Date.parse(cert.validTo)
    if (Number.isNaN(notAfterMs)) return undefined
    return {
      names: [...names],
      notAfterMs,
      keyMatches: keyFile === undefined || keyMatches(pem, keyFile),
    }
  } catch {
    return undefined
  }
}

function keyMatches(certPem: Buffer, keyFile: string): boolean {
  try {
    return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(readFileSync(keyFile)))
  } catch {
    return false
  }
}

/** Why `stored` must be replaced now, or undefined when it may serve until its renewal time. */
export function orderReason(
  stored: StoredCertificate | undefined,
  settings: Pick<AcmeSettings, 'domains' | 'renewBeforeMs'>,
  nowMs: number,
): string | undefined {
  if (stored === undefined) return 'no certificate yet'
  if (stored.keyMatches === false) return "its key is missing or is not the certificate's"
  const missing = settings.domains.filter((d) => !stored.names.includes(d))
  if (missing.length > 0) return `the certificate does not name ${missing.join(', ')}`
  if (stored.notAfterMs - nowMs <= settings.renewBeforeMs)
    return `the certificate expires ${new Date(stored.notAfterMs).toISOString()}`
  return undefined
}

/** The wait before the next try after `failures` failures in a row, with up to 20% jitter. */
export function backoffMs(failures: number, random: () => number = Math.random): number {
  const base = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** Math.max(0, failures - 1))
  return Math.round(base * (0.8 + 0.4 * random()))
}

interface Entry {
  readonly key: string
  readonly listener: string
  readonly settings: AcmeSettings
  timer: NodeJS.Timeout | undefined
  failures: number
  running: Promise<void> | undefined
  stopped: boolean
}

export class AcmeManager {
  readonly #options: AcmeManagerOptions
  readonly #entries = new Map<string, Entry>()
  /** Extra CAs the ACME servers' HTTPS certificates verify against, by file. */
  readonly #directoryCas = new Map<string, string>()

  constructor(options: AcmeManagerOptions) {
    this.#options = options
  }

  /** The certificates `config` asks for: new ones are checked now, dropped ones stop. */
  update(config: RuntimeConfig): void {
    const wanted = new Set<string>()
    for (const l of config.listeners) {
      const settings = l.tls?.acme
      if (settings === undefined) continue
      const key = JSON.stringify([l.name, settings])
      wanted.add(key)
      if (this.#entries.has(key)) continue
      prepareStorage(settings)
      if (settings.directoryCaFile !== undefined) this.#trust(settings.directoryCaFile)
      const entry: Entry = {
        key,
        listener: l.name,
        settings,
        timer: undefined,
        failures: 0,
        running: undefined,
        stopped: false,
      }
      this.#entries.set(key, entry)
      this.#schedule(entry, 0)
    }
    for (const [key, entry] of this.#entries)
      if (!wanted.has(key)) {
        this.#stopEntry(entry)
        this.#entries.delete(key)
      }
  }

  /**
   * Stops every timer. An order under way is not waited for (a CA may take minutes): it finishes in
   * the background, writes its files, and schedules nothing more.
   */
  stop(): void {
    for (const e of this.#entries.values()) this.#stopEntry(e)
    this.#entries.clear()
  }

  /** Checks every certificate now (tests, and an operator's "renew now"); resolves when they are done. */
  async checkNow(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map((e) => {
        if (e.timer !== undefined) clearTimeout(e.timer)
        e.timer = undefined
        return e.running ?? this.#check(e)
      }),
    )
  }

  #stopEntry(e: Entry): void {
    e.stopped = true
    if (e.timer !== undefined) clearTimeout(e.timer)
    e.timer = undefined
  }

  #schedule(e: Entry, delayMs: number): void {
    if (e.stopped) return
    if (e.timer !== undefined) clearTimeout(e.timer)
    e.timer = setTimeout(
      () => {
        e.timer = undefined
        void this.#check(e)
      },
      Math.max(0, Math.min(delayMs, MAX_WAIT_MS)),
    )
    e.timer.unref()
  }

  #check(e: Entry): Promise<void> {
    if (e.running !== undefined) return e.running
    const run = this.#run(e).finally(() => {
      e.running = undefined
    })
    e.running = run
    return run
  }

  async #run(e: Entry): Promise<void> {
    const s = e.settings
    const logger = this.#options.logger
    const reason = orderReason(storedCertificate(s.certFile, s.keyFile), s, Date.now())
    if (reason === undefined) {
      const stored = storedCertificate(s.certFile) as StoredCertificate
      return this.#schedule(e, stored.notAfterMs - s.renewBeforeMs - Date.now())
    }
    const release = takeLock(path.join(path.dirname(s.certFile), '.lock'))
    if (release === undefined) {
      // Another instance orders it: look again in a while.
      logger.info({ listener: e.listener, domains: s.domains }, 'ACME: another instance is ordering this certificate')
      return this.#schedule(e, MIN_BACKOFF_MS)
    }
    const started = performance.now()
    logger.info(
      { listener: e.listener, domains: s.domains, directory: s.directoryUrl, reason },
      `ACME: ordering a certificate for ${s.domains.join(', ')} (${reason})`,
    )
    try {
      // Orders that share a storage directory (its account) run one at a time in this process.
      const cert = await inTurn(s.storageDir, () => this.#order(s))
      // The chain, then its key, in one file renamed into place: both change at once.
      const chain = cert.chain.endsWith('\n') ? cert.chain : `${cert.chain}\n`
      writeWhole(s.certFile, `${chain}${cert.key.toString()}`, 0o600)
      e.failures = 0
      const stored = storedCertificate(s.certFile)
      logger.info(
        {
          listener: e.listener,
          domains: s.domains,
          notAfter: stored === undefined ? undefined : new Date(stored.notAfterMs).toISOString(),
          durationMs: Math.round(performance.now() - started),
        },
        `ACME: certificate for ${s.domains.join(', ')} issued`,
      )
      if (!e.stopped) this.#options.onIssued(e.listener)
      if (stored !== undefined) this.#schedule(e, this.#nextCheckMs(e, stored))
    } catch (err) {
      e.failures++
      const waitMs = backoffMs(e.failures)
      logger.warn(
        { listener: e.listener, domains: s.domains, err: errorText(err), failures: e.failures, retryInMs: waitMs },
        `ACME: ordering a certificate for ${s.domains.join(', ')} failed (${errorText(err)}); trying again in ${Math.round(waitMs / 1000)} s`,
      )
      this.#schedule(e, waitMs)
    } finally {
      release()
    }
  }

  /**
   * When a certificate just issued is next looked at: `renewBefore` its expiry, but not before a third
   * of its lifetime has passed. A CA whose certificates live shorter than `renewBefore` would otherwise
   * be asked for a new one again and again; that is logged once per issuance.
   */
  #nextCheckMs(e: Entry, stored: StoredCertificate): number {
    const now = Date.now()
    const dueIn = stored.notAfterMs - e.settings.renewBeforeMs - now
    // Just issued: what is left of it is its lifetime.
    const lifetimeMs = stored.notAfterMs - now
    if (dueIn > lifetimeMs / 3) return dueIn
    this.#options.logger.warn(
      { listener: e.listener, renewBeforeMs: e.settings.renewBeforeMs, lifetimeMs },
      `ACME: renewBefore is longer than two thirds of the certificate's lifetime; renewing after a third of it instead`,
    )
    return lifetimeMs / 3
  }

  async #order(s: AcmeSettings): Promise<{ key: Buffer; chain: string }> {
    const acme = await acmeClient()
    if (this.#directoryCas.size > 0)
      acme.axios.defaults.httpsAgent = new Agent({ ca: [...rootCertificates, ...this.#directoryCas.values()] })
    const accountKeyFile = path.join(s.storageDir, 'account.key')
    // Made once: an instance that finds one made meanwhile (another process) uses that one.
    if (!existsSync(accountKeyFile)) createOnce(accountKeyFile, await acme.crypto.createPrivateEcdsaKey())
    const accountKey = readFileSync(accountKeyFile)
    // The account's URL at this directory, for this key, once known: later orders use the account as
    // it is, rather than ask the CA to create (and update) it again.
    const accountFile = path.join(s.storageDir, 'account.json')
    const keyId = createHash('sha256').update(accountKey).digest('hex')
    const accountUrl = knownAccount(accountFile, s.directoryUrl, keyId)
    const client = new acme.Client({
      directoryUrl: s.directoryUrl,
      accountKey,
      ...(accountUrl === undefined ? {} : { accountUrl }),
      // acme-client's retries of a busy CA (5xx, rate limits): 3 tries, 1 s to 10 s apart.
      backoffAttempts: 3,
      backoffMin: 1000,
      backoffMax: 10_000,
    })
    const [key, csr] = await acme.crypto.createCsr(
      { commonName: s.domains[0] as string, altNames: [...s.domains] },
      await acme.crypto.createPrivateEcdsaKey(),
    )
    const chain = await client.auto({
      csr,
      ...(s.email === undefined ? {} : { email: s.email }),
      termsOfServiceAgreed: true,
      // The CA checks the answer itself; a self-check from here would fail behind NAT or split DNS.
      // http-01 is answered by the http listeners (challenges.ts), tls-alpn-01 by this https listener.
      skipChallengeVerification: true,
      challengePriority: [s.challenge],
      challengeCreateFn: async (authz, challenge, keyAuthorization) => {
        if ((challenge.type as string) === 'tls-alpn-01') {
          const [alpnKey, alpnCert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization)
          writeWhole(alpnChallengeFile(s.storageDir, authz.identifier.value), `${alpnKey}${alpnCert}`, 0o600)
        } else writeWhole(challengeFile(s.storageDir, challenge.token), keyAuthorization, 0o644)
      },
      challengeRemoveFn: async (authz, challenge) => {
        if ((challenge.type as string) === 'tls-alpn-01')
          rmSync(alpnChallengeFile(s.storageDir, authz.identifier.value), { force: true })
        else rmSync(challengeFile(s.storageDir, challenge.token), { force: true })
      },
    })
    if (accountUrl === undefined)
      writeWhole(
        accountFile,
        `${JSON.stringify({ directory: s.directoryUrl, key: keyId, url: client.getAccountUrl() })}\n`,
        0o600,
      )
    return { key, chain }
  }

  /** acme-client's HTTP client (one per process) verifies ACME servers against the system CAs and these. */
  #trust(file: string): void {
    if (this.#directoryCas.has(file)) return
    this.#directoryCas.set(file, readFileSync(file, 'utf8'))
  }
}

/**
 * acme-client, loaded by the first order: most processes never order a certificate, and loading it
 * (axios and its crypto helpers) takes longer than the rest of a start.
 */
let acmeModule: Promise<typeof import('acme-client')> | undefined
function acmeClient(): Promise<typeof import('acme-client')> {
  acmeModule ??= import('acme-client')
  return acmeModule
}

/** Runs `task` after the other tasks of `key` (a storage directory) in this process. */
const turns = new Map<string, Promise<unknown>>()
function inTurn<T>(key: string, task: () => Promise<T>): Promise<T> {
  const before = turns.get(key) ?? Promise.resolve()
  const run = before.then(task, task)
  const settled = run.catch(() => {})
  turns.set(key, settled)
  void settled.then(() => {
    if (turns.get(key) === settled) turns.delete(key)
  })
  return run
}

/** Writes `file` only if it does not exist yet (a hard link of a whole temporary file: all or nothing). */
function createOnce(file: string, data: Buffer): void {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  writeFileSync(tmp, data, { mode: 0o600 })
  try {
    linkSync(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  } finally {
    rmSync(tmp, { force: true })
  }
}

/** The account URL recorded for `directory` and the key `keyId`, if any. */
function knownAccount(file: string, directory: string, keyId: string): string | undefined {
  try {
    const known = JSON.parse(readFileSync(file, 'utf8')) as { directory?: unknown; key?: unknown; url?: unknown }
    return known.directory === directory && known.key === keyId && typeof known.url === 'string' ? known.url : undefined
  } catch {
    return undefined
  }
}

/** The storage directories, made now: the certificate's is watched for changes from the start. */
function prepareStorage(settings: AcmeSettings): void {
  mkdirSync(path.join(settings.storageDir, 'challenges'), { recursive: true, mode: 0o700 })
  mkdirSync(path.dirname(settings.certFile), { recursive: true, mode: 0o700 })
}

/** Writes `file` whole: a temporary file beside it, renamed over it. */
function writeWhole(file: string, data: string | Buffer, mode: number): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`
  writeFileSync(tmp, data, { mode })
  renameSync(tmp, file)
}

/**
 * Takes `file` as a lock (made exclusively, holding an id of ours, its time refreshed every minute
 * while held); undefined when another holder has it and it is not stale. The release removes it only
 * if it is still ours.
 */
function takeLock(file: string): (() => void) | undefined {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 })
  const id = randomBytes(12).toString('hex')
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(file, id, { flag: 'wx', mode: 0o600 })
      const refresh = setInterval(() => {
        try {
          const now = new Date()
          utimesSync(file, now, now)
        } catch {
          // gone: the release below finds it so
        }
      }, 60_000)
      refresh.unref()
      return () => {
        clearInterval(refresh)
        try {
          if (readFileSync(file, 'utf8') === id) rmSync(file, { force: true })
        } catch {
          // already gone
        }
      }
    } catch {
      try {
        if (Date.now() - statSync(file).mtimeMs < STALE_LOCK_MS) return undefined
        unlinkSync(file)
      } catch {
        // gone meanwhile: try again
      }
    }
  }
  return undefined
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
