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
export {
  type Balancer,
  type BalancerEnv,
  defaultEnv,
  type HashPosition,
  type Outcome,
  type PickContext,
  type PickReport,
  type ServerScore,
} from './types.js'
