/** The Balancer interface: how a pool chooses among its backends. See docs/balancing.md. */
import type { Backend } from '../core/backend.js'

/** What a balancer may look at to choose. Built once per request; never mutated. */
export interface PickContext {
  readonly clientIp: string
  /**
   * The key hashing algorithms hash: the field named by the pool's `hashOn` (header, cookie, query
   * parameter, path), or the client address when that field is absent. Absent when the algorithm
   * hashes nothing.
   */
  readonly hashKey?: string | undefined
}

/** How a request to a server ended, for load-aware algorithms: `failure` is an upstream error or a 5xx. */
export type Outcome = 'success' | 'failure'

/** Time and randomness, injected so that tests can drive them. */
export interface BalancerEnv {
  /** Milliseconds, monotonic. */
  now(): number
  /** Uniform in [0, 1). */
  random(): number
}

export const defaultEnv: BalancerEnv = { now: () => performance.now(), random: Math.random }

export interface Balancer {
  /** The registered algorithm name, e.g. `round-robin`. */
  readonly algorithm: string
  /**
   * Replaces the set of backends. Called by the control plane, never on the request path; anything
   * expensive (schedules, tables, rings) is built here. An empty list is valid: `pick()` then yields nothing.
   */
  update(backends: readonly Backend[]): void
  /**
   * Candidates best-first: the first item is the first choice. The caller skips unavailable ones and
   * takes the next (for health, retries, stickiness). Never awaits; allocates at most one small iterator.
   * Backends with weight 0 are never yielded.
   */
  pick(ctx: PickContext): Iterable<Backend>
  /** Feedback for load-aware algorithms: a request (or TCP connection) to `b` started. */
  onStart?(b: Backend): void
  /**
   * Feedback for load-aware algorithms: a request to `b` ended, `latencyMs` after it started (time to
   * the response head when there was one). Every `onStart` is followed by exactly one `onEnd`.
   */
  onEnd?(b: Backend, outcome: Outcome, latencyMs: number): void
  /**
   * What the algorithm weighs, for explanations (`x-switchyard-explain`, the config test kit): the
   * scores of `servers` (candidates of a pick just made, best first) as it sees them now. Asked only
   * when a request is explained, never on the normal path; it must change nothing (no draw, no
   * cursor), so that the picks that follow are the same whether or not it was asked.
   */
  describe?(ctx: PickContext, servers: readonly Backend[]): PickReport
}

/** A balancer's account of a pick (Balancer#describe). */
export interface PickReport {
  /**
   * How the algorithm chooses, in a word: `rotation` (round-robin), `draw` (random), `least` (the
   * lowest score of all), `p2c` (the lower score of two drawn; `best-of-N` for more), `hash`.
   */
  readonly method: string
  /** One entry per server asked about, in the order asked. */
  readonly servers: readonly ServerScore[]
  /** Hashing algorithms: the key's 32-bit hash and where it lands; undefined for the others. */
  readonly hash?: HashPosition | undefined
}

export interface ServerScore {
  readonly id: string
  /** What the algorithm compares, lower first; undefined when it keeps none (rotations, hashes). */
  readonly score?: number | undefined
  /** The score in a few words, e.g. `ewma 1.2ms`, `3 in flight`, `weight 2`; empty when there is nothing to say. */
  readonly note: string
  /** The numbers behind the score, by name (`inFlight`, `weight`, `ewmaMs`, ...). */
  readonly detail?: Readonly<Record<string, number>> | undefined
}

/** Where a key's hash lands: a point of a ring of `size` points, or a slot of a table of `size` slots. */
export interface HashPosition {
  /** The 32-bit hash of the key. */
  readonly value: number
  readonly unit: 'point' | 'slot'
  readonly at: number
  readonly size: number
}
