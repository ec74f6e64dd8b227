/**
 * Live numbers for the dashboard and the `stats` event, computed here from successive reports (never
 * in the browser): requests per second, error rates and latency percentiles of every server, pool and
 * listener, and a history of them over the last STATS_HISTORY_MS.
 *
 * The admin server takes one reading every STATS_INTERVAL_MS. Each reading gives:
 * - rates over the interval since the reading before (requests per second, failed / all);
 * - p50, p95 and p99 of the tries that ended in the last LATENCY_SPAN_MS (a shorter span than the
 *   history makes a chart jump at every slow request; a longer one hides them);
 * a null where there is nothing to measure: a server's first reading has no rate, an interval without
 * requests no error rate, a span without tries no percentiles.
 *
 * A counter that went down (a worker that died or did not answer in time, a server removed and added
 * again under its name, a pool gone from a listener) gives that interval no rate (null), and a span
 * no percentiles: taking it as started over would chart everything since the start as one second.
 *
 * The history is a ring of STATS_HISTORY_MS / STATS_INTERVAL_MS points per series, in Float32Arrays
 * (NaN for null): about 22 KB per server, whatever the traffic. A series not written for a whole
 * history (its server gone) is dropped.
 */
import {
  addHistograms,
  EMPTY_HISTOGRAM,
  type HistogramReport,
  type ListenerReport,
  type PoolReport,
  subtractHistograms,
} from '../server/reports.js'
import { type Percentiles, percentiles } from './views.js'

export const STATS_INTERVAL_MS = 1000
export const STATS_HISTORY_MS = 15 * 60_000
export const LATENCY_SPAN_MS = 5000

export const STATUS_CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const
export type StatusClass = (typeof STATUS_CLASSES)[number]

/** A server's or a pool's live numbers. */
export interface UpstreamLive {
  /** Tries per second over the last interval; null on a server's first reading. */
  readonly rps: number | null
  /** Failed tries over all tries in the last interval, 0 to 1; null without tries. */
  readonly errorRate: number | null
  /** Whole tries that ended in the last LATENCY_SPAN_MS, in ms. */
  readonly latencyMs: Percentiles
}

export interface ListenerLive {
  /** Requests answered (TCP: connections ended) per second over the last interval. */
  readonly rps: number | null
  /** Failed over all (5xx answers; TCP: connections that reached no server), 0 to 1; null without requests. */
  readonly errorRate: number | null
  /** Answers per second by status class (zeros for TCP). */
  readonly classes: Readonly<Record<StatusClass, number | null>>
}

/** The live numbers of one reading, by pool, `pool\0server` and listener. */
export interface Reading {
  readonly atMs: number
  readonly servers: ReadonlyMap<string, UpstreamLive>
  readonly pools: ReadonlyMap<string, UpstreamLive>
  readonly listeners: ReadonlyMap<string, ListenerLive>
  /** The reading as one point of the history: the paths of StatsHistory, one value each. */
  readonly point: { readonly listeners: PointTree; readonly pools: PointTree }
}

export interface PointTree {
  readonly [key: string]: PointTree | number | null
}

/** A series is one number per point of `time`, null where there was nothing to measure. */
export type Series = (number | null)[]

/** The history, column by column (uPlot's data layout): each series has one value per `time`. */
export interface StatsHistory {
  readonly intervalMs: number
  readonly windowMs: number
  /** ms since the epoch, oldest first. */
  readonly time: number[]
  readonly listeners: Record<
    string,
    Record<'rps' | 'errorRate' | 'connections' | 'inFlight' | StatusClass, Series | undefined>
  >
  readonly pools: Record<
    string,
    Record<UpstreamMetric, Series | undefined> & { servers: Record<string, Record<UpstreamMetric, Series | undefined>> }
  >
}

type UpstreamMetric = 'rps' | 'errorRate' | 'inFlight' | 'p50' | 'p95' | 'p99'

/** What one reading keeps of a server's counters, to subtract from later ones. */
interface Counts {
  readonly requests: number
  readonly errors: number
  readonly duration: HistogramReport
}

interface Raw {
  readonly atMs: number
  readonly servers: ReadonlyMap<string, Counts>
  readonly listeners: ReadonlyMap<string, ListenerReport>
}

export class StatsRecorder {
  readonly #now: () => number
  readonly #intervalMs: number
  readonly #capacity: number
  /** Raw readings of the last LATENCY_SPAN_MS, oldest first. */
  #raw: Raw[] = []
  readonly #time: Float64Array
  readonly #series = new Map<
    string,
    { readonly path: readonly string[]; readonly values: Float32Array; lastMs: number }
  >()
  /** Points written (the next one goes to `#written % capacity`). */
  #written = 0
  #last: Reading | undefined

  constructor(options: { now?: () => number; intervalMs?: number; historyMs?: number } = {}) {
    this.#now = options.now ?? Date.now
    this.#intervalMs = options.intervalMs ?? STATS_INTERVAL_MS
    this.#capacity = Math.max(2, Math.round((options.historyMs ?? STATS_HISTORY_MS) / this.#intervalMs))
    this.#time = new Float64Array(this.#capacity)
  }

  /** The newest reading; undefined before the first. */
  get last(): Reading | undefined {
    return this.#last
  }

  /** Takes a reading of the reports: its live numbers, also appended to the history. */
  record(pools: readonly PoolReport[], listeners: readonly ListenerReport[]): Reading {
    const atMs = this.#now()
    const prev = this.#raw[this.#raw.length - 1]
    const spanBase = this.#raw.find((r) => atMs - r.atMs <= LATENCY_SPAN_MS) ?? prev
    const point = new Map<string, number | null>()
    const put = (path: readonly string[], value: number | null) => point.set(path.join('\0'), value)

    const servers = new Map<string, UpstreamLive>()
    const poolLive = new Map<string, UpstreamLive>()
    const counts = new Map<string, Counts>()
    for (const pool of pools) {
      let poolRequests = 0
      let poolErrors = 0
      let poolSeconds = 0
      let poolInFlight = 0
      const spans: HistogramReport[] = []
      for (const s of pool.servers) {
        const key = `${pool.name}\0${s.name}`
        const now: Counts = {
          requests: s.requests,
          errors: Object.values(s.errors).reduce((n, c) => n + c, 0),
          duration: s.duration,
        }
        counts.set(key, now)
        const before = prev?.servers.get(key)
        const dt = prev === undefined ? 0 : (atMs - prev.atMs) / 1000
        let rps: number | null = null
        let errorRate: number | null = null
        const wentDown = before !== undefined && (now.requests < before.requests || now.errors < before.errors)
        if (before !== undefined && dt > 0 && !wentDown) {
          const dr = now.requests - before.requests
          const de = now.errors - before.errors
          rps = dr / dt
          errorRate = dr > 0 ? Math.min(1, de / dr) : null
          poolRequests += dr
          poolErrors += de
          poolSeconds = dt
        }
        const span = since(now.duration, spanBase?.servers.get(key)?.duration)
        spans.push(span)
        const live: UpstreamLive = { rps, errorRate, latencyMs: percentiles(span) }
        servers.set(key, live)
        poolInFlight += s.inFlight
        writeUpstream(put, ['pools', pool.name, 'servers', s.name], live, s.inFlight)
      }
      const live: UpstreamLive = {
        rps: poolSeconds > 0 ? poolRequests / poolSeconds : null,
        errorRate: poolRequests > 0 ? Math.min(1, poolErrors / poolRequests) : null,
        latencyMs: percentiles(addHistograms(spans)),
      }
      poolLive.set(pool.name, live)
      writeUpstream(put, ['pools', pool.name], live, poolInFlight)
    }

    const listenerLive = new Map<string, ListenerLive>()
    for (const l of listeners) {
      const before = prev?.listeners.get(l.name)
      const dt = prev === undefined ? 0 : (atMs - prev.atMs) / 1000
      const rate = (now: number, was: number | undefined): number | null =>
        was === undefined || dt <= 0 || now < was ? null : (now - was) / dt
      const wentDown = before !== undefined && (l.requests < before.requests || l.failed < before.failed)
      const dr = before === undefined || wentDown ? 0 : l.requests - before.requests
      const df = before === undefined || wentDown ? 0 : l.failed - before.failed
      const classes = Object.fromEntries(
        STATUS_CLASSES.map((c, i) => [
          c,
          rate(l.classes[i] ?? 0, before === undefined ? undefined : (before.classes[i] ?? 0)),
        ]),
      ) as Record<StatusClass, number | null>
      const live: ListenerLive = {
        rps: rate(l.requests, before?.requests),
        errorRate: dr > 0 ? Math.min(1, df / dr) : null,
        classes,
      }
      listenerLive.set(l.name, live)
      const at = ['listeners', l.name]
      put([...at, 'rps'], live.rps)
      put([...at, 'errorRate'], live.errorRate)
      put([...at, 'connections'], l.connections)
      put([...at, 'inFlight'], l.inFlight)
      for (const c of STATUS_CLASSES) put([...at, c], classes[c])
    }

    this.#raw.push({ atMs, servers: counts, listeners: new Map(listeners.map((l) => [l.name, l])) })
    while (this.#raw.length > 1 && atMs - (this.#raw[0] as Raw).atMs > LATENCY_SPAN_MS) this.#raw.shift()
    this.#append(atMs, point)
    const tree: Record<string, Record<string, unknown>> = { listeners: {}, pools: {} }
    for (const [key, value] of point) setPath(tree, key.split('\0'), value)
    this.#last = {
      atMs,
      servers,
      pools: poolLive,
      listeners: listenerLive,
      point: tree as unknown as Reading['point'],
    }
    return this.#last
  }

  #append(atMs: number, point: ReadonlyMap<string, number | null>): void {
    const slot = this.#written % this.#capacity
    this.#time[slot] = atMs
    for (const [key, value] of point) {
      let entry = this.#series.get(key)
      if (entry === undefined) {
        entry = { path: key.split('\0'), values: new Float32Array(this.#capacity).fill(Number.NaN), lastMs: atMs }
        this.#series.set(key, entry)
      }
      entry.values[slot] = value ?? Number.NaN
      entry.lastMs = atMs
    }
    const historyMs = this.#capacity * this.#intervalMs
    for (const [key, entry] of this.#series) {
      if (point.has(key)) continue
      entry.values[slot] = Number.NaN
      if (atMs - entry.lastMs > historyMs) this.#series.delete(key)
    }
    this.#written++
  }

  /** The history, oldest point first. */
  history(): StatsHistory {
    const n = Math.min(this.#written, this.#capacity)
    const first = this.#written - n
    const order = Array.from({ length: n }, (_, i) => (first + i) % this.#capacity)
    const out = {
      intervalMs: this.#intervalMs,
      windowMs: this.#capacity * this.#intervalMs,
      time: order.map((i) => this.#time[i] as number),
      listeners: {},
      pools: {},
    } as StatsHistory
    for (const { path, values } of this.#series.values())
      setPath(
        out as unknown as Record<string, unknown>,
        path,
        order.map((i) => {
          const v = values[i] as number
          return Number.isNaN(v) ? null : round(v)
        }),
      )
    for (const pool of Object.values(out.pools)) pool.servers ??= {}
    return out
  }
}

function writeUpstream(
  put: (path: readonly string[], value: number | null) => void,
  at: readonly string[],
  live: UpstreamLive,
  inFlight: number,
): void {
  put([...at, 'rps'], live.rps)
  put([...at, 'errorRate'], live.errorRate)
  put([...at, 'inFlight'], inFlight)
  put([...at, 'p50'], live.latencyMs.p50)
  put([...at, 'p95'], live.latencyMs.p95)
  put([...at, 'p99'], live.latencyMs.p99)
}

/** Sets `value` at `path` in a tree of plain objects, making the nodes on the way. */
function setPath(root: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = root
  for (const segment of path.slice(0, -1)) {
    node[segment] ??= {}
    node = node[segment] as Record<string, unknown>
  }
  node[path[path.length - 1] as string] = typeof value === 'number' ? round(value) : value
}

/** The observations of `now` since `base`; all of them without a base, none when it went down. */
function since(now: HistogramReport, base: HistogramReport | undefined): HistogramReport {
  if (base === undefined) return now.count === 0 ? EMPTY_HISTOGRAM : now
  if (base.count > now.count) return EMPTY_HISTOGRAM
  return subtractHistograms(now, base)
}

/** Four significant decimals are more than a chart or a table shows; Float32 noise goes. */
function round(v: number): number {
  return Math.round(v * 1e4) / 1e4
}
