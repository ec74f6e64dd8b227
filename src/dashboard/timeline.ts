/** The event timeline: health transitions, ejections, reloads, runtime changes and worker restarts, newest first. */
import { html } from 'htm/preact'
import { useState } from 'preact/hooks'
import { clock } from './format.js'
import type { LoggedEvent } from './types.js'

type Tone = 'good' | 'bad' | 'warn' | 'info'

const FILTERS = [
  ['all', 'All'],
  ['health', 'Health'],
  ['ejection', 'Ejections'],
  ['change', 'Changes'],
  ['reload', 'Reloads'],
  ['worker', 'Workers'],
] as const

/** Shown at most; the API keeps the last 500. */
const SHOWN = 200

function describe(e: LoggedEvent): { tone: Tone; title: string; detail: string | undefined } {
  const who = `${e.pool ?? ''}/${e.server ?? ''}`
  switch (e.type) {
    case 'health':
      return e.state === 'up'
        ? { tone: 'good', title: `${who} up`, detail: e.reason }
        : { tone: 'bad', title: `${who} down`, detail: e.reason }
    case 'ejection':
      return e.ejected === true
        ? {
            tone: 'warn',
            title: `${who} ejected`,
            detail: `${e.reason === 'outlier' ? 'failed requests' : 'a failed connect'}${e.worker === undefined ? '' : ` (worker ${e.worker})`}`,
          }
        : {
            tone: 'good',
            title: `${who} back from ejection`,
            detail: e.worker === undefined ? undefined : `worker ${e.worker}`,
          }
    case 'reload':
      return e.result === 'ok'
        ? { tone: 'info', title: `Reload applied: generation ${e.generation}`, detail: `from ${e.source}` }
        : { tone: 'bad', title: 'Reload rejected', detail: e.message }
    case 'change':
      return {
        tone: e.state === 'disabled' || e.action === 'remove' ? 'warn' : 'info',
        title: e.message ?? e.action ?? 'change',
        detail: undefined,
      }
    case 'worker':
      return {
        tone: e.action === 'exited' ? 'bad' : 'warn',
        title: e.message ?? `worker ${e.worker}`,
        detail: undefined,
      }
    default:
      return { tone: 'info', title: (e as { type: string }).type, detail: e.message }
  }
}

export function Timeline(p: { readonly events: readonly LoggedEvent[] }) {
  const [filter, setFilter] = useState<(typeof FILTERS)[number][0]>('all')
  const shown = (filter === 'all' ? p.events : p.events.filter((e) => e.type === filter)).slice(0, SHOWN)
  return html`<aside class="card timeline" aria-label="Events">
    <header>
      <h2>Events</h2>
      <span class="muted">${p.events.length}</span>
    </header>
    <div class="filters" role="group" aria-label="Show events of a type">
      ${FILTERS.map(
        ([key, label]) => html`<button
          class=${`chip-button ${filter === key ? 'on' : ''}`}
          aria-pressed=${filter === key}
          onClick=${() => setFilter(key)}
        >
          ${label}
        </button>`,
      )}
    </div>
    ${
      shown.length === 0
        ? html`<p class="empty">No events${filter === 'all' ? ' yet' : ' of this type'}.</p>`
        : html`<ol>
            ${shown.map((e) => {
              const d = describe(e)
              return html`<li key=${e.id} class=${`event tone-${d.tone}`} data-type=${e.type}>
                <time datetime=${e.time}>${clock(e.time)}</time>
                <i class="dot"></i>
                <div>
                  <div class="title">${d.title}</div>
                  ${d.detail === undefined || d.detail === '' ? null : html`<div class="detail">${d.detail}</div>`}
                </div>
              </li>`
            })}
          </ol>`
    }
  </aside>`
}
