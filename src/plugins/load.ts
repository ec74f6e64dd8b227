/**
 * Loading the plugins a config names: each module's default export is a plugin, or a function
 * `(options) => plugin` (async allowed). Loaded at start and on every reload; a module whose file
 * changed is imported afresh (its URL carries the file's modification time, since ES modules are
 * cached by URL), so a reload picks up an edited plugin. A module that fails to load or does not
 * export a plugin fails the start or the reload, naming it.
 */
import { stat } from 'node:fs/promises'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import type { PluginConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import { type Plugin, pluginProblems } from './define.js'

export async function loadPlugins(configs: readonly PluginConfig[]): Promise<Plugin[]> {
  const out: Plugin[] = []
  for (const [i, pc] of configs.entries()) out.push(await loadOne(pc, i))
  return out
}

async function loadOne(pc: PluginConfig, index: number): Promise<Plugin> {
  const where = `plugins[${index}] (${pc.module})`
  let specifier = pc.module
  if (path.isAbsolute(pc.module)) {
    let version = ''
    try {
      version = `?v=${(await stat(pc.module)).mtimeMs}`
    } catch (err) {
      throw invalid(`${where}: cannot read the module: ${(err as Error).message}`, err)
    }
    specifier = `${pathToFileURL(pc.module).href}${version}`
  }
  let mod: { default?: unknown }
  try {
    mod = (await import(specifier)) as { default?: unknown }
  } catch (err) {
    throw invalid(`${where}: cannot load the module: ${(err as Error).message}`, err)
  }
  let plugin = mod.default
  try {
    if (typeof plugin === 'function') plugin = await (plugin as (options: unknown) => unknown)(pc.options)
  } catch (err) {
    throw invalid(`${where}: its factory failed: ${(err as Error).message}`, err)
  }
  const problems = pluginProblems(plugin)
  if (problems.length > 0)
    throw invalid(
      `${where}: expected a default export that is a plugin (or a function returning one): ${problems.join('; ')}`,
    )
  return plugin as Plugin
}

function invalid(message: string, cause?: unknown): SwitchyardError {
  return new SwitchyardError('SWY_CONFIG_INVALID', message, cause === undefined ? undefined : { cause })
}
