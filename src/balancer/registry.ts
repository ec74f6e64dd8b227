/**
 * Every balancing algorithm, listed explicitly: one file each, one line here. The config schema for
 * `balance:` is the union of the fragments below, keyed on `algorithm`.
 */
import { z } from 'zod'
import * as roundRobin from './round-robin.js'
import type { Balancer } from './types.js'
import * as weightedRoundRobin from './weighted-round-robin.js'

export const balanceObjectSchema = z.discriminatedUnion('algorithm', [roundRobin.schema, weightedRoundRobin.schema])

export type BalanceOptions = z.infer<typeof balanceObjectSchema>

export const ALGORITHMS = [
  'round-robin',
  'weighted-round-robin',
] as const satisfies readonly BalanceOptions['algorithm'][]

/** Builds a fresh balancer for validated options. */
export function createBalancer(options: BalanceOptions): Balancer {
  switch (options.algorithm) {
    case 'round-robin':
      return roundRobin.create(options)
    case 'weighted-round-robin':
      return weightedRoundRobin.create(options)
    default: {
      const unknown: never = options
      throw new Error(`unknown algorithm ${JSON.stringify(unknown)}`)
    }
  }
}
