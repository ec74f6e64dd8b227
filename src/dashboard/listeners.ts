/** One card per listener: requests per second by status class, open connections, in flight. */
import { html } from 'htm/preact'
import { Chart } from './chart.js'
import { count, percent, rate } from './format.js'
import { seriesAt } from './history.js'
import { CLASS_COLOR } from './theme.js'
import type { ListenerView, StatsHistory, StatusClass } from './types.js'

const CLASSES: readonly StatusClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx']

export function Listeners(p: { readonly listeners: readonly ListenerView[]; readonly history: StatsHistory | null }) {
  if (p.listeners.length === 0) return null
  return html`<section class="listeners" aria-label="Listeners">
    ${p.listeners.map((l) => html`<${ListenerCard} key=${l.name} listener=${l} history=${p.history} />`)}
  </section>`
}

function ListenerCard(p: { readonly listener: ListenerView; readonly history: StatsHistory | null }) {
  const l = p.listener
  const tcp = l.protocol === 'tcp'
  const total = tcp ? l.tcpConnections : l.requests.total
  const rates = l.live?.classes
  const sum = rates === undefined ? 0 : CLASSES.reduce((n, c) => n + (rates[c] ?? 0), 0)
  const h = p.history
  return html`<article class="card listener" data-listener=${l.name}>
    <header>
      <h2>${l.name}</h2>
      <span class="chip">${l.protocol.toUpperCase()}</span>
      <span class="muted mono">${l.address || l.listen}</span>
    </header>
    <div class="figures">
      <div class="figure big">
        <span class="value" data-testid="listener-rps">${rate(l.live?.rps)}</span>
        <span class="unit">${tcp ? 'conn/s' : 'req/s'}</span>
      </div>
      <div class="figure">
        <span class="value" data-testid="listener-requests">${count(total)}</span>
        <span class="unit">${tcp ? 'connections' : 'requests'}</span>
      </div>
      <div class="figure">
        <span class="value" data-testid="listener-connections">${count(l.connections)}</span>
        <span class="unit">open conns</span>
      </div>
      <div class="figure">
        <span class="value">${count(l.inFlight)}</span>
        <span class="unit">in flight</span>
      </div>
      <div class="figure">
        <span class=${`value ${(l.live?.errorRate ?? 0) > 0 ? 'bad' : ''}`}>${percent(l.live?.errorRate)}</span>
        <span class="unit">${tcp ? 'failed' : '5xx'}</span>
      </div>
    </div>
    ${
      tcp
        ? null
        : html`<div class="classbar" role="img" aria-label="Answers per second by status class">
              ${CLASSES.map((c) =>
                (rates?.[c] ?? 0) > 0
                  ? html`<span style=${{ flexGrow: rates?.[c] ?? 0, background: CLASS_COLOR[c] }}></span>`
                  : null,
              )}
              ${sum === 0 ? html`<span class="idle"></span>` : null}
            </div>
            <ul class="classes">
              ${CLASSES.map(
                (c) => html`<li>
                  <i class="mark" style=${{ background: CLASS_COLOR[c] }}></i>${c} <b>${rate(rates?.[c])}</b>/s
                  <span class="muted">${count(l.requests[c])}</span>
                </li>`,
              )}
            </ul>`
    }
    ${
      h === null
        ? null
        : html`<${Chart}
            title=${tcp ? 'Connections per second' : 'Requests per second by status class'}
            time=${h.time}
            format=${rate}
            height=${120}
            lines=${
              tcp
                ? [
                    {
                      label: 'conn/s',
                      color: CLASS_COLOR['2xx'],
                      values: seriesAt(h.listeners, l.name, 'rps'),
                      fill: true,
                    },
                  ]
                : CLASSES.map((c) => ({ label: c, color: CLASS_COLOR[c], values: seriesAt(h.listeners, l.name, c) }))
            }
          />`
    }
  </article>`
}
