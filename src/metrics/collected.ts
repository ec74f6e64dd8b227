/**
 * Real prom-client metrics whose series are read from request-path cells when scraped: each one's
 * `collect()` (run by the registry before it reads the metric) starts from empty and adds a series per
 * cell. Counters and gauges are filled through the public API (`reset`, `inc`, `set`).
 *
 * Histograms cannot be: prom-client's public API fills a histogram one observation at a time
 * (`observe`), and a cell holds bucket counts taken on the request path. So `collect()` writes the
 * histogram's series into its internal state (HistogramState below), the one place Switchyard reaches
 * past prom-client's public API. package.json pins prom-client's exact version for it, and
 * src/metrics/collected.test.ts checks that a histogram filled this way reads exactly as one fed the
 * same values through `observe()`, so an upgrade that changes the shape fails there, not in production.
 * (Registering an object of our own in the registry instead would depend on more of its internals: the
 * registry reads histograms through an undocumented `getForPromString()`.)
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { DURATION_BUCKETS_S, type DurationCell } from './cells.js'
import type { MetricDef } from './table.js'

/** The labels of one series, in the order they are written. */
export type Labels = Record<string, string>

/** Adds one series to the metric being collected. */
export type AddSeries<V> = (labels: Labels, value: V) => void

/** A counter read from cells: `read` adds each series with its value (never negative). */
export function collectedCounter(registry: Registry, def: MetricDef, read: (add: AddSeries<number>) => void): Counter {
  return new Counter({
    name: def.name,
    help: def.help,
    labelNames: def.labelNames,
    registers: [registry],
    collect() {
      this.reset()
      read((labels, value) => this.inc(labels, value))
    },
  })
}

/** A gauge read from cells (or from the snapshots that serve) when scraped. */
export function collectedGauge(registry: Registry, def: MetricDef, read: (add: AddSeries<number>) => void): Gauge {
  return new Gauge({
    name: def.name,
    help: def.help,
    labelNames: def.labelNames,
    registers: [registry],
    collect() {
      this.reset()
      read((labels, value) => this.set(labels, value))
    },
  })
}

/** prom-client 15.1's state of a Histogram (lib/histogram.js): per series, counts by upper bound, not cumulative. */
interface HistogramState {
  hashMap: Record<
    string,
    { labels: Labels; bucketValues: Record<number, number>; sum: number; count: number } | undefined
  >
}

/** A histogram over DURATION_BUCKETS_S read from duration cells when scraped. */
export function collectedHistogram(
  registry: Registry,
  def: MetricDef,
  read: (add: AddSeries<DurationCell>) => void,
): Histogram {
  const histogram = new Histogram({
    name: def.name,
    help: def.help,
    labelNames: def.labelNames,
    buckets: DURATION_BUCKETS_S,
    registers: [registry],
    collect() {
      this.reset()
      const series = (this as unknown as HistogramState).hashMap
      let n = 0
      read((labels, cell) => {
        const bucketValues: Record<number, number> = {}
        for (let i = 0; i < DURATION_BUCKETS_S.length; i++)
          bucketValues[DURATION_BUCKETS_S[i] as number] = cell.counts[i] as number
        // The key only has to be unique: prom-client exports the values of the map, in order.
        series[`s${n++}`] = { labels, bucketValues, sum: cell.sum, count: cell.count }
      })
    },
  })
  const state = histogram as unknown as Partial<HistogramState>
  if (typeof state.hashMap !== 'object' || state.hashMap === null)
    throw new Error('prom-client Histogram has no hashMap: its internals changed (see src/metrics/collected.ts)')
  return histogram
}
