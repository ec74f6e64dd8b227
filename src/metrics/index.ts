export {
  Cell,
  DURATION_BUCKETS_S,
  DurationCell,
  METRICS,
  Metrics,
  type RouteMetrics,
  SUPERVISOR_METRICS,
  SupervisorMetrics,
} from './table.js'
