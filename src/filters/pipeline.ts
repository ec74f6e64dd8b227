/**
 * A compiled pipeline: for each phase, the filters that hook it, in the order they run. Built once per
 * snapshot; the request path only reads the arrays, and skips a phase whose array is empty.
 *
 * Order ("around" the built-in rules, like an onion): on the way in (`onRequest`, `onRoute`,
 * `selectUpstream`, `onForward`), plugins in their listed order, then the listener's built-in rules,
 * then the route's; on the way out (`onResponse`, `responseBody`, `onLog`), the same in reverse.
 */
import type { Filter } from './types.js'

export interface ListenerPipeline {
  readonly onRequest: readonly Filter[]
}

export interface RoutePipeline {
  readonly onRoute: readonly Filter[]
  readonly selectUpstream: readonly Filter[]
  readonly onForward: readonly Filter[]
  readonly onResponse: readonly Filter[]
  readonly responseBody: readonly Filter[]
  readonly onLog: readonly Filter[]
  /** No filter hooks any phase: requests on this route need no filter context. */
  readonly empty: boolean
}

/** `filters`: plugins, then listener rules. */
export function compileListener(filters: readonly Filter[]): ListenerPipeline {
  return Object.freeze({ onRequest: Object.freeze(filters.filter((f) => f.onRequest !== undefined)) })
}

/** `filters`: plugins, then listener rules, then the route's rules, in the order they run inward. */
export function compileRoute(filters: readonly Filter[]): RoutePipeline {
  const inward = (has: (f: Filter) => boolean) => Object.freeze(filters.filter(has))
  const outward = (has: (f: Filter) => boolean) => Object.freeze([...filters].reverse().filter(has))
  const pipeline = {
    onRoute: inward((f) => f.onRoute !== undefined),
    selectUpstream: inward((f) => f.selectUpstream !== undefined),
    onForward: inward((f) => f.onForward !== undefined),
    onResponse: outward((f) => f.onResponse !== undefined),
    responseBody: outward((f) => f.responseBody !== undefined),
    onLog: outward((f) => f.onLog !== undefined),
  }
  const empty = Object.values(pipeline).every((list) => list.length === 0)
  return Object.freeze({ ...pipeline, empty })
}
