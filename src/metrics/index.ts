export { Cell, DURATION_BUCKETS_S, DurationCell, METRICS, Metrics, type RouteMetrics } from './table.js'
