/** The colours that carry meaning: server states, status classes, percentiles, and one per server. */
import type { ServerState, StatusClass } from './types.js'

export const STATE_COLOR: Readonly<Record<ServerState, string>> = {
  up: '#3fb950',
  down: '#f85149',
  ejected: '#f0883e',
  draining: '#d29922',
  disabled: '#8b949e',
}

export const CLASS_COLOR: Readonly<Record<StatusClass, string>> = {
  '1xx': '#a371f7',
  '2xx': '#3fb950',
  '3xx': '#58a6ff',
  '4xx': '#d29922',
  '5xx': '#f85149',
}

export const PERCENTILE_COLOR = { p50: '#58a6ff', p95: '#d2a8ff', p99: '#ff7b72' } as const

const PALETTE = ['#58a6ff', '#3fb950', '#d2a8ff', '#f0883e', '#39c5cf', '#ff7b72', '#e3b341', '#7ee787', '#a5d6ff']

/** The colour of the i-th server of a pool. */
export function seriesColor(i: number): string {
  return PALETTE[i % PALETTE.length] as string
}
