/** What a built-in filter may use when it is compiled (once per snapshot, never per request). */
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../metrics/index.js'
import type { UpstreamPool } from '../upstream/pool.js'

export interface FilterEnv {
  readonly listener: string
  readonly logger: Logger
  /** Every pool of the config, by name. */
  readonly pools: ReadonlyMap<string, UpstreamPool>
  /** The route's `match.pathPrefix`, for rules that replace it; undefined on a listener or without one. */
  readonly pathPrefix: string | undefined
  /** The instance's metrics, for rules that count (mirror); absent in unit tests and benches. */
  readonly metrics?: Metrics | undefined
}

/** Where a rule may be written: on a route, on a listener (applies to all its routes), or both. */
export type RuleLevel = 'listener' | 'route'
