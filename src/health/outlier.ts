/**
 * Passive health checking (outlier detection, after Envoy's): the pool reports how each request to a
 * server ended, and a server is ejected (taken out of the balancers) after `consecutiveFailures`
 * failures in a row (upstream errors and 5xx), or when its failure rate over `window` reaches
 * `errorRate.threshold` with at least `errorRate.minRequests` requests. The n-th ejection of a server
 * lasts n × `baseEjectionTime`, at most `maxEjectionTime`; then the server returns on probation, and a
 * success resets its count. No more than `maxEjectionPercent` of the pool's servers are ejected at once,
 * so a bad signal cannot empty the pool.
 *
 * Data plane, per process: with several workers, each detects from its own requests. The clock and the
 * timers are injected for tests.
 */
export interface OutlierSettings {
  readonly consecutiveFailures: number
  readonly errorRate:
    | { readonly threshold: number; readonly minRequests: number; readonly windowMs: number }
    | undefined
  readonly baseEjectionMs: number
  readonly maxEjectionMs: number
  readonly maxEjectionPercent: number
}

export interface OutlierClock {
  now(): number
  /** Calls `fn` after `ms`; the timer must not keep the process alive. */
  after(ms: number, fn: () => void): void
}

const realClock: OutlierClock = {
  now: () => performance.now(),
  after(ms, fn) {
    setTimeout(fn, ms).unref()
  },
}

interface ServerRecord {
  consecutive: number
  /** Ejections so far: the next one lasts (ejections + 1) × base. */
  ejections: number
  windowStart: number
  windowTotal: number
  windowFailed: number
  /** While ejected: when it returns (the clock's ms). */
  until: number
}

export class OutlierDetector {
  readonly #settings: OutlierSettings
  readonly #clock: OutlierClock
  readonly #onChange: () => void
  readonly #servers = new Map<string, ServerRecord>()
  #serverCount: number
  /** Ejected now: a new set on every change, read by the request path. */
  #ejected: ReadonlySet<string> = new Set()

  /** `onChange` runs after every ejection and every return. */
  constructor(settings: OutlierSettings, serverCount: number, onChange: () => void, clock: OutlierClock = realClock) {
    this.#settings = settings
    this.#serverCount = serverCount
    this.#onChange = onChange
    this.#clock = clock
  }

  /**
   * A detector for the next generation of a pool that starts from the previous one's records and
   * ejections (a reload or a runtime change must not forgive a failing server), each ejection for the
   * rest of its time. The previous one is left as it was, serving on if the new generation is refused.
   */
  static adopt(
    previous: OutlierDetector | undefined,
    settings: OutlierSettings,
    serverCount: number,
    onChange: () => void,
  ): OutlierDetector {
    const next = new OutlierDetector(
      settings,
      serverCount,
      onChange,
      previous === undefined ? realClock : previous.#clock,
    )
    if (previous === undefined) return next
    for (const [id, r] of previous.#servers) next.#servers.set(id, { ...r })
    const now = next.#clock.now()
    const ejected = new Set<string>()
    for (const id of previous.#ejected) {
      const left = (previous.#servers.get(id)?.until ?? now) - now
      if (left <= 0) continue
      ejected.add(id)
      next.#clock.after(left, () => next.#restore(id))
    }
    next.#ejected = ejected
    return next
  }

  get ejected(): ReadonlySet<string> {
    return this.#ejected
  }

  /** Forgets the servers that left the pool; the ejection cap counts the ones that remain. */
  retain(ids: ReadonlySet<string>): void {
    this.#serverCount = ids.size
    for (const id of this.#servers.keys()) if (!ids.has(id)) this.#servers.delete(id)
    if ([...this.#ejected].some((id) => !ids.has(id)))
      this.#ejected = new Set([...this.#ejected].filter((id) => ids.has(id)))
  }

  /** The outcome of one request to server `id`. */
  record(id: string, ok: boolean): void {
    let r = this.#servers.get(id)
    const now = this.#clock.now()
    if (r === undefined) {
      r = { consecutive: 0, ejections: 0, windowStart: now, windowTotal: 0, windowFailed: 0, until: 0 }
      this.#servers.set(id, r)
    }
    const rate = this.#settings.errorRate
    if (rate !== undefined && now - r.windowStart >= rate.windowMs) {
      r.windowStart = now
      r.windowTotal = 0
      r.windowFailed = 0
    }
    r.windowTotal++
    if (ok) {
      r.consecutive = 0
      return
    }
    r.consecutive++
    r.windowFailed++
    if (this.#ejected.has(id)) return
    const byStreak = r.consecutive >= this.#settings.consecutiveFailures
    const byRate =
      rate !== undefined && r.windowTotal >= rate.minRequests && r.windowFailed / r.windowTotal >= rate.threshold
    if (byStreak || byRate) this.#eject(id, r)
  }

  #eject(id: string, r: ServerRecord): void {
    const cap = Math.floor((this.#serverCount * this.#settings.maxEjectionPercent) / 100)
    if (this.#ejected.size + 1 > cap) return
    r.ejections++
    r.consecutive = 0
    r.windowTotal = 0
    r.windowFailed = 0
    this.#ejected = new Set([...this.#ejected, id])
    const ms = Math.min(this.#settings.baseEjectionMs * r.ejections, this.#settings.maxEjectionMs)
    r.until = this.#clock.now() + ms
    this.#clock.after(ms, () => this.#restore(id))
    this.#onChange()
  }

  #restore(id: string): void {
    if (!this.#ejected.has(id)) return
    const next = new Set(this.#ejected)
    next.delete(id)
    this.#ejected = next
    const r = this.#servers.get(id)
    if (r !== undefined) r.windowStart = this.#clock.now()
    this.#onChange()
  }
}
