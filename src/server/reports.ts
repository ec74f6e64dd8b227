/**
 * What a data plane reports of its pools and listeners to the admin API: each server's state (since
 * when), its load and counts, and its histograms as raw bucket counts; each listener's connections,
 * load and answers by status class. A supervisor adds up its workers' reports exactly
 * (`mergePoolReports`, `mergeListenerReports`) before rates and quantiles are taken. Plain data: it
 * crosses IPC.
 */
import { DURATION_BUCKETS_S } from '../metrics/index.js'
import type { ServerState } from '../upstream/pool.js'

/** A histogram as counts per bucket (not cumulative; the last is +Inf), with sum (s) and count. */
export interface HistogramReport {
  readonly counts: readonly number[]
  readonly sum: number
  readonly count: number
}

export interface ServerReport {
  readonly name: string
  readonly url: string
  readonly weight: number
  readonly backup: boolean
  readonly state: ServerState
  /** When it entered `state`, in ms since the epoch. */
  readonly sinceMs: number
  readonly inFlight: number
  /** Tries sent to it since it joined. */
  readonly requests: number
  /** Failed tries by code (SWY_* or `5xx`). */
  readonly errors: Readonly<Record<string, number>>
  /** Requests tried again after a try to this server failed. */
  readonly retries: number
  /** Times passive health ejected it (summed over workers: each ejects on its own). */
  readonly ejections: number
  readonly duration: HistogramReport
  readonly ttfb: HistogramReport
  /** The active health check's view; undefined when the pool has no checks. */
  readonly health: { readonly state: 'up' | 'down'; readonly lastResult: string } | undefined
}

export interface PoolReport {
  readonly name: string
  readonly algorithm: string
  /** Requests waiting in the pool's queue now. */
  readonly queued: number
  readonly servers: readonly ServerReport[]
}

export interface ListenerReport {
  readonly name: string
  /** The bound address, `host:port`. */
  readonly address: string
  /** Client connections open now. */
  readonly connections: number
  /** Requests (HTTP) or connections (TCP) being handled now. */
  readonly inFlight: number
  /** HTTP: requests answered, by status class 1xx to 5xx (five counts). TCP: five zeros. */
  readonly classes: readonly number[]
  /** Requests answered (HTTP: the sum of `classes`) or connections ended (TCP), since start. */
  readonly requests: number
  /** Of `requests`, those that failed: answers of class 5xx (HTTP), connections that reached no server (TCP). */
  readonly failed: number
}

/** One report from several workers' reports of the same listeners: every count added. */
export function mergeListenerReports(reports: readonly (readonly ListenerReport[])[]): ListenerReport[] {
  const first = reports[0]
  if (first === undefined) return []
  return first.map((l) => {
    const same = reports.flatMap((r) => r.filter((x) => x.name === l.name))
    const sum = (f: (x: ListenerReport) => number) => same.reduce((n, x) => n + f(x), 0)
    return {
      name: l.name,
      address: l.address,
      connections: sum((x) => x.connections),
      inFlight: sum((x) => x.inFlight),
      classes: l.classes.map((_, i) => sum((x) => x.classes[i] ?? 0)),
      requests: sum((x) => x.requests),
      failed: sum((x) => x.failed),
    }
  })
}

/** Which state wins when workers disagree (passive ejection is per worker): the first in this list. */
const STATE_ORDER: readonly ServerState[] = ['disabled', 'draining', 'down', 'ejected', 'up']

export const EMPTY_HISTOGRAM: HistogramReport = {
  counts: new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0),
  sum: 0,
  count: 0,
}

/** One report from several workers' reports of the same config: counts added, the gravest state kept. */
export function mergePoolReports(reports: readonly (readonly PoolReport[])[]): PoolReport[] {
  const first = reports[0]
  if (first === undefined) return []
  return first.map((pool) => {
    const same = reports.map((r) => r.find((p) => p.name === pool.name))
    return {
      ...pool,
      queued: same.reduce((n, p) => n + (p?.queued ?? 0), 0),
      servers: pool.servers.map((server) => {
        const all = same.flatMap((p) => p?.servers.filter((s) => s.name === server.name) ?? [])
        return mergeServer(all)
      }),
    }
  })
}

function mergeServer(all: readonly ServerReport[]): ServerReport {
  const first = all[0] as ServerReport
  const state = STATE_ORDER.find((st) => all.some((s) => s.state === st)) ?? first.state
  const errors: Record<string, number> = {}
  for (const s of all) for (const [code, n] of Object.entries(s.errors)) errors[code] = (errors[code] ?? 0) + n
  return {
    ...first,
    state,
    sinceMs: Math.min(...all.filter((s) => s.state === state).map((s) => s.sinceMs)),
    inFlight: all.reduce((n, s) => n + s.inFlight, 0),
    requests: all.reduce((n, s) => n + s.requests, 0),
    errors,
    retries: all.reduce((n, s) => n + s.retries, 0),
    ejections: all.reduce((n, s) => n + s.ejections, 0),
    duration: addHistograms(all.map((s) => s.duration)),
    ttfb: addHistograms(all.map((s) => s.ttfb)),
  }
}

export function addHistograms(list: readonly HistogramReport[]): HistogramReport {
  const counts = new Array<number>(DURATION_BUCKETS_S.length + 1).fill(0)
  let sum = 0
  let count = 0
  for (const h of list) {
    h.counts.forEach((c, i) => {
      counts[i] = (counts[i] ?? 0) + c
    })
    sum += h.sum
    count += h.count
  }
  return { counts, sum, count }
}

/** `a − b`, bucket by bucket (the observations between two readings of one histogram). */
export function subtractHistograms(a: HistogramReport, b: HistogramReport): HistogramReport {
  return { counts: a.counts.map((c, i) => c - (b.counts[i] ?? 0)), sum: a.sum - b.sum, count: a.count - b.count }
}

/**
 * The q-quantile (0 < q < 1) of a histogram in seconds, interpolated linearly inside its bucket as
 * Prometheus's `histogram_quantile` does; undefined when it is empty. Within the +Inf bucket, the
 * highest finite bound.
 */
export function quantile(h: HistogramReport, q: number): number | undefined {
  if (h.count <= 0) return undefined
  const rank = q * h.count
  let below = 0
  for (let i = 0; i < h.counts.length; i++) {
    const c = h.counts[i] ?? 0
    if (c > 0 && below + c >= rank) {
      const upper = DURATION_BUCKETS_S[i]
      if (upper === undefined) return DURATION_BUCKETS_S[DURATION_BUCKETS_S.length - 1]
      const lower = i === 0 ? 0 : (DURATION_BUCKETS_S[i - 1] as number)
      return lower + (upper - lower) * ((rank - below) / c)
    }
    below += c
  }
  return DURATION_BUCKETS_S[DURATION_BUCKETS_S.length - 1]
}
