export {
  type ConfigIssue,
  formatIssue,
  type LoadResult,
  type Locator,
  loadConfigFile,
  parseConfigText,
  parseYamlText,
  validateConfig,
  type YamlResult,
} from './load.js'
export type {
  AcmeSettings,
  ExplainSettings,
  ListenerConfig,
  PluginConfig,
  PoolConfig,
  RetrySettings,
  RouteConfig,
  RouteMatch,
  RuntimeConfig,
  ServerLimits,
  UpstreamProtocol,
  UpstreamTlsConfig,
} from './normalize.js'
export { type ConfigInput, configSchema, type Engine } from './schema.js'
