/**
 * Certificate files reloaded when they change on disk: the listeners' certificates, keys and client
 * CAs, and the pools' TLS files. Each file's directory is watched (inotify on Linux), so that a file
 * replaced by a rename (certbot, cert-manager, an ACME renewal) is seen as well as one rewritten in
 * place. Events are debounced (250 ms) and a file counts as changed only when its contents differ,
 * so one renewal that writes a key and a certificate makes one reload. The owner reloads: a new file
 * that cannot be used is refused there, and the running certificates stay (see docs/https.md).
 */
import { createHash } from 'node:crypto'
import { existsSync, type FSWatcher, readFileSync, watch } from 'node:fs'
import path from 'node:path'
import type { RuntimeConfig } from '../config/index.js'

const DEBOUNCE_MS = 250

/** The TLS files a config reads: listener certificates, keys and client CAs; pool CAs and client certificates. */
export function tlsFilesOf(config: RuntimeConfig): string[] {
  const files = new Set<string>()
  for (const l of config.listeners) {
    const tls = l.tls
    if (tls === undefined) continue
    for (const c of tls.certificates) {
      files.add(c.certFile)
      files.add(c.keyFile)
    }
    if (tls.clientAuth !== undefined) files.add(tls.clientAuth.caFile)
  }
  for (const p of config.pools)
    for (const f of [p.tls?.caFile, p.tls?.certFile, p.tls?.keyFile]) if (f !== undefined) files.add(f)
  return [...files].map((f) => path.resolve(f))
}

function digest(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex')
  } catch {
    return 'absent'
  }
}

export class CertificateWatcher {
  readonly #onChange: (files: readonly string[]) => void
  /** Watched file → the digest of its contents when last seen. */
  readonly #files = new Map<string, string>()
  readonly #dirs = new Map<string, FSWatcher>()
  #timer: NodeJS.Timeout | undefined

  /** `onChange` is called with the files whose contents changed. */
  constructor(onChange: (files: readonly string[]) => void) {
    this.#onChange = onChange
  }

  /**
   * Watches exactly `files` from now on. Their contents now are the baseline: the owner calls this
   * after each reload, which has just read them.
   */
  update(files: readonly string[]): void {
    const next = new Set(files)
    for (const f of [...this.#files.keys()]) if (!next.has(f)) this.#files.delete(f)
    for (const f of next) this.#files.set(f, digest(f))
    const dirs = new Set([...next].map((f) => path.dirname(f)))
    for (const [dir, w] of this.#dirs)
      if (!dirs.has(dir)) {
        w.close()
        this.#dirs.delete(dir)
      }
    for (const dir of dirs) {
      if (this.#dirs.has(dir) || !existsSync(dir)) continue
      try {
        // Any event in the directory: a Kubernetes secret volume renews by swapping a `..data`
        // symlink, whose events name neither file. The digests tell what changed.
        const w = watch(dir, { persistent: false }, () => this.#soon())
        w.on('error', () => {
          w.close()
          this.#dirs.delete(dir)
        })
        this.#dirs.set(dir, w)
      } catch {
        // not watchable (gone, or no permission): changes there need a SIGHUP
      }
    }
  }

  close(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
    for (const w of this.#dirs.values()) w.close()
    this.#dirs.clear()
    this.#files.clear()
  }

  #soon(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(() => {
      this.#timer = undefined
      const changed: string[] = []
      for (const [f, before] of this.#files) {
        const now = digest(f)
        if (now === before) continue
        this.#files.set(f, now)
        changed.push(f)
      }
      if (changed.length > 0) this.#onChange(changed)
    }, DEBOUNCE_MS)
    this.#timer.unref()
  }
}
