/**
 * Balancing algorithms that plugins add (`balancers: { name: factory }` on a plugin). Each name gets a
 * config fragment, so `balance: { algorithm: NAME, ...options }` validates like a built-in one: its
 * options against the plugin's own `options` schema when it gives one (zod), any keys when not. The
 * factory's balancer is checked when a pool builds it: its `algorithm` must be the name, and `update`
 * and `pick` must be functions. A plugin proves its algorithm with the conformance suite
 * (`balancerConformance` from 'switchyard-lb/testing') in its own tests.
 */
import { z } from 'zod'
import {
  BALANCERS,
  type Balancer,
  type BalancerEnv,
  type BalancerSchema,
  type BalancerTable,
} from '../balancer/index.js'
import { SwitchyardError } from '../core/errors.js'
import type { Plugin } from './define.js'

/** Builds a balancer for a pool: its validated options (with `algorithm`), and the clock and randomness. */
export type BalancerFactory = (options: Readonly<Record<string, unknown>>, env?: BalancerEnv) => Balancer

/** An algorithm a plugin adds: a factory, or a factory with a zod object schema for its options. */
export type PluginBalancer =
  | BalancerFactory
  | { readonly options?: z.ZodObject | undefined; readonly create: BalancerFactory }

const NAME_RE = /^[a-z][a-z0-9-]{0,63}$/

/**
 * The built-in algorithms plus those the plugins add; undefined when they add none. Throws
 * SWY_CONFIG_INVALID for a name that is not lower-case letters, digits and `-`, or that a built-in or
 * another plugin already has.
 */
export function balancerTable(plugins: readonly Plugin[]): BalancerTable | undefined {
  const extra: Record<string, BalancerTable[string]> = {}
  const owner = new Map<string, string>()
  for (const plugin of plugins) {
    for (const [name, given] of Object.entries(plugin.balancers ?? {})) {
      const where = `plugin ${plugin.name}: balancer "${name}"`
      if (!NAME_RE.test(name))
        throw invalid(`${where}: expected a name of lower-case letters, digits and "-" (at most 64)`)
      if (Object.hasOwn(BALANCERS, name)) throw invalid(`${where}: expected a new name, found a built-in algorithm`)
      const first = owner.get(name)
      if (first !== undefined) throw invalid(`${where}: expected a new name, found one that plugin ${first} adds`)
      owner.set(name, plugin.name)
      const factory = typeof given === 'function' ? given : given.create
      const options = typeof given === 'function' ? undefined : given.options
      if (typeof factory !== 'function') throw invalid(`${where}: expected a factory function`)
      const base = { algorithm: z.literal(name) }
      const schema = (options === undefined
        ? z.looseObject(base)
        : z.strictObject({ ...options.shape, ...base })) as unknown as BalancerSchema
      extra[name] = { schema, create: checked(name, plugin.name, factory) as never }
    }
  }
  return Object.keys(extra).length === 0 ? undefined : { ...BALANCERS, ...extra }
}

/** The factory, with a check of the balancer it builds. */
function checked(name: string, plugin: string, factory: BalancerFactory): BalancerFactory {
  return (options, env) => {
    const b = factory(options, env)
    if (b === null || typeof b !== 'object' || typeof b.update !== 'function' || typeof b.pick !== 'function')
      throw invalid(`plugin ${plugin}: balancer "${name}" built no balancer (expected update() and pick())`)
    if (b.algorithm !== name)
      throw invalid(`plugin ${plugin}: balancer "${name}" reports algorithm "${String(b.algorithm)}"`)
    return b
  }
}

function invalid(message: string): SwitchyardError {
  return new SwitchyardError('SWY_CONFIG_INVALID', message)
}
