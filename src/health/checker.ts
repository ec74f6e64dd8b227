/**
 * Active health checking of one pool: each server is probed on its own timer, every `interval` while
 * it is up and every `unhealthyInterval` while it is down, each wait varied by ±`jitter`, and the first
 * probes spread over the first interval. Results feed a HealthTracker (rise/fall). Probes of one server
 * never overlap: the next is scheduled when the last has finished.
 *
 * Control plane only: the request path reads `tracker.down`, a set replaced whole on every change.
 */

import type { Backend } from '../core/backend.js'
import { DEFAULT_UPSTREAM_TLS, type UpstreamTls } from '../upstream/tls.js'
import type { Probe } from './check.js'
import { HealthTracker, type Transition } from './tracker.js'

export interface CheckSchedule {
  readonly intervalMs: number
  readonly unhealthyIntervalMs: number
  readonly timeoutMs: number
  readonly jitter: number
  readonly rise: number
  readonly fall: number
  /** Port to probe instead of each server's own. */
  readonly port: number | undefined
}

export class HealthChecker {
  readonly tracker: HealthTracker
  readonly #probe: Probe
  readonly #schedule: CheckSchedule
  readonly #random: () => number
  readonly #servers = new Map<string, Backend>()
  readonly #timers = new Map<string, NodeJS.Timeout>()
  /** What `https://` servers are checked with: their pool's TLS settings. */
  readonly #tls: UpstreamTls
  /** What each check's connection opens with (the pool's PROXY protocol, LOCAL); undefined: nothing. */
  readonly #prefix: Buffer | undefined
  #stopped = false

  constructor(
    probe: Probe,
    schedule: CheckSchedule,
    onTransition: (t: Transition) => void,
    random: () => number = Math.random,
    connection: { readonly tls?: UpstreamTls; readonly prefix?: Buffer | undefined } = {},
  ) {
    this.#tls = connection.tls ?? DEFAULT_UPSTREAM_TLS
    this.#prefix = connection.prefix
    this.#probe = probe
    this.#schedule = schedule
    this.#random = random
    this.tracker = new HealthTracker(schedule.rise, schedule.fall, onTransition)
  }

  /** Checks exactly `servers` from now on: new ones start (as up), removed ones stop. */
  update(servers: readonly Backend[]): void {
    const next = new Map(servers.map((b) => [b.id, b]))
    for (const id of this.#servers.keys())
      if (!next.has(id)) {
        clearTimeout(this.#timers.get(id))
        this.#timers.delete(id)
      }
    const added = servers.filter((b) => !this.#servers.has(b.id))
    this.#servers.clear()
    for (const [id, b] of next) this.#servers.set(id, b)
    this.tracker.track(servers.map((b) => b.id))
    // First probes spread over the first interval, so that a large pool is not probed in one burst.
    for (const b of added) this.#arm(b.id, this.#random() * Math.min(this.#schedule.intervalMs, 1000))
  }

  stop(): void {
    this.#stopped = true
    for (const t of this.#timers.values()) clearTimeout(t)
    this.#timers.clear()
  }

  #arm(id: string, delayMs: number): void {
    if (this.#stopped) return
    const timer = setTimeout(() => void this.#check(id), delayMs)
    timer.unref()
    this.#timers.set(id, timer)
  }

  async #check(id: string): Promise<void> {
    const server = this.#servers.get(id)
    if (server === undefined || this.#stopped) return
    const s = this.#schedule
    const target = {
      host: server.host,
      port: s.port ?? server.port,
      tls: server.tls ? this.#tls : undefined,
      prefix: this.#prefix,
    }
    const reason = await this.#probe(target, s.timeoutMs)
    // The server may have been removed (or the checker stopped) while the probe ran.
    if (this.#stopped || this.#servers.get(id) !== server) return
    this.tracker.report(id, reason === undefined, reason ?? 'passed')
    const base = this.tracker.isUp(id) ? s.intervalMs : s.unhealthyIntervalMs
    this.#arm(id, base * (1 + s.jitter * (2 * this.#random() - 1)))
  }
}
