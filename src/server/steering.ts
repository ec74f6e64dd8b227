/**
 * The control plane's changes, in one place for a single process (LoadBalancer) and for the
 * supervisor of workers: the base config (the file's, or one put whole through the API), the runtime
 * overrides on top of it (overrides.ts), the event log, and `admin.stateFile`.
 *
 * - Every change (reload, runtime change, removal of a drained server) runs one at a time, in the
 *   order asked. Each computes the next effective config and has the host apply it as one generation
 *   swap; only when that succeeded is the change kept (and saved). A change the host rejects leaves
 *   everything as it was.
 * - A removal (`remove`) drains the server first: it stays in the pool, draining, until no request is
 *   in flight to it (polled every REMOVAL_POLL_MS), or `shutdown.gracePeriod` has passed, then goes.
 * - The state file is written whole after each kept change (to a temporary file, then renamed), and
 *   read at start. A missing file is an empty overlay; an unreadable or invalid one stops the start.
 */
import { readFile, rename, writeFile } from 'node:fs/promises'
import type { RuntimeConfig } from '../config/index.js'
import { serverBackend } from '../config/normalize.js'
import { SwitchyardError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { EventLog } from './events.js'
import {
  applyOverrides,
  NO_OVERRIDES,
  type OverrideState,
  type Overrides,
  overrideOf,
  overrideStates,
  overridesSchema,
  type RuntimeState,
  type ServerOverride,
  tcpPool,
  withOverride,
} from './overrides.js'

/** What Steering needs of the process that serves: LoadBalancer, or Supervisor. */
export interface SteeringHost {
  /** Applies a validated, effective config as one generation swap (every worker, with a supervisor). */
  apply(effective: RuntimeConfig): Promise<void>
  /** Requests in flight to a server now (summed over workers). */
  serverInFlight(pool: string, server: string): Promise<number>
  readonly generation: number
  readonly logger: Logger
}

/** A runtime change that cannot be made: the admin API answers with `status`. */
export class ChangeError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 500,
    message: string,
  ) {
    super(message)
  }
}

/** How often a removal checks whether its server's requests are done. */
export const REMOVAL_POLL_MS = 100

export class Steering {
  readonly events = new EventLog()
  readonly #host: SteeringHost
  #base: RuntimeConfig
  #overrides: Overrides = NO_OVERRIDES
  #queue: Promise<unknown> = Promise.resolve()
  /** Removals waiting for their server to drain: `pool\0server` → timer. */
  readonly #removals = new Map<string, NodeJS.Timeout>()
  #closed = false

  constructor(base: RuntimeConfig, host: SteeringHost) {
    this.#base = base
    this.#host = host
  }

  /** The config as loaded, without the runtime overrides. */
  get base(): RuntimeConfig {
    return this.#base
  }

  /** The generation that serves now. */
  get generation(): number {
    return this.#host.generation
  }

  get overrides(): Overrides {
    return this.#overrides
  }

  /** Every runtime override in force, with its server's state now (the `switchyard_override_*` gauges). */
  overrideStates(): OverrideState[] {
    return overrideStates(this.#base, this.#overrides)
  }

  /** What serves: the base with the overrides applied. */
  effective(): RuntimeConfig {
    return applyOverrides(this.#base, this.#overrides)
  }

  get #stateFile(): string | undefined {
    return this.#base.admin?.stateFile
  }

  /** Reads `admin.stateFile`, before the first generation is built. Throws SWY_CONFIG_INVALID when unusable. */
  async restore(): Promise<void> {
    const file = this.#stateFile
    if (file === undefined) return
    let text: string
    try {
      text = await readFile(file, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new SwitchyardError('SWY_CONFIG_INVALID', `admin.stateFile ${file}: cannot read: ${(err as Error).message}`)
    }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch (err) {
      throw new SwitchyardError('SWY_CONFIG_INVALID', `admin.stateFile ${file}: not JSON: ${(err as Error).message}`)
    }
    const result = overridesSchema.safeParse(parsed)
    if (!result.success)
      throw new SwitchyardError(
        'SWY_CONFIG_INVALID',
        `admin.stateFile ${file}: not a Switchyard state file: ${result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`,
      )
    this.#overrides = result.data
    const count = Object.values(this.#overrides.pools).reduce((n, s) => n + Object.keys(s).length, 0)
    if (count > 0) this.#host.logger.info({ file, overrides: count }, `runtime overrides restored from ${file}`)
  }

  /** After the first generation serves: removals that a restart interrupted go on. */
  resume(): void {
    for (const [pool, servers] of Object.entries(this.#overrides.pools))
      for (const [server, ov] of Object.entries(servers))
        if (ov.removal === 'draining') this.#watchRemoval(pool, server)
  }

  /** Stops watching removals (the instance is closing). */
  close(): void {
    this.#closed = true
    for (const t of this.#removals.values()) clearTimeout(t)
    this.#removals.clear()
  }

  /** A new base (a reload): the overrides stay on top. Rejects, with nothing changed, when the host does. */
  reload(next: RuntimeConfig, source: 'file' | 'api' | 'code'): Promise<void> {
    return this.#enqueue(async () => {
      try {
        await this.#host.apply(applyOverrides(next, this.#overrides))
      } catch (err) {
        this.events.emit({
          type: 'reload',
          result: 'rejected',
          source,
          generation: this.#host.generation,
          message: `reload rejected: ${(err as Error).message}`,
        })
        throw err
      }
      const stateFileMoved = next.admin?.stateFile !== this.#stateFile
      this.#base = next
      if (stateFileMoved) await this.#save()
      this.events.emit({
        type: 'reload',
        result: 'ok',
        source,
        generation: this.#host.generation,
        message: `configuration generation ${this.#host.generation} active`,
      })
    })
  }

  /** Sets a server's weight and/or state. `active` undoes a drain (and a removal under way). */
  update(pool: string, server: string, patch: { weight?: number | undefined; state?: RuntimeState | undefined }) {
    return this.#enqueue(async () => {
      const ov = this.#server(pool, server).override
      const next: ServerOverride = {
        ...ov,
        ...(patch.weight === undefined ? {} : { weight: patch.weight }),
        ...(patch.state === undefined ? {} : { state: patch.state }),
        changedAt: new Date().toISOString(),
      }
      // A new state cancels a removal under way: the server was asked to stay, in that state.
      if (patch.state !== undefined && next.removal === 'draining') delete next.removal
      await this.#commit(withOverride(this.#overrides, pool, server, next))
      if (patch.state !== undefined) this.#stopWatching(pool, server)
      const what = [
        ...(patch.weight === undefined ? [] : [`weight ${patch.weight}`]),
        ...(patch.state === undefined ? [] : [`state ${patch.state}`]),
      ].join(', ')
      this.#host.logger.info({ pool, server, ...patch }, `server ${pool}/${server}: ${what} (runtime change)`)
      this.events.emit({
        type: 'change',
        action: 'update',
        pool,
        server,
        weight: patch.weight,
        state: patch.state,
        message: `${pool}/${server}: ${what}`,
      })
    })
  }

  /** Adds a server to a pool; resolves with its name (default `host:port`). */
  add(
    pool: string,
    spec: { url: string; name?: string | undefined; weight: number; backup: boolean },
  ): Promise<string> {
    return this.#enqueue(async () => {
      const effective = this.effective()
      const pc = effective.pools.find((p) => p.name === pool)
      if (pc === undefined) throw new ChangeError(404, `no pool named "${pool}"`)
      const built = serverBackend(pc, tcpPool(effective, pool), spec)
      if (typeof built === 'string') throw new ChangeError(400, `url: ${built}`)
      const id = built.id
      const old = overrideOf(this.#overrides, pool, id)
      if (pc.backends.some((b) => b.id === id) && old?.removal !== 'removed')
        throw new ChangeError(409, `pool "${pool}" already has a server named "${id}"`)
      const inBase = this.#base.pools.find((p) => p.name === pool)?.backends.some((b) => b.id === id) === true
      // A server of the file that was removed at runtime comes back as the file has it, with the new weight.
      const next: ServerOverride = inBase
        ? { weight: spec.weight, changedAt: new Date().toISOString() }
        : {
            weight: spec.weight,
            added: { url: spec.url, backup: spec.backup },
            changedAt: new Date().toISOString(),
          }
      await this.#commit(withOverride(this.#overrides, pool, id, next))
      this.#host.logger.info({ pool, server: id, url: spec.url }, `server ${pool}/${id} added (runtime change)`)
      this.events.emit({
        type: 'change',
        action: 'add',
        pool,
        server: id,
        weight: spec.weight,
        message: `${pool}/${id} added (${spec.url})`,
      })
      return id
    })
  }

  /** Starts a server's removal: it drains now and goes once its requests are done. */
  remove(pool: string, server: string): Promise<void> {
    return this.#enqueue(async () => {
      const { override } = this.#server(pool, server)
      if (override?.removal === 'draining') return
      const next: ServerOverride = { ...override, removal: 'draining', changedAt: new Date().toISOString() }
      await this.#commit(withOverride(this.#overrides, pool, server, next))
      this.#host.logger.info({ pool, server }, `server ${pool}/${server}: removal asked, draining`)
      this.events.emit({
        type: 'change',
        action: 'remove',
        pool,
        server,
        message: `${pool}/${server} draining, to be removed when its requests are done`,
      })
      this.#watchRemoval(pool, server)
    })
  }

  /** Drops every override: the base config serves as loaded. */
  clear(): Promise<void> {
    return this.#enqueue(async () => {
      await this.#commit(NO_OVERRIDES)
      for (const key of [...this.#removals.keys()]) {
        const [pool, server] = key.split('\0') as [string, string]
        this.#stopWatching(pool, server)
      }
      this.#host.logger.info('runtime overrides dropped')
      this.events.emit({ type: 'change', action: 'clear', message: 'runtime overrides dropped' })
    })
  }

  /** The server as the effective config has it, with its override; ChangeError 404 when there is none. */
  #server(pool: string, server: string): { override: ServerOverride | undefined } {
    const pc = this.effective().pools.find((p) => p.name === pool)
    if (pc === undefined) throw new ChangeError(404, `no pool named "${pool}"`)
    if (!pc.backends.some((b) => b.id === server))
      throw new ChangeError(404, `pool "${pool}" has no server named "${server}"`)
    return { override: overrideOf(this.#overrides, pool, server) }
  }

  /** Applies the config with `next` as the overlay; keeps (and saves) `next` only if that worked. */
  async #commit(next: Overrides): Promise<void> {
    await this.#host.apply(applyOverrides(this.#base, next))
    this.#overrides = next
    await this.#save()
  }

  async #save(): Promise<void> {
    const file = this.#stateFile
    if (file === undefined) return
    const tmp = `${file}.${process.pid}.tmp`
    try {
      await writeFile(tmp, `${JSON.stringify(this.#overrides, null, 2)}\n`, { mode: 0o600 })
      await rename(tmp, file)
    } catch (err) {
      this.#host.logger.error({ err, file }, `cannot save the runtime overrides to ${file}`)
      throw new ChangeError(500, `applied, but not saved to admin.stateFile ${file}: ${(err as Error).message}`)
    }
  }

  #watchRemoval(pool: string, server: string): void {
    const key = `${pool}\0${server}`
    if (this.#closed || this.#removals.has(key)) return
    const deadline = Date.now() + this.effective().shutdown.gracePeriodMs
    const check = async () => {
      if (!this.#removals.has(key)) return
      let inFlight: number
      try {
        inFlight = await this.#host.serverInFlight(pool, server)
      } catch {
        inFlight = 1
      }
      if (!this.#removals.has(key)) return
      if (inFlight > 0 && Date.now() < deadline) {
        this.#removals.set(key, setTimeout(check, REMOVAL_POLL_MS))
        return
      }
      this.#removals.delete(key)
      void this.#finishRemoval(pool, server, inFlight).catch((err: unknown) =>
        this.#host.logger.error({ err, pool, server }, `removal of ${pool}/${server} failed`),
      )
    }
    this.#removals.set(key, setTimeout(check, REMOVAL_POLL_MS))
  }

  #stopWatching(pool: string, server: string): void {
    const key = `${pool}\0${server}`
    clearTimeout(this.#removals.get(key))
    this.#removals.delete(key)
  }

  #finishRemoval(pool: string, server: string, inFlight: number): Promise<void> {
    return this.#enqueue(async () => {
      const ov = overrideOf(this.#overrides, pool, server)
      if (ov?.removal !== 'draining') return
      // Added at runtime: nothing left of it. From the file: kept out across reloads, as `removed`.
      const next: ServerOverride | undefined =
        ov.added === undefined ? { ...ov, removal: 'removed', changedAt: new Date().toISOString() } : undefined
      await this.#commit(withOverride(this.#overrides, pool, server, next))
      const why = inFlight > 0 ? `after the grace period, with ${inFlight} requests in flight` : 'drained'
      this.#host.logger.info({ pool, server }, `server ${pool}/${server} removed (${why})`)
      this.events.emit({
        type: 'change',
        action: 'removed',
        pool,
        server,
        message: `${pool}/${server} removed (${why})`,
      })
    })
  }

  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(run)
    this.#queue = p.catch(() => {})
    return p
  }
}
