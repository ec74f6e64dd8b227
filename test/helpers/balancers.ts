/** Balancer test helpers: backends, a seeded generator, a manual clock, and a closed-loop simulation. */

import { testEnv } from '../../src/balancer/conformance.js'
import { type ALGORITHMS, type BalancerEnv, createBalancer, defaultOptions } from '../../src/balancer/index.js'
import type { Balancer } from '../../src/balancer/types.js'

export { backend, seeded, simulateShares, testEnv } from '../../src/balancer/conformance.js'

export function make(algorithm: (typeof ALGORITHMS)[number], env: BalancerEnv = testEnv()): Balancer {
  return createBalancer(defaultOptions(algorithm), env)
}
