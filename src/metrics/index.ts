export {
  Cell,
  DURATION_BUCKETS_S,
  DurationCell,
  type Http2Metrics,
  METRICS,
  Metrics,
  type RouteMetrics,
  ServerCells,
  SUPERVISOR_METRICS,
  SupervisorMetrics,
  type TcpMetrics,
  type TunnelMetrics,
} from './table.js'
