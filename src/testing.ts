/**
 * Test helpers for plugin authors: `import { balancerConformance } from 'switchyard-lb/testing'`. The
 * conformance suite registers node:test suites that every balancing algorithm passes, built-in or not.
 */
export {
  backend,
  balancerConformance,
  type ConformanceOptions,
  seeded,
  simulateShares,
  testEnv,
} from './balancer/conformance.js'
