/** What a matched route leads to: built once per snapshot. */
import type { RoutePipeline } from '../filters/pipeline.js'
import type { RouteView } from '../filters/types.js'
import type { RouteMetrics } from '../metrics/index.js'
import type { UpstreamPool } from '../upstream/pool.js'

/** A pool with the metric cells of the listener that sends to it. */
export interface PoolTarget {
  readonly pool: UpstreamPool
  readonly metrics: RouteMetrics
}

export interface RouteTarget {
  /** The route's pool; undefined for routes that only answer (`redirect`, `respond`). */
  readonly pool: PoolTarget | undefined
  /** Metrics of requests that this route answers itself. */
  readonly metrics: RouteMetrics
  /** Route-level filters around the listener's, by phase. */
  readonly pipeline: RoutePipeline
  readonly view: RouteView
  /** Largest request body, in bytes (the route's `limits.maxBodySize`, else the listener's); 0: none. */
  readonly maxBodyBytes: number
}
