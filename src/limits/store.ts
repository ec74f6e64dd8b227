/**
 * Where rate-limit state lives: one interface, so that a shared store (Redis, for several instances)
 * can replace the in-process one without a change to the config that uses it. The in-process store
 * keeps each key's GCRA state (one number) in a bounded LRU: per process, so with `workers: N` each
 * worker limits on its own.
 */
import { gcra, type RateDecision, type RatePolicy } from './gcra.js'
import { BoundedLru } from './lru.js'

export interface RateLimitStore {
  /** Counts one request of `key` at `nowMs` (milliseconds of a monotonic clock) against `policy`. */
  take(key: string, nowMs: number, policy: RatePolicy, maxDelayMs: number): RateDecision | Promise<RateDecision>
  /** Keys held now. */
  readonly size: number
}

/** The default store: this process's memory, at most `maxKeys` keys (least recently used go first). */
export class MemoryRateStore implements RateLimitStore {
  readonly #tats: BoundedLru<number>

  constructor(maxKeys: number) {
    this.#tats = new BoundedLru(maxKeys)
  }

  take(key: string, nowMs: number, policy: RatePolicy, maxDelayMs: number): RateDecision {
    const table = this.#tats
    const before = table.get(key)
    const { decision, tat } = gcra(before, nowMs, policy, maxDelayMs)
    if (tat !== undefined && tat !== before) table.set(key, tat)
    return decision
  }

  get size(): number {
    return this.#tats.size
  }
}
