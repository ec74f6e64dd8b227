/**
 * What the admin API shows, built from the data plane's reports (server/reports.ts), the runtime
 * overrides and the effective config: never from pool internals.
 *
 * Latency percentiles are over a sliding window: LatencyWindow keeps readings of each server's
 * histograms, at most one per SAMPLE_MS, and a percentile is taken over what was observed since the
 * newest reading at least WINDOW_MS old; with no reading that old (the admin API, or the server, is
 * younger than the window), over everything since the server joined.
 */

import type { RuntimeConfig } from '../config/index.js'
import { REDACTED, redactUrl } from '../core/redact.js'
import { type Overrides, overrideOf, type ServerOverride } from '../server/overrides.js'
import {
  type HistogramReport,
  type ListenerReport,
  type PoolReport,
  quantile,
  type ServerReport,
  subtractHistograms,
} from '../server/reports.js'
import type { ServerState } from '../upstream/pool.js'

export const WINDOW_MS = 60_000
export const SAMPLE_MS = 5_000

export interface Percentiles {
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
}

export interface ServerView {
  readonly name: string
  readonly url: string
  readonly weight: number
  readonly backup: boolean
  readonly state: ServerState
  /** ISO 8601: when it entered `state`. */
  readonly since: string
  readonly inFlight: number
  readonly requests: number
  readonly errors: number
  readonly errorsByCode: Readonly<Record<string, number>>
  /** Requests tried again after a try to it failed. */
  readonly retries: number
  /** Times passive health ejected it. */
  readonly ejections: number
  /** Whole tries, in ms, over the window; null without traffic in it. */
  readonly latencyMs: Percentiles
  /** Try start to response head, in ms, over the window. */
  readonly ttfbMs: Percentiles
  /** Raw bucket counts of the whole-try histogram since the server joined (`bucketsS` bounds). */
  readonly histogram: HistogramReport
  readonly health: { readonly state: 'up' | 'down'; readonly lastResult: string } | null
  /** `config`: from the loaded config; `runtime`: added through the API. */
  readonly source: 'config' | 'runtime'
  /** What the runtime overlay sets on this server; null when nothing. */
  readonly override: ServerOverride | null
}

export interface PoolView {
  readonly name: string
  readonly algorithm: string
  readonly queued: number
  readonly servers: readonly ServerView[]
}

type Reading = { readonly atMs: number; readonly duration: HistogramReport; readonly ttfb: HistogramReport }

/** Readings of each server's histograms, for windowed percentiles (WINDOW_MS, SAMPLE_MS unless told). */
export class LatencyWindow {
  readonly #readings = new Map<string, Reading[]>()
  readonly #now: () => number
  readonly #windowMs: number
  readonly #sampleMs: number

  constructor(now: () => number = Date.now, windowMs = WINDOW_MS, sampleMs = SAMPLE_MS) {
    this.#now = now
    this.#windowMs = windowMs
    this.#sampleMs = sampleMs
  }

  /** Records the reports (at most one reading per server per sample period) and forgets removed servers. */
  record(pools: readonly PoolReport[]): void {
    const now = this.#now()
    const seen = new Set<string>()
    for (const pool of pools)
      for (const s of pool.servers) {
        const key = `${pool.name}\0${s.name}`
        seen.add(key)
        const list = this.#readings.get(key) ?? []
        const last = list[list.length - 1]
        // A count that went down is a new server under the same name: start over.
        if (last !== undefined && last.duration.count > s.duration.count) list.length = 0
        if (last === undefined || list.length === 0 || now - last.atMs >= this.#sampleMs)
          list.push({ atMs: now, duration: s.duration, ttfb: s.ttfb })
        // Keep one reading older than the window, the base of the next percentiles.
        while (list.length > 2 && now - (list[1] as Reading).atMs >= this.#windowMs) list.shift()
        this.#readings.set(key, list)
      }
    for (const key of this.#readings.keys()) if (!seen.has(key)) this.#readings.delete(key)
  }

  /** The observations of the window: now minus the base reading. */
  window(pool: string, s: ServerReport): { duration: HistogramReport; ttfb: HistogramReport } {
    const list = this.#readings.get(`${pool}\0${s.name}`) ?? []
    const now = this.#now()
    let base: Reading | undefined
    for (const r of list) if (now - r.atMs >= this.#windowMs) base = r
    if (base === undefined || base.duration.count > s.duration.count) return { duration: s.duration, ttfb: s.ttfb }
    return { duration: subtractHistograms(s.duration, base.duration), ttfb: subtractHistograms(s.ttfb, base.ttfb) }
  }
}

export function poolView(report: PoolReport, overrides: Overrides, window: LatencyWindow): PoolView {
  return {
    name: report.name,
    algorithm: report.algorithm,
    queued: report.queued,
    servers: report.servers.map((s) => {
      const ov = overrideOf(overrides, report.name, s.name)
      const w = window.window(report.name, s)
      return {
        name: s.name,
        url: s.url,
        weight: s.weight,
        backup: s.backup,
        state: s.state,
        since: new Date(s.sinceMs).toISOString(),
        inFlight: s.inFlight,
        requests: s.requests,
        errors: Object.values(s.errors).reduce((n, c) => n + c, 0),
        errorsByCode: s.errors,
        retries: s.retries,
        ejections: s.ejections,
        latencyMs: percentiles(w.duration),
        ttfbMs: percentiles(w.ttfb),
        histogram: s.duration,
        health: s.health ?? null,
        source: ov?.added === undefined ? 'config' : 'runtime',
        override: ov ?? null,
      }
    }),
  }
}

/** p50, p95 and p99 of a histogram in ms (to the µs); nulls when it is empty. */
export function percentiles(h: HistogramReport): Percentiles {
  const ms = (q: number) => {
    const s = quantile(h, q)
    return s === undefined ? null : Math.round(s * 1e6) / 1e3
  }
  return { p50: ms(0.5), p95: ms(0.95), p99: ms(0.99) }
}

/** Keys whose values are secrets: shown as REDACTED in `GET /api/v1/config`. */
const SECRET_KEYS = /^(token|secret|secretHex|password|passwordHash|hash|users|privateKey|clientSecret|apiKey)$/i

export { REDACTED }

/** Objects under these keys hold secrets in every value, whatever their names: `tracing.otlp.headers`. */
const SECRET_MAPS: ReadonlyMap<string, string> = new Map([['otlp', 'headers']])

/** A copy of a config (or any JSON value) with its secrets replaced. */
export function redact(value: unknown, parentKey?: string): unknown {
  if (typeof value === 'string') return redactUrl(value)
  if (Array.isArray(value)) return value.map((v) => redact(v))
  if (value === null || typeof value !== 'object') return value
  const secretMap = parentKey === undefined ? undefined : SECRET_MAPS.get(parentKey)
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(value)) {
    const secret = SECRET_KEYS.test(k) && v !== undefined && v !== null
    if (secret) out[k] = REDACTED
    else if (k === secretMap && v !== null && typeof v === 'object')
      out[k] = Object.fromEntries(Object.keys(v).map((h) => [h, REDACTED]))
    else out[k] = redact(v, k)
  }
  return out
}

export interface ListenerView {
  readonly name: string
  readonly protocol: string
  readonly listen: string
  readonly address: string
  readonly inFlight: number
  /** Client connections open now. */
  readonly connections: number
  /** Requests answered since start, in all and by status class (HTTP; zeros for TCP). */
  readonly requests: Readonly<Record<'total' | '1xx' | '2xx' | '3xx' | '4xx' | '5xx', number>>
  /** Connections ended since start (TCP; 0 for HTTP). */
  readonly tcpConnections: number
  /** The listener's own rules, run before routing. */
  readonly rules: readonly string[]
  readonly routes: readonly {
    readonly name: string | null
    readonly match: unknown
    readonly pool: string | null
    readonly rules: readonly string[]
  }[]
}

export function listenerViews(config: RuntimeConfig, reports: readonly ListenerReport[]): ListenerView[] {
  return config.listeners.map((l) => {
    const now = reports.find((x) => x.name === l.name)
    const c = now?.classes ?? []
    return {
      name: l.name,
      protocol: l.protocol,
      listen: l.listen,
      address: now?.address ?? '',
      inFlight: now?.inFlight ?? 0,
      connections: now?.connections ?? 0,
      requests: {
        total: l.protocol === 'tcp' ? 0 : (now?.requests ?? 0),
        '1xx': c[0] ?? 0,
        '2xx': c[1] ?? 0,
        '3xx': c[2] ?? 0,
        '4xx': c[3] ?? 0,
        '5xx': c[4] ?? 0,
      },
      tcpConnections: l.protocol === 'tcp' ? (now?.requests ?? 0) : 0,
      rules: Object.keys(l.rules ?? {}),
      routes: l.routes.map((r) => ({
        name: r.name ?? null,
        match: redact(r.match),
        pool: r.pool ?? null,
        rules: Object.keys(r.rules ?? {}),
      })),
    }
  })
}
