export {
  Cell,
  DURATION_BUCKETS_S,
  DurationCell,
  type Http2Metrics,
  type RouteMetrics,
  ServerCells,
  type TcpMetrics,
  type TunnelMetrics,
} from './cells.js'
export { type HealthStates, Metrics, type OverrideRow, type PoolGauges, SupervisorMetrics } from './metrics.js'
export { type MetricsJson, processMetricsJson } from './process.js'
export { METRICS, type MetricDef, SUPERVISOR_METRICS } from './table.js'
