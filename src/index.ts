/**
 * Switchyard's public API for embedders: the only import path users need.
 *
 *   import { createLoadBalancer } from 'switchyard-lb'
 *   const lb = createLoadBalancer({ listeners: [...], pools: [...] })
 *   await lb.start(); ...; await lb.reload(newConfig); await lb.close()
 */
import { type ConfigInput, validateConfig } from './config/index.js'
import { balancerTable } from './plugins/index.js'
import { configError, LoadBalancer, type LoadBalancerOptions } from './server/load-balancer.js'

export type { Balancer, BalancerEnv, Outcome, PickContext, PickReport, ServerScore } from './balancer/index.js'
export { ALGORITHMS } from './balancer/index.js'
export {
  type ConfigInput,
  type ConfigIssue,
  configSchema,
  formatIssue,
  type LoadResult,
  loadConfigFile,
  parseConfigText,
  type RuntimeConfig,
  validateConfig,
} from './config/index.js'
export type { Backend } from './core/backend.js'
export { ERROR_CODES, type ErrorCode, isSwitchyardError, SwitchyardError } from './core/errors.js'
export { createLogger, type Logger, type LogLevel } from './core/logger.js'
export {
  type ExplainRecord,
  type HeaderEntry,
  parseExplainHeader,
  type ServerChoice,
} from './explain/index.js'
export type {
  Candidate,
  Filter,
  FilterContext,
  ForwardedRequest,
  LogRecord,
  RequestView,
  Respond,
  ResponseDraft,
  RouteView,
  UpstreamDraft,
  Verdict,
} from './filters/types.js'
export { METRICS } from './metrics/index.js'
export { type BalancerFactory, definePlugin, type Plugin, type PluginBalancer } from './plugins/index.js'
export { LoadBalancer, type LoadBalancerOptions, type StatusReport } from './server/load-balancer.js'
export {
  createExplainer,
  type Explainer,
  type ExplainOptions,
  type ExplainRequest,
  type ExplainStep,
  type Explanation,
  explain,
} from './testkit/index.js'
export { VERSION } from './version.js'

/**
 * Validates `config` (the same shape as switchyard.yaml) and builds a load balancer; call `start()`.
 * Throws a SwitchyardError with code SWY_CONFIG_INVALID (issues in `details.issues`) when it is invalid.
 */
export function createLoadBalancer(config: ConfigInput, options: LoadBalancerOptions = {}): LoadBalancer {
  const result = validateConfig(config, { balancers: balancerTable(options.plugins ?? []) })
  if (!result.ok) throw configError(result.issues)
  return new LoadBalancer(result.config, options)
}
