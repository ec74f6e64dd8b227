export type { CheckSchedule } from './checker.js'
export { HealthChecker } from './checker.js'
export { type ConnectEjectionSettings, ConnectEjector } from './connect-ejection.js'
export { type CheckedPool, ExternalHealth, HealthMonitor, type HealthSource } from './monitor.js'
export { type OutlierClock, OutlierDetector, type OutlierSettings } from './outlier.js'
export {
  CHECK_TYPES,
  createProbe,
  HEALTH_CHECKS,
  type HealthCheckOptions,
  type HealthCheckTable,
  healthCheckSchema,
} from './registry.js'
export type { HealthState, Transition } from './tracker.js'
export { HealthTracker, logTransition } from './tracker.js'
