/**
 * The health checkers of a whole configuration: one HealthChecker per pool with `healthCheck`, kept
 * (with its servers' states) across reloads while the pool's check settings stay, told about added and
 * removed servers, rebuilt when its settings change, stopped with its pool. Runs in the process that
 * owns the control plane: the single process, or the supervisor, which pushes the states to its
 * workers (see ExternalHealth).
 */
import type { UpstreamTlsConfig } from '../config/index.js'
import type { Backend } from '../core/backend.js'
import { localProxyHeader } from '../upstream/send-proxy.js'
import { loadUpstreamTls } from '../upstream/tls.js'
import { type CheckSchedule, HealthChecker } from './checker.js'
import type { HealthCheckOptions } from './registry.js'
import { createProbe } from './registry.js'
import type { HealthTracker, Transition } from './tracker.js'

/** What the monitor needs of a pool's config. */
export interface CheckedPool {
  readonly name: string
  readonly backends: readonly Backend[]
  readonly healthCheck: { readonly probe: HealthCheckOptions; readonly schedule: CheckSchedule } | undefined
  /** TLS to its `https://` servers, which HTTP checks use too. */
  readonly tls?: UpstreamTlsConfig | undefined
  /** The pool's PROXY protocol: checks open with a LOCAL/UNKNOWN header. */
  readonly sendProxyProtocol?: 'v1' | 'v2' | undefined
}

/** Where pools read which of their servers are down. */
export interface HealthSource {
  /** The servers of `pool` that are down now; the same object until the next change. */
  down(pool: string): ReadonlySet<string>
}

const NONE: ReadonlySet<string> = new Set()

export class HealthMonitor implements HealthSource {
  readonly #onChange: (pool: string, t: Transition) => void
  readonly #checkers = new Map<string, { key: string; checker: HealthChecker }>()

  constructor(onChange: (pool: string, t: Transition) => void) {
    this.#onChange = onChange
  }

  /** Brings the checkers in line with `pools`. */
  update(pools: readonly CheckedPool[]): void {
    const wanted = new Set<string>()
    for (const pc of pools) {
      if (pc.healthCheck === undefined) continue
      wanted.add(pc.name)
      const tls = loadUpstreamTls(pc.name, pc.tls)
      const key = `${JSON.stringify(pc.healthCheck)}|${tls.fingerprint}|${pc.sendProxyProtocol ?? ''}`
      let entry = this.#checkers.get(pc.name)
      if (entry === undefined || entry.key !== key) {
        entry?.checker.stop()
        const pool = pc.name
        const checker = new HealthChecker(
          createProbe(pc.healthCheck.probe),
          pc.healthCheck.schedule,
          (t) => this.#onChange(pool, t),
          Math.random,
          { tls, prefix: pc.sendProxyProtocol === undefined ? undefined : localProxyHeader(pc.sendProxyProtocol) },
        )
        entry = { key, checker }
        this.#checkers.set(pc.name, entry)
      }
      entry.checker.update(pc.backends)
    }
    for (const [name, entry] of this.#checkers)
      if (!wanted.has(name)) {
        entry.checker.stop()
        this.#checkers.delete(name)
      }
  }

  down(pool: string): ReadonlySet<string> {
    return this.#checkers.get(pool)?.checker.tracker.down ?? NONE
  }

  /** Every checked pool's tracker, for metrics and status. */
  trackers(): ReadonlyMap<string, HealthTracker> {
    return new Map([...this.#checkers].map(([name, e]) => [name, e.checker.tracker]))
  }

  stop(): void {
    for (const { checker } of this.#checkers.values()) checker.stop()
    this.#checkers.clear()
  }
}

/**
 * Health states pushed in from elsewhere (a worker's, from its supervisor): per pool, the servers
 * that are down. Pools read it through the same HealthSource interface.
 */
export class ExternalHealth implements HealthSource {
  readonly #down = new Map<string, ReadonlySet<string>>()

  /** Replaces the down set of `pool`; returns the servers that came back up. */
  set(pool: string, down: readonly string[]): string[] {
    const before = this.#down.get(pool) ?? NONE
    const next = new Set(down)
    this.#down.set(pool, next)
    return [...before].filter((id) => !next.has(id))
  }

  down(pool: string): ReadonlySet<string> {
    return this.#down.get(pool) ?? NONE
  }
}
