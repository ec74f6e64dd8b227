/**
 * Node process metrics: prom-client's defaults (`nodejs_eventloop_lag_*`, `nodejs_heap_*`,
 * `nodejs_gc_duration_seconds`, `nodejs_active_handles*`, `process_cpu_*`, `process_resident_memory_bytes`,
 * `nodejs_version_info`, ...) in one registry per process, made on the first scrape.
 *
 * Per process, not per LoadBalancer: `collectDefaultMetrics` starts an event-loop delay monitor and a GC
 * observer that prom-client never stops, so one per instance would leak both with every instance a
 * process makes and closes (tests, embedders). They describe the process anyway. Each instance's
 * `/metrics` includes them; the event-loop delay percentiles are since the process's previous scrape.
 *
 * With workers, each process's series carry a `worker` label (the slot index, or `supervisor`) instead of
 * being added up: a heap or a CPU time could be summed, but a version, a start time or a delay cannot.
 */
import { collectDefaultMetrics, type MetricObjectWithValues, type MetricValue, Registry } from 'prom-client'

let registry: Registry | undefined

/** The process's registry of default metrics (made, and the monitors started, on the first call). */
export function processRegistry(): Registry {
  if (registry === undefined) {
    registry = new Registry()
    collectDefaultMetrics({ register: registry })
  }
  return registry
}

/** Whether the process metrics were started in this process (tests). */
export function processMetricsStarted(): boolean {
  return registry !== undefined
}

export type MetricsJson = MetricObjectWithValues<MetricValue<string>>[]

/**
 * The process metrics as JSON (prom-client's `getMetricsAsJSON`), with `labels` added to every series.
 * Each aggregates as a sum: with a label of their own, every series stands alone when the supervisor
 * adds the workers' lists up, and none is dropped (prom-client omits a start time, or averages a delay).
 */
export async function processMetricsJson(labels: Record<string, string>): Promise<MetricsJson> {
  const metrics = (await processRegistry().getMetricsAsJSON()) as MetricsJson
  return metrics.map((m) => ({
    ...m,
    aggregator: 'sum',
    values: m.values.map((v) => ({ ...v, labels: { ...v.labels, ...labels } })),
  }))
}
