/**
 * Every balancing algorithm, listed explicitly: one file each, one line here. The config schema for
 * `balance:` is the union of the fragments below, keyed on `algorithm`.
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

export const balanceObjectSchema = z.discriminatedUnion('algorithm', [
  roundRobin.schema,
  weightedRoundRobin.schema,
  leastConnections.schema,
  leastRequest.schema,
  peakEwma.schema,
  random.schema,
  ipHash.schema,
  ringHash.schema,
  maglev.schema,
])

export type BalanceOptions = z.infer<typeof balanceObjectSchema>

/** The algorithm names: a contract, used in configs. */
export const ALGORITHMS = [
  'round-robin',
  'weighted-round-robin',
  'least-connections',
  'least-request',
  'peak-ewma',
  'random',
  'ip-hash',
  'ring-hash',
  'maglev',
] as const satisfies readonly BalanceOptions['algorithm'][]

/** Options with every default filled in, for a bare algorithm name. */
export function defaultOptions(algorithm: (typeof ALGORITHMS)[number]): BalanceOptions {
  return balanceObjectSchema.parse({ algorithm })
}

/** Builds a fresh balancer for validated options. `env` (clock, randomness) is for tests. */
export function createBalancer(options: BalanceOptions, env?: BalancerEnv): Balancer {
  switch (options.algorithm) {
    case 'round-robin':
      return roundRobin.create(options)
    case 'weighted-round-robin':
      return weightedRoundRobin.create(options)
    case 'least-connections':
      return leastConnections.create(options, env)
    case 'least-request':
      return leastRequest.create(options, env)
    case 'peak-ewma':
      return peakEwma.create(options, env)
    case 'random':
      return random.create(options, env)
    case 'ip-hash':
      return ipHash.create(options)
    case 'ring-hash':
      return ringHash.create(options)
    case 'maglev':
      return maglev.create(options)
    default: {
      const unknown: never = options
      throw new Error(`unknown algorithm ${JSON.stringify(unknown)}`)
    }
  }
}
