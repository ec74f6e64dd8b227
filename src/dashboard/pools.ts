/**
 * One card per pool: its live figures, latency and traffic charts, its histogram, and a row per
 * server with its state, load, latency and the actions. A row opens into the server's own charts.
 */
import { html } from 'htm/preact'
import { useState } from 'preact/hooks'
import { ACTION_LABEL, actionsFor, addServerDialog, type ServerAction, serverDialog } from './actions.js'
import { Chart } from './chart.js'
import type { DialogSpec } from './dialog.js'
import { ago, count, ms, percent, rate } from './format.js'
import { Histogram } from './histogram.js'
import { seriesAt } from './history.js'
import { PERCENTILE_COLOR, STATE_COLOR, seriesColor } from './theme.js'
import type { PoolView, ServerState, ServerView, StatsHistory } from './types.js'

export interface PoolsProps {
  readonly pools: readonly PoolView[]
  readonly history: StatsHistory | null
  readonly ask: (spec: DialogSpec) => void
  /** The API answered an action with this server view. */
  readonly applied: (pool: string, view: ServerView) => void
}

const STATES: readonly ServerState[] = ['up', 'draining', 'disabled', 'ejected', 'down']

export function Pools(p: PoolsProps) {
  return html`<div class="pools">${p.pools.map((pool) => html`<${PoolCard} key=${pool.name} pool=${pool} ...${p} />`)}</div>`
}

function PoolCard(p: PoolsProps & { readonly pool: PoolView }) {
  const pool = p.pool
  const h = p.history
  const [open, setOpen] = useState<string | undefined>(undefined)
  const live = pool.live
  const byState = STATES.map((st) => [st, pool.servers.filter((s) => s.state === st).length] as const).filter(
    ([, n]) => n > 0,
  )
  const latency = (at: string[]) =>
    (['p50', 'p95', 'p99'] as const).map((q) => ({
      label: q,
      color: PERCENTILE_COLOR[q],
      values: h === null ? undefined : seriesAt(h.pools, ...at, q),
    }))
  return html`<section class="card pool" data-pool=${pool.name}>
    <header>
      <h2>${pool.name}</h2>
      <span class="chip">${pool.algorithm}</span>
      <span class="states">
        ${byState.map(
          ([st, n]) =>
            html`<span class="state-count" style=${{ color: STATE_COLOR[st] }}><i class="mark round" style=${{ background: STATE_COLOR[st] }}></i>${n} ${st}</span>`,
        )}
      </span>
      <span class="spacer"></span>
      <button
        class="ghost small"
        data-action="add"
        onClick=${() => p.ask(addServerDialog(pool.name, (view) => p.applied(pool.name, view)))}
      >
        + Add server
      </button>
    </header>
    <div class="figures">
      <div class="figure big">
        <span class="value" data-testid="pool-rps">${rate(live?.rps)}</span><span class="unit">req/s</span>
      </div>
      <div class="figure">
        <span class=${`value ${(live?.errorRate ?? 0) > 0 ? 'bad' : ''}`}>${percent(live?.errorRate)}</span
        ><span class="unit">errors</span>
      </div>
      <div class="figure"><span class="value">${ms(live?.latencyMs.p50)}</span><span class="unit">p50</span></div>
      <div class="figure"><span class="value">${ms(live?.latencyMs.p95)}</span><span class="unit">p95</span></div>
      <div class="figure"><span class="value">${ms(live?.latencyMs.p99)}</span><span class="unit">p99</span></div>
      <div class="figure"><span class="value">${count(live?.inFlight)}</span><span class="unit">in flight</span></div>
      <div class="figure"><span class="value">${count(pool.queued)}</span><span class="unit">queued</span></div>
    </div>
    ${
      h === null
        ? null
        : html`<div class="charts">
            <${Chart} title="Latency (5 s window)" time=${h.time} format=${ms} lines=${latency([pool.name])} />
            <${Chart}
              title="Requests per second by server"
              time=${h.time}
              format=${rate}
              lines=${pool.servers.map((s, i) => ({
                label: s.name,
                color: seriesColor(i),
                values: seriesAt(h.pools, pool.name, 'servers', s.name, 'rps'),
              }))}
            />
            <${Histogram} counts=${live?.histogram} bucketsS=${h.bucketsS} />
          </div>`
    }
    <div class="table-wrap">
      <table class="servers">
        <thead>
          <tr>
            <th>State</th>
            <th>Server</th>
            <th class="num">Weight</th>
            <th class="num">In flight</th>
            <th class="num">Req/s</th>
            <th class="num">Errors</th>
            <th class="num">p50</th>
            <th class="num">p95</th>
            <th class="num">p99</th>
            <th class="num">Retries</th>
            <th class="num">Ejections</th>
            <th class="num">Requests</th>
            <th class="actions-col">Actions</th>
          </tr>
        </thead>
        <tbody>
          ${pool.servers.map((s, i) => {
            const expanded = open === s.name
            return html`<${ServerRow}
                key=${s.name}
                pool=${pool.name}
                server=${s}
                color=${seriesColor(i)}
                expanded=${expanded}
                toggle=${() => setOpen(expanded ? undefined : s.name)}
                act=${(a: ServerAction) => p.ask(serverDialog(a, pool.name, s, (view) => p.applied(pool.name, view)))}
              />
              ${
                expanded
                  ? html`<tr class="detail" key=${`${s.name}-detail`}>
                      <td colspan="13">
                        <${ServerDetail}
                          server=${s}
                          history=${h}
                          latency=${latency([pool.name, 'servers', s.name])}
                          pool=${pool.name}
                        />
                      </td>
                    </tr>`
                  : null
              }`
          })}
        </tbody>
      </table>
    </div>
  </section>`
}

function ServerRow(p: {
  readonly pool: string
  readonly server: ServerView
  readonly color: string
  readonly expanded: boolean
  readonly toggle: () => void
  readonly act: (a: ServerAction) => void
}) {
  const s = p.server
  const live = s.live
  return html`<tr
    class=${`server ${p.expanded ? 'open' : ''}`}
    data-server=${s.name}
    data-state=${s.state}
    onClick=${(e: Event) => {
      if (!(e.target as HTMLElement).closest('button')) p.toggle()
    }}
  >
    <td><${StatePill} state=${s.state} since=${s.since} /></td>
    <td class="name">
      <button class="link" aria-expanded=${p.expanded} onClick=${p.toggle}>
        <i class="mark" style=${{ background: p.color }}></i>${s.name}
      </button>
      <span class="muted mono url">${s.url}</span>
      ${s.backup ? html`<span class="chip small">backup</span>` : null}
      ${s.source === 'runtime' ? html`<span class="chip small">runtime</span>` : null}
    </td>
    <td class="num">${s.weight}</td>
    <td class="num">${count(s.inFlight)}</td>
    <td class="num strong" data-testid="server-rps">${rate(live?.rps)}</td>
    <td class=${`num ${(live?.errorRate ?? 0) > 0 ? 'bad' : ''}`}>${percent(live?.errorRate)}</td>
    <td class="num">${ms(live?.latencyMs.p50)}</td>
    <td class="num">${ms(live?.latencyMs.p95)}</td>
    <td class="num">${ms(live?.latencyMs.p99)}</td>
    <td class=${`num ${s.retries > 0 ? 'warn' : ''}`}>${count(s.retries)}</td>
    <td class=${`num ${s.ejections > 0 ? 'warn' : ''}`}>${count(s.ejections)}</td>
    <td class="num" data-testid="server-requests">${count(s.requests)}</td>
    <td class="actions">
      ${actionsFor(s).map(
        (a) => html`<button
          class=${`small ${a === 'disable' ? 'danger-ghost' : 'ghost'}`}
          data-action=${a}
          onClick=${() => p.act(a)}
        >
          ${ACTION_LABEL[a]}
        </button>`,
      )}
    </td>
  </tr>`
}

export function StatePill(p: { readonly state: ServerState; readonly since?: string }) {
  return html`<span
    class=${`pill state-${p.state}`}
    style=${{ color: STATE_COLOR[p.state], borderColor: `${STATE_COLOR[p.state]}66`, background: `${STATE_COLOR[p.state]}1a` }}
    title=${p.since === undefined ? p.state : `${p.state} for ${ago(p.since)}`}
    ><i class="pill-dot" style=${{ background: STATE_COLOR[p.state] }}></i>${p.state}</span
  >`
}

function ServerDetail(p: {
  readonly pool: string
  readonly server: ServerView
  readonly history: StatsHistory | null
  readonly latency: { label: string; color: string; values: (number | null)[] | undefined }[]
}) {
  const s = p.server
  const h = p.history
  const codes = Object.entries(s.errorsByCode)
  return html`<div class="server-detail">
    ${
      h === null
        ? null
        : html`<div class="charts">
            <${Chart} title=${`${s.name}: latency (5 s window)`} time=${h.time} format=${ms} lines=${p.latency} />
            <${Chart}
              title=${`${s.name}: requests per second`}
              time=${h.time}
              format=${rate}
              lines=${[
                {
                  label: 'req/s',
                  color: PERCENTILE_COLOR.p50,
                  values: seriesAt(h.pools, p.pool, 'servers', s.name, 'rps'),
                  fill: true,
                },
              ]}
            />
            <${Histogram} counts=${s.live?.histogram} bucketsS=${h.bucketsS} />
          </div>`
    }
    <dl class="facts">
      <div><dt>URL</dt><dd class="mono">${s.url}</dd></div>
      <div><dt>State</dt><dd>${s.state}, for ${ago(s.since)}</dd></div>
      <div>
        <dt>Health check</dt>
        <dd>${s.health === null ? 'none' : `${s.health.state}: ${s.health.lastResult}`}</dd>
      </div>
      <div>
        <dt>Errors</dt>
        <dd>
          ${
            codes.length === 0
              ? 'none'
              : codes.map(([code, n]) => html`<span class="chip small bad">${code} ${count(n)}</span>`)
          }
        </dd>
      </div>
      <div><dt>Latency, last minute</dt><dd>p50 ${ms(s.latencyMs.p50)} · p95 ${ms(s.latencyMs.p95)} · p99 ${ms(s.latencyMs.p99)}</dd></div>
      <div>
        <dt>Source</dt>
        <dd>${s.source === 'runtime' ? 'added through the API' : 'config'}${s.override === null ? '' : ', with runtime changes'}</dd>
      </div>
    </dl>
  </div>`
}
