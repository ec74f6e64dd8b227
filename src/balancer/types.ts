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
}
