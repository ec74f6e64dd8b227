export { definePlugin, type Plugin, pluginProblems } from './define.js'
export { loadPlugins } from './load.js'
