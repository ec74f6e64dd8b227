export {
  Cell,
  DurationCell,
  type Http2Metrics,
  METRICS,
  Metrics,
  type RouteMetrics,
  SUPERVISOR_METRICS,
  SupervisorMetrics,
  type TcpMetrics,
  type TunnelMetrics,
} from './table.js'
