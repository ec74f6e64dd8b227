/** The Balancer interface: how a pool chooses among its backends. See docs/balancing.md. */
import type { Backend } from '../core/backend.js'

/** What a balancer may look at to choose. Built once per request; never mutated. */
export interface PickContext {
  readonly clientIp: string
  /** A key for hashing algorithms (header, cookie, ...); absent when the algorithm needs none. */
  readonly hashKey?: string
}

export type Outcome = 'success' | 'failure'

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
  /** Feedback for load-aware algorithms: a request to `b` started. */
  onStart?(b: Backend): void
  /** Feedback for load-aware algorithms: a request to `b` ended. */
  onEnd?(b: Backend, outcome: Outcome): void
}
