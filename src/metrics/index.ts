export { METRICS, Metrics, type RouteMetrics } from './table.js'
