/**
 * Every balancing algorithm, listed explicitly: one file each, one line in `BALANCERS`. That table is
 * the only list: the config union for `balance:` (keyed on `algorithm`), the list of names and the
 * factory are all derived from it, and the conformance suite runs every entry.
 */
import { z } from 'zod'
import * as ipHash from './ip-hash.js'
import * as leastConnections from './least-connections.js'
import * as leastRequest from './least-request.js'
import * as maglev from './maglev.js'
import * as peakEwma from './peak-ewma.js'
import * as random from './random.js'
import * as ringHash from './ring-hash.js'
import * as roundRobin from './round-robin.js'
import type { Balancer, BalancerEnv } from './types.js'
import * as weightedRoundRobin from './weighted-round-robin.js'

/** The config fragment of one algorithm: a strict object whose `algorithm` is its name. */
export type BalancerSchema<Name extends string = string> = z.ZodObject<
  { algorithm: z.ZodLiteral<Name> } & z.core.$ZodLooseShape,
  z.core.$strict
>

/** One registered algorithm: its config fragment and a factory for options that fragment validated. */
export interface BalancerEntry<S extends BalancerSchema = BalancerSchema> {
  readonly schema: S
  readonly create: (options: z.output<S>, env?: BalancerEnv) => Balancer
}

/**
 * Algorithm name → entry, with each entry's option type erased (the union validated them by name). A
 * caller that registers more algorithms (plugins) passes `{ ...BALANCERS, ...theirs }`.
 */
export type BalancerTable = {
  readonly [name: string]: {
    readonly schema: BalancerSchema
    readonly create: (options: never, env?: BalancerEnv) => Balancer
  }
}

const entry = <S extends BalancerSchema>(schema: S, create: (options: z.output<S>, env?: BalancerEnv) => Balancer) =>
  ({ schema, create }) as const

/** The built-in algorithms, in the order the docs and `--help` list them. */
export const BALANCERS = {
  'round-robin': entry(roundRobin.schema, roundRobin.create),
  'weighted-round-robin': entry(weightedRoundRobin.schema, weightedRoundRobin.create),
  'least-connections': entry(leastConnections.schema, leastConnections.create),
  'least-request': entry(leastRequest.schema, leastRequest.create),
  'peak-ewma': entry(peakEwma.schema, peakEwma.create),
  random: entry(random.schema, random.create),
  'ip-hash': entry(ipHash.schema, ipHash.create),
  'ring-hash': entry(ringHash.schema, ringHash.create),
  maglev: entry(maglev.schema, maglev.create),
} as const satisfies BalancerTable

type Builtins = typeof BALANCERS
type Name = keyof Builtins & string
type Schemas = Builtins[Name]['schema']

// Each key is the `algorithm` literal of its own schema: a typo in either fails to compile.
type Misnamed = { [K in Name]: Builtins[K]['schema'] extends BalancerSchema<K> ? never : K }[Name]
const _namesMatch: [Misnamed] extends [never] ? true : Misnamed = true
void _namesMatch

/** The algorithm names: a contract, used in configs. */
export const ALGORITHMS = Object.keys(BALANCERS) as [Name, ...Name[]]

export const balanceObjectSchema = z.discriminatedUnion(
  'algorithm',
  Object.values(BALANCERS).map((e) => e.schema) as [Schemas, ...Schemas[]],
)

export type BalanceOptions = z.infer<typeof balanceObjectSchema>

/** Options with every default filled in, for a bare algorithm name. */
export function defaultOptions(algorithm: Name): BalanceOptions {
  return balanceObjectSchema.parse({ algorithm })
}

/**
 * Builds a fresh balancer for validated options. `env` (clock, randomness) is for tests; `table` is
 * where the algorithm is looked up (the built-ins unless a caller registers more).
 */
export function createBalancer(options: BalanceOptions, env?: BalancerEnv, table: BalancerTable = BALANCERS): Balancer {
  const found = Object.hasOwn(table, options.algorithm) ? table[options.algorithm] : undefined
  if (found === undefined) throw new Error(`unknown algorithm ${JSON.stringify(options.algorithm)}`)
  // The options were validated by this entry's own schema (the union is keyed on the same name).
  return found.create(options as never, env)
}
