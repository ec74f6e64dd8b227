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
  AccessLogSettings,
  AcmeSettings,
  ExplainSettings,
  ListenerConfig,
  OtlpSettings,
  PluginConfig,
  PoolConfig,
  RetrySettings,
  RouteConfig,
  RouteMatch,
  RuntimeConfig,
  ServerLimits,
  TracingSettings,
  UpstreamProtocol,
  UpstreamTlsConfig,
} from './normalize.js'
export { type ConfigInput, configSchema, type Engine } from './schema.js'
