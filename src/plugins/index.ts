export { type BalancerFactory, balancerTable, type PluginBalancer } from './balancers.js'
export { definePlugin, type Plugin, pluginProblems } from './define.js'
export { loadPlugins } from './load.js'
