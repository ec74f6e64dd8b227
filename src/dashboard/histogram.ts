/** The latency histogram: whole-try counts per bucket over the last 15 minutes, as bars. */
import { html } from 'htm/preact'
import { bound, count, percent } from './format.js'

export function Histogram(p: { readonly counts: readonly number[] | undefined; readonly bucketsS: readonly number[] }) {
  const counts = p.counts ?? []
  const total = counts.reduce((n, c) => n + c, 0)
  if (total === 0)
    return html`<figure class="chart histogram">
      <figcaption>Latency histogram, 15 min</figcaption>
      <div class="empty">No requests in the last 15 minutes</div>
    </figure>`
  // From the first bucket with requests to the last, with one empty bucket of context each side.
  let first = counts.findIndex((c) => c > 0)
  let last = counts.length - 1
  while (last > 0 && (counts[last] ?? 0) === 0) last--
  first = Math.max(0, first - 1)
  last = Math.min(counts.length - 1, last + 1)
  const max = Math.max(...counts)
  const top = p.bucketsS[p.bucketsS.length - 1] ?? 0
  // Past ten bars, every other one is labelled (each keeps its full label as a tooltip).
  const every = last - first + 1 > 10 ? 2 : 1
  const bars = []
  for (let i = first; i <= last; i++) {
    const c = counts[i] ?? 0
    const upper = i < p.bucketsS.length ? bound(p.bucketsS[i] as number) : undefined
    const range = upper === undefined ? `over ${bound(top)}` : `up to ${upper}`
    bars.push(html`<div class="bar" title=${`${range}: ${count(c)} (${percent(c / total)})`}>
      <span class="fill" style=${{ height: `${c === 0 ? 0 : Math.max(2, (c / max) * 100)}%` }}></span>
      <span class="label">${(i - first) % every === 0 ? (upper ?? `>${bound(top)}`) : '\u00a0'}</span>
    </div>`)
  }
  return html`<figure class="chart histogram">
    <figcaption>Latency histogram, 15 min <span class="muted">${count(total)} tries</span></figcaption>
    <div class="bars">${bars}</div>
  </figure>`
}
