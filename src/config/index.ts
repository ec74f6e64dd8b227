export {
  type ConfigIssue,
  formatIssue,
  type LoadResult,
  loadConfigFile,
  parseConfigText,
  validateConfig,
} from './load.js'
export type { ListenerConfig, PoolConfig, RouteConfig, RouteMatch, RuntimeConfig } from './normalize.js'
export { type ConfigInput, configSchema } from './schema.js'
