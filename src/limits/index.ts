/** Limits as pure data structures (GCRA, a bounded LRU, in-flight counts): no I/O, clock given by the caller. */

export { AccessList, parseCidr } from './access-list.js'
export { gcra, type RateDecision, type RatePolicy, ratePolicy } from './gcra.js'
export { InFlight } from './in-flight.js'
export { BoundedLru } from './lru.js'
export { MemoryRateStore, type RateLimitStore } from './store.js'
