export { ALGORITHMS, type BalanceOptions, balanceObjectSchema, createBalancer } from './registry.js'
export type { Balancer, Outcome, PickContext } from './types.js'
