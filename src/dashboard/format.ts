/** How numbers read on the dashboard: short, with units, a dash where there is nothing to show. */

export const DASH = '–'

const int = new Intl.NumberFormat('en', { maximumFractionDigits: 0 })

/** 1,234,567 */
export function count(n: number | null | undefined): string {
  return n === null || n === undefined ? DASH : int.format(n)
}

/** Requests per second: 0.4, 12.5, 1,234; 12.3k past 10,000. */
export function rate(n: number | null | undefined): string {
  if (n === null || n === undefined) return DASH
  if (n === 0) return '0'
  if (n < 10) return n.toFixed(1)
  if (n < 10_000) return int.format(n)
  return `${(n / 1000).toFixed(1)}k`
}

/** A share 0 to 1 as a percentage: 0%, 0.12%, 3.4%, 100%. */
export function percent(n: number | null | undefined): string {
  if (n === null || n === undefined) return DASH
  if (n === 0) return '0%'
  const p = n * 100
  if (p < 1) return `${p.toFixed(2)}%`
  if (p < 10) return `${p.toFixed(1)}%`
  return `${Math.round(p)}%`
}

/** A duration in ms: 0.42 ms, 4.2 ms, 42 ms, 1.25 s. */
export function ms(n: number | null | undefined): string {
  if (n === null || n === undefined) return DASH
  if (n === 0) return '0 ms'
  if (n < 1) return `${n.toFixed(2)} ms`
  if (n < 10) return `${n.toFixed(1)} ms`
  if (n < 1000) return `${Math.round(n)} ms`
  return `${(n / 1000).toFixed(n < 10_000 ? 2 : 1)} s`
}

/** A bucket bound in s, as a label: 1ms, 2.5ms, 250ms, 1s, 30s. */
export function bound(s: number): string {
  return s < 1 ? `${+(s * 1000).toPrecision(3)}ms` : `${+s.toPrecision(3)}s`
}

/** How long ago an ISO time was: 12s, 5m, 3h, 2d. */
export function ago(iso: string, nowMs: number = Date.now()): string {
  const s = Math.max(0, Math.round((nowMs - Date.parse(iso)) / 1000))
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}

/** HH:MM:SS of an ISO time, in the browser's zone. */
export function clock(iso: string): string {
  return new Date(iso).toLocaleTimeString('en-GB', { hour12: false })
}
