/**
 * TypeScript plugins: a plugin is a named set of pipeline hooks (the same phases as the built-in rules,
 * see filters/types.ts), written with `definePlugin` for a typed context. Plugins run in the order they
 * are listed (embedded ones first, then the config's `plugins`), around the built-in rules: before them
 * on the way in, after them on the way out.
 */
import type { Filter } from '../filters/types.js'
import type { PluginBalancer } from './balancers.js'

export interface Plugin<State extends object = Record<string, unknown>> extends Filter<State> {
  /** Balancing algorithms the plugin adds, by name (see plugins/balancers.ts). */
  readonly balancers?: Readonly<Record<string, PluginBalancer>> | undefined
}

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@/-]{0,127}$/

const HOOKS = ['onRequest', 'onRoute', 'selectUpstream', 'onForward', 'onResponse', 'responseBody', 'onLog'] as const

/**
 * Checks and freezes a plugin. `State` types the per-request scratch object that every hook of the
 * plugin sees as `ctx.state`.
 */
export function definePlugin<State extends object = Record<string, unknown>>(plugin: Plugin<State>): Plugin<State> {
  const problems = pluginProblems(plugin)
  if (problems.length > 0) throw new TypeError(`invalid plugin: ${problems.join('; ')}`)
  return Object.freeze({ ...plugin })
}

/** What is wrong with a value that should be a plugin; empty when nothing is. */
export function pluginProblems(value: unknown): string[] {
  if (value === null || typeof value !== 'object') return [`expected an object, found ${typeof value}`]
  const p = value as Record<string, unknown>
  const out: string[] = []
  if (typeof p.name !== 'string' || !NAME_RE.test(p.name))
    out.push('expected `name`: letters, digits, `_`, `.`, `@`, `/` or `-` (at most 128)')
  for (const hook of HOOKS)
    if (p[hook] !== undefined && typeof p[hook] !== 'function') out.push(`expected \`${hook}\` to be a function`)
  const known = new Set<string>(['name', 'balancers', ...HOOKS])
  for (const key of Object.keys(p))
    if (!known.has(key)) out.push(`unknown key \`${key}\`, expected one of ${[...known].join(', ')}`)
  const balancers = p.balancers
  if (balancers !== undefined && (balancers === null || typeof balancers !== 'object'))
    out.push('expected `balancers` to map names to factories')
  if (!HOOKS.some((h) => typeof p[h] === 'function') && balancers === undefined)
    out.push(`expected at least one hook (${HOOKS.join(', ')}) or \`balancers\``)
  return out
}
