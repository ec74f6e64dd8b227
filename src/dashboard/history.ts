/**
 * The charts' data: the history of GET /api/v1/stats, extended by the `point` of each `stats` event
 * (the same paths, one value each) and cut to the server's window. No numbers are made here: a series
 * missing from a point gets a null (a gap), one new in a point gets nulls before it.
 */
import type { Series, StatsEvent, StatsHistory, Tree } from './types.js'

export function appendPoint(history: StatsHistory, point: StatsEvent['point']): void {
  const last = history.time[history.time.length - 1]
  if (last !== undefined && point.time <= last) return
  const before = history.time.length
  history.time.push(point.time)
  merge(history.listeners, point.listeners, before)
  merge(history.pools, point.pools, before)
  let drop = 0
  while (drop < history.time.length - 1 && point.time - (history.time[drop] as number) >= history.windowMs) drop++
  if (drop > 0) {
    history.time.splice(0, drop)
    cut(history.listeners, drop)
    cut(history.pools, drop)
  }
}

function merge(node: Tree<Series>, point: Tree<number | null> | undefined, before: number): void {
  const keys = new Set([...Object.keys(node), ...Object.keys(point ?? {})])
  for (const key of keys) {
    const have = node[key]
    const value = point?.[key]
    if (Array.isArray(have) || (have === undefined && (typeof value === 'number' || value === null))) {
      const series = (have as Series | undefined) ?? new Array<number | null>(before).fill(null)
      series.push(typeof value === 'number' ? value : null)
      node[key] = series
    } else {
      const child = (have as Tree<Series> | undefined) ?? {}
      node[key] = child
      merge(child, value as Tree<number | null> | undefined, before)
    }
  }
}

function cut(node: Tree<Series>, n: number): void {
  for (const value of Object.values(node)) {
    if (Array.isArray(value)) value.splice(0, n)
    else if (value !== undefined) cut(value, n)
  }
}

/** The series at `path` of a history tree; undefined when it has none. */
export function seriesAt(tree: Tree<Series>, ...path: string[]): Series | undefined {
  let node: Tree<Series> | Series | undefined = tree
  for (const key of path) {
    if (node === undefined || Array.isArray(node)) return undefined
    node = node[key]
  }
  return Array.isArray(node) ? node : undefined
}
