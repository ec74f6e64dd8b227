export type { Balancer, Outcome, PickContext } from './types.js'
export { ALGORITHMS, type BalanceOptions, balanceObjectSchema, createBalancer } from './registry.js'
