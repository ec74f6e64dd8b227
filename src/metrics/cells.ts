/**
 * Request-path metric cells: plain numbers that a request bumps (one addition: no label hashing, no
 * string building, no allocation), bound once per (listener, pool), (pool, server) or rule when a
 * snapshot is built. They are read into Prometheus form only when scraped (metrics.ts), and outlive
 * reloads, so counters never go backwards.
 */

/** Upper bounds of every Switchyard histogram, in seconds; a last, implicit bucket is +Inf. */
export const DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** A request-path counter or gauge: one number. */
export class Cell {
  value = 0
  inc(): void {
    this.value++
  }
  dec(): void {
    this.value--
  }
}

/** A request-path histogram: per-bucket counts (not cumulative; summed when scraped), sum and count. */
export class DurationCell {
  readonly counts = new Float64Array(DURATION_BUCKETS_S.length + 1)
  sum = 0
  count = 0

  observe(seconds: number): void {
    // i stops at most at DURATION_BUCKETS_S.length, the last (+Inf) slot of `counts`.
    let i = 0
    while (i < DURATION_BUCKETS_S.length && seconds > (DURATION_BUCKETS_S[i] as number)) i++
    ;(this.counts[i] as number)++
    this.sum += seconds
    this.count++
  }
}

/** The request-path cells of one server of a pool. */
export class ServerCells {
  /** Tries sent to it. */
  readonly requests = new Cell()
  readonly inFlight = new Cell()
  /** Whole tries, start to end. */
  readonly duration = new DurationCell()
  /** Start of a try to the response head. */
  readonly ttfb = new DurationCell()
  /** Failed tries by code; a code's cell is made on its first failure. */
  readonly errors = new Map<string, Cell>()

  error(code: string): void {
    let cell = this.errors.get(code)
    if (cell === undefined) {
      cell = new Cell()
      this.errors.set(code, cell)
    }
    cell.value++
  }
}

/** The cells of one TCP listener and its pool. */
export interface TcpMetrics {
  readonly ok: Cell
  readonly error: Cell
  readonly active: Cell
  readonly bytesIn: Cell
  readonly bytesOut: Cell
}

/** The tunnel cells of one pool. */
export interface TunnelMetrics {
  readonly opened: Cell
  readonly active: Cell
  readonly bytesIn: Cell
  readonly bytesOut: Cell
}

/** The HTTP/2 session counts of one listener. */
export interface Http2Metrics {
  readonly opened: Cell
  readonly active: Cell
}

/** The cells of one (listener, pool) pair. */
export interface RouteMetrics {
  /** Index `Math.floor(status / 100) - 1`. */
  readonly byClass: readonly Cell[]
  readonly duration: DurationCell
}
