/** What a built-in filter may use when it is compiled (once per snapshot, never per request). */
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../metrics/index.js'
import type { UpstreamPool } from '../upstream/pool.js'
import type { Shelf } from './shelf.js'

export interface FilterEnv {
  readonly listener: string
  readonly logger: Logger
  /** Every pool of the config, by name. */
  readonly pools: ReadonlyMap<string, UpstreamPool>
  /** The route's `match.pathPrefix`, for rules that replace it; undefined on a listener or without one. */
  readonly pathPrefix: string | undefined
  /** Where the rule is written: a listener's rules run for every request it takes. */
  readonly level: RuleLevel
  /** The route's position in its listener (0-based); undefined on a listener. */
  readonly route?: number | undefined
  /** The route's `name`, if it has one. */
  readonly routeName?: string | undefined
  /** The instance's metrics, for rules that count (mirror); absent in unit tests and benches. */
  readonly metrics?: Metrics | undefined
  /**
   * State that outlives a reload (rate-limit tables), kept by the instance; absent in unit tests and
   * benches (each compile starts afresh).
   */
  readonly shelf?: Shelf | undefined
}

/**
 * The `route` label of a rule's metrics: the route's name, or its position when it has none; empty for
 * a listener's rule. Bounded by the config, never taken from a request.
 */
export function routeLabel(env: FilterEnv): string {
  if (env.level === 'listener') return ''
  return env.routeName ?? String(env.route ?? '')
}

/** Where a rule may be written: on a route, on a listener (applies to all its routes), or both. */
export type RuleLevel = 'listener' | 'route'
