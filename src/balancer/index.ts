export { compileHashOn, type KeyExtractor, type KeySource } from './hash-key.js'
export {
  ALGORITHMS,
  BALANCERS,
  type BalanceOptions,
  type BalancerEntry,
  type BalancerSchema,
  type BalancerTable,
  balanceObjectSchema,
  createBalancer,
  defaultOptions,
} from './registry.js'
export { type Balancer, type BalancerEnv, defaultEnv, type Outcome, type PickContext } from './types.js'
