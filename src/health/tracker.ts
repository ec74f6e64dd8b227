/**
 * Rise/fall state of each server of a pool, fed by check results (after HAProxy's `rise`/`fall`): a
 * server that is up goes down after `fall` failed checks in a row, and one that is down comes back up
 * after `rise` passed checks in a row. Servers start up. Each transition is reported once, with the
 * reason of the last check; results that change nothing are not reported.
 */
export type HealthState = 'up' | 'down'

export interface Transition {
  readonly server: string
  readonly state: HealthState
  /** Checks in a row that made the transition (`rise` or `fall`). */
  readonly checks: number
  /** What the last check saw, e.g. `ECONNREFUSED` or `status 503`. */
  readonly reason: string
}

interface ServerHealth {
  up: boolean
  /** Passed (when down) or failed (when up) checks in a row toward a transition. */
  streak: number
  lastReason: string
}

export class HealthTracker {
  readonly #rise: number
  readonly #fall: number
  readonly #onTransition: (t: Transition) => void
  readonly #servers = new Map<string, ServerHealth>()
  /** Ids of the servers that are down now: a new set on every change, read by the request path. */
  #down: ReadonlySet<string> = new Set()

  constructor(rise: number, fall: number, onTransition: (t: Transition) => void) {
    this.#rise = Math.max(1, rise)
    this.#fall = Math.max(1, fall)
    this.#onTransition = onTransition
  }

  /** Tracks exactly `ids`: new servers start up, servers no longer listed are forgotten. */
  track(ids: readonly string[]): void {
    const keep = new Set(ids)
    for (const id of ids) if (!this.#servers.has(id)) this.#servers.set(id, { up: true, streak: 0, lastReason: '' })
    for (const id of this.#servers.keys()) if (!keep.has(id)) this.#servers.delete(id)
    this.#publish()
  }

  /** One check result for server `id`. Ignored for servers not tracked. */
  report(id: string, ok: boolean, reason: string): void {
    const s = this.#servers.get(id)
    if (s === undefined) return
    s.lastReason = reason
    if (s.up === ok) {
      s.streak = 0
      return
    }
    s.streak++
    const needed = s.up ? this.#fall : this.#rise
    if (s.streak < needed) return
    s.up = ok
    s.streak = 0
    this.#publish()
    this.#onTransition({ server: id, state: ok ? 'up' : 'down', checks: needed, reason })
  }

  isUp(id: string): boolean {
    return this.#servers.get(id)?.up ?? true
  }

  /** The servers that are down now. The same object until the next change. */
  get down(): ReadonlySet<string> {
    return this.#down
  }

  /** Every tracked server with its state and the reason of its last check. */
  states(): { server: string; state: HealthState; lastReason: string }[] {
    return [...this.#servers].map(([server, s]) => ({ server, state: s.up ? 'up' : 'down', lastReason: s.lastReason }))
  }

  #publish(): void {
    this.#down = new Set([...this.#servers].filter(([, s]) => !s.up).map(([id]) => id))
  }
}

/** Logs a transition once: going down is a warning with the last check's reason, coming back is info. */
export function logTransition(
  logger: { warn(obj: object, msg: string): void; info(obj: object, msg: string): void },
  pool: string,
  t: Transition,
): void {
  if (t.state === 'down')
    logger.warn(
      { type: 'health', pool, server: t.server, state: t.state, reason: t.reason },
      `server ${pool}/${t.server} DOWN after ${t.checks} failed checks: ${t.reason}`,
    )
  else
    logger.info(
      { type: 'health', pool, server: t.server, state: t.state },
      `server ${pool}/${t.server} UP after ${t.checks} passed checks`,
    )
}
