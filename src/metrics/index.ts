export {
  Cell,
  DurationCell,
  METRICS,
  Metrics,
  type RouteMetrics,
  SUPERVISOR_METRICS,
  SupervisorMetrics,
  type TcpMetrics,
} from './table.js'
