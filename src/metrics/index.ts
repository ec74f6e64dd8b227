export {
  Cell,
  DURATION_BUCKETS_S,
  DurationCell,
  METRICS,
  Metrics,
  type RouteMetrics,
  SUPERVISOR_METRICS,
  SupervisorMetrics,
  type TcpMetrics,
} from './table.js'
