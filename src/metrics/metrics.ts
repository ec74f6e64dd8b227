/**
 * The metrics of one Switchyard instance, in a prom-client Registry of its own, so that several
 * instances in one process (tests, embedders) do not collide.
 *
 * Request-path metrics are cells (cells.ts) bound when a snapshot is built; each metric of the table
 * reads its cells when scraped (collected.ts). Gauges of state (queues, ejections, health, runtime
 * overrides) are read from the snapshots that serve, through the sources the control plane sets. Rare
 * events (errors, reloads, refused connections) use prom-client's counters directly.
 *
 * The series of a server (and of a pool) that a reload or a runtime change removed are dropped
 * (`retainServers`); those of listeners, routes and rules stay, at their last values.
 */
import { Counter, Gauge, Registry } from 'prom-client'
import {
  Cell,
  DurationCell,
  type Http2Metrics,
  type RouteMetrics,
  ServerCells,
  type TcpMetrics,
  type TunnelMetrics,
} from './cells.js'
import { collectedCounter, collectedGauge, collectedHistogram } from './collected.js'
import { type MetricsJson, processMetricsJson, processRegistry } from './process.js'
import { METRICS } from './table.js'

/** What the pool gauges read when scraped: each pool that serves now (an UpstreamPool). */
export interface PoolGauges {
  readonly name: string
  /** Requests in the pool's queue now. */
  readonly queued: number
  /** Servers ejected by passive health now, with what ejected each. */
  readonly ejected: ReadonlyMap<string, string>
  /** Each server's requests waiting for one of its connections now. */
  pending(): Iterable<readonly [server: string, count: number]>
}

/** A server with a runtime override, as `switchyard_override_*` show it. */
export interface OverrideRow {
  readonly pool: string
  readonly server: string
  /** `active`, `draining`, `disabled`, `removing` or `removed`. */
  readonly state: string
  /** The weight the override sets; undefined when it sets none. */
  readonly weight: number | undefined
}

/** Where `switchyard_server_up` reads each checked pool's states from. */
export type HealthStates = ReadonlyMap<string, { states(): { server: string; state: 'up' | 'down' }[] }>

const CLASSES = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const

export class Metrics {
  readonly registry = new Registry()
  readonly errors = new Counter({ ...METRICS.errors, registers: [this.registry] })
  readonly reloads = new Counter({ ...METRICS.reloads, registers: [this.registry] })
  readonly connectionsRefused = new Counter({ ...METRICS.connectionsRefused, registers: [this.registry] })
  readonly info = new Gauge({ ...METRICS.info, registers: [this.registry] })
  readonly #routes = new Map<string, { listener: string; pool: string; cells: RouteMetrics }>()
  readonly #servers = new Map<string, { pool: string; server: string; cells: ServerCells }>()
  readonly #retries = new Map<string, { pool: string; server: string; reason: string; cell: Cell }>()
  readonly #budget = new Map<string, Cell>()
  readonly #ejections = new Map<string, { pool: string; server: string; reason: string; cell: Cell }>()
  readonly #queueWait = new Map<string, DurationCell>()
  readonly #rateLimits = new Map<string, { labels: Record<string, string>; cell: Cell }>()
  readonly #access = new Map<string, { labels: Record<string, string>; cell: Cell }>()
  readonly #mirrors = new Map<string, { sent: Cell; skipped: Cell }>()
  readonly #inFlight = new Map<string, Cell>()
  readonly #tcp = new Map<string, { listener: string; pool: string; cells: TcpMetrics }>()
  readonly #http2 = new Map<string, Http2Metrics>()
  readonly #tunnels = new Map<string, TunnelMetrics>()
  readonly #health = new Map<string, { states(): { server: string; state: 'up' | 'down' }[] }>()
  #pools: () => Iterable<PoolGauges> = () => []
  #overrides: () => readonly OverrideRow[] = () => []

  constructor() {
    const r = this.registry
    collectedCounter(r, METRICS.requests, (add) => {
      for (const { listener, pool, cells } of this.#routes.values())
        for (let i = 0; i < CLASSES.length; i++)
          add({ listener, pool, class: CLASSES[i] as string }, cells.byClass[i]?.value ?? 0)
    })
    collectedHistogram(r, METRICS.duration, (add) => {
      for (const { listener, pool, cells } of this.#routes.values()) add({ listener, pool }, cells.duration)
    })
    collectedGauge(r, METRICS.inFlight, (add) => {
      for (const [listener, cell] of this.#inFlight) add({ listener }, cell.value)
    })
    collectedCounter(r, METRICS.tcpConnections, (add) => {
      for (const { listener, pool, cells } of this.#tcp.values()) {
        add({ listener, pool, outcome: 'ok' }, cells.ok.value)
        add({ listener, pool, outcome: 'error' }, cells.error.value)
      }
    })
    collectedGauge(r, METRICS.tcpActive, (add) => {
      for (const [listener, cells] of this.#tcpByListener()) add({ listener }, cells.active.value)
    })
    collectedCounter(r, METRICS.tcpBytes, (add) => {
      for (const [listener, cells] of this.#tcpByListener()) {
        add({ listener, direction: 'in' }, cells.bytesIn.value)
        add({ listener, direction: 'out' }, cells.bytesOut.value)
      }
    })
    collectedCounter(r, METRICS.tunnels, (add) => {
      for (const [pool, cells] of this.#tunnels) add({ pool }, cells.opened.value)
    })
    collectedGauge(r, METRICS.tunnelsActive, (add) => {
      for (const [pool, cells] of this.#tunnels) add({ pool }, cells.active.value)
    })
    collectedCounter(r, METRICS.tunnelBytes, (add) => {
      for (const [pool, cells] of this.#tunnels) {
        add({ pool, direction: 'in' }, cells.bytesIn.value)
        add({ pool, direction: 'out' }, cells.bytesOut.value)
      }
    })
    collectedCounter(r, METRICS.http2Sessions, (add) => {
      for (const [listener, cells] of this.#http2) add({ listener }, cells.opened.value)
    })
    collectedGauge(r, METRICS.http2Active, (add) => {
      for (const [listener, cells] of this.#http2) add({ listener }, cells.active.value)
    })
    collectedGauge(r, METRICS.serverUp, (add) => addHealth(this.#health, add))
    collectedCounter(r, METRICS.mirrorRequests, (add) => {
      for (const [pool, cells] of this.#mirrors) {
        add({ pool, outcome: 'sent' }, cells.sent.value)
        add({ pool, outcome: 'skipped' }, cells.skipped.value)
      }
    })
    collectedCounter(r, METRICS.upstreamRetries, (add) => {
      for (const { pool, server, reason, cell } of this.#retries.values()) add({ pool, server, reason }, cell.value)
    })
    collectedCounter(r, METRICS.retryBudgetExhausted, (add) => {
      for (const [pool, cell] of this.#budget) add({ pool }, cell.value)
    })
    collectedCounter(r, METRICS.ejections, (add) => {
      for (const { pool, server, reason, cell } of this.#ejections.values()) add({ pool, server, reason }, cell.value)
    })
    collectedGauge(r, METRICS.ejected, (add) => {
      for (const p of this.#pools()) {
        let outlier = 0
        for (const reason of p.ejected.values()) if (reason === 'outlier') outlier++
        add({ pool: p.name, reason: 'outlier' }, outlier)
        add({ pool: p.name, reason: 'connect-failure' }, p.ejected.size - outlier)
      }
    })
    collectedGauge(r, METRICS.upstreamPending, (add) => {
      for (const p of this.#pools()) for (const [server, n] of p.pending()) add({ pool: p.name, server }, n)
    })
    collectedGauge(r, METRICS.queueDepth, (add) => {
      for (const p of this.#pools()) add({ pool: p.name }, p.queued)
    })
    collectedHistogram(r, METRICS.queueWait, (add) => {
      for (const [pool, cell] of this.#queueWait) add({ pool }, cell)
    })
    collectedCounter(r, METRICS.rateLimited, (add) => {
      for (const { labels, cell } of this.#rateLimits.values()) add(labels, cell.value)
    })
    collectedCounter(r, METRICS.accessDenied, (add) => {
      for (const { labels, cell } of this.#access.values()) add(labels, cell.value)
    })
    collectedCounter(r, METRICS.upstreamRequests, (add) => {
      for (const { pool, server, cells } of this.#servers.values()) add({ pool, server }, cells.requests.value)
    })
    collectedGauge(r, METRICS.upstreamInFlight, (add) => {
      for (const { pool, server, cells } of this.#servers.values()) add({ pool, server }, cells.inFlight.value)
    })
    collectedHistogram(r, METRICS.upstreamDuration, (add) => {
      for (const { pool, server, cells } of this.#servers.values()) add({ pool, server }, cells.duration)
    })
    collectedHistogram(r, METRICS.upstreamTtfb, (add) => {
      for (const { pool, server, cells } of this.#servers.values()) add({ pool, server }, cells.ttfb)
    })
    collectedCounter(r, METRICS.upstreamErrors, (add) => {
      for (const { pool, server, cells } of this.#servers.values())
        for (const [code, cell] of cells.errors) add({ pool, server, code }, cell.value)
    })
    addOverrideGauges(r, () => this.#overrides())
  }

  /** The Prometheus text of this instance's metrics and of the process's (`/metrics`). */
  async text(): Promise<string> {
    return Registry.merge([this.registry, processRegistry()]).metrics()
  }

  /** This instance's metrics and the process's as JSON, `processLabels` on the process's (a worker's scrape). */
  async json(processLabels: Record<string, string>): Promise<MetricsJson> {
    const own = (await this.registry.getMetricsAsJSON()) as MetricsJson
    return [...own, ...(await processMetricsJson(processLabels))]
  }

  #tcpByListener(): [string, TcpMetrics][] {
    const seen = new Map<string, TcpMetrics>()
    for (const e of this.#tcp.values()) if (!seen.has(e.listener)) seen.set(e.listener, e.cells)
    return [...seen]
  }

  /** The cells of a TCP listener in front of `pool`; the same ones on every call. Off the request path. */
  forTcp(listener: string, pool: string): TcpMetrics {
    const key = `${listener}\0${pool}`
    let entry = this.#tcp.get(key)
    if (!entry) {
      const byListener = [...this.#tcp.values()].find((e) => e.listener === listener)?.cells
      entry = {
        listener,
        pool,
        cells: {
          ok: new Cell(),
          error: new Cell(),
          // Gauges and byte counts belong to the listener, whichever pool it points at.
          active: byListener?.active ?? new Cell(),
          bytesIn: byListener?.bytesIn ?? new Cell(),
          bytesOut: byListener?.bytesOut ?? new Cell(),
        },
      }
      this.#tcp.set(key, entry)
    }
    return entry.cells
  }

  /** The cells of one (listener, pool) pair; the same ones on every call. Off the request path. */
  forRoute(listener: string, pool: string): RouteMetrics {
    const key = `${listener}\0${pool}`
    let entry = this.#routes.get(key)
    if (!entry) {
      entry = { listener, pool, cells: { byClass: CLASSES.map(() => new Cell()), duration: new DurationCell() } }
      this.#routes.set(key, entry)
    }
    return entry.cells
  }

  /** The cells of one server in a pool; the same ones on every call. Off the request path. */
  forServer(pool: string, server: string): ServerCells {
    const key = `${pool}\0${server}`
    let entry = this.#servers.get(key)
    if (!entry) {
      entry = { pool, server, cells: new ServerCells() }
      this.#servers.set(key, entry)
    }
    return entry.cells
  }

  /** The cells of a server in a pool when it has any (nothing is made). */
  peekServer(pool: string, server: string): ServerCells | undefined {
    return this.#servers.get(`${pool}\0${server}`)?.cells
  }

  /** Requests tried again after a try to this server failed, all reasons (nothing is made). */
  peekRetries(pool: string, server: string): number {
    let n = 0
    for (const e of this.#retries.values()) if (e.pool === pool && e.server === server) n += e.cell.value
    return n
  }

  /**
   * Drops the series of servers (and pools) that no longer exist: `servers` maps each pool of the
   * running config to its server ids. Called after a reload or runtime change is committed.
   */
  retainServers(servers: ReadonlyMap<string, ReadonlySet<string>>): void {
    const gone = (pool: string, server: string) => servers.get(pool)?.has(server) !== true
    for (const [key, e] of this.#servers) if (gone(e.pool, e.server)) this.#servers.delete(key)
    for (const [key, e] of this.#retries)
      if (e.server === '' ? !servers.has(e.pool) : gone(e.pool, e.server)) this.#retries.delete(key)
    for (const [key, e] of this.#ejections) if (gone(e.pool, e.server)) this.#ejections.delete(key)
    for (const pool of this.#budget.keys()) if (!servers.has(pool)) this.#budget.delete(pool)
    for (const pool of this.#queueWait.keys()) if (!servers.has(pool)) this.#queueWait.delete(pool)
  }

  /** The copy counts of one mirror pool. Off the request path. */
  mirrorOf(pool: string): { readonly sent: Cell; readonly skipped: Cell } {
    let cells = this.#mirrors.get(pool)
    if (!cells) {
      cells = { sent: new Cell(), skipped: new Cell() }
      this.#mirrors.set(pool, cells)
    }
    return cells
  }

  /** The retry cell of one (pool, server, reason); made on the first retry of its kind. */
  retryOf(pool: string, server: string, reason: string): Cell {
    const key = `${pool}\0${server}\0${reason}`
    let entry = this.#retries.get(key)
    if (!entry) {
      entry = { pool, server, reason, cell: new Cell() }
      this.#retries.set(key, entry)
    }
    return entry.cell
  }

  /** The count of retries a pool's spent budget refused; made on the first. */
  retryBudgetOf(pool: string): Cell {
    let cell = this.#budget.get(pool)
    if (cell === undefined) {
      cell = new Cell()
      this.#budget.set(pool, cell)
    }
    return cell
  }

  /** The ejection count of one (pool, server, reason); made on the first ejection of its kind. */
  ejectionOf(pool: string, server: string, reason: string): Cell {
    const key = `${pool}\0${server}\0${reason}`
    let entry = this.#ejections.get(key)
    if (!entry) {
      entry = { pool, server, reason, cell: new Cell() }
      this.#ejections.set(key, entry)
    }
    return entry.cell
  }

  /** The queue-wait histogram of one pool (held by the pool across its generations). Off the request path. */
  queueWaitOf(pool: string): DurationCell {
    let cell = this.#queueWait.get(pool)
    if (cell === undefined) {
      cell = new DurationCell()
      this.#queueWait.set(pool, cell)
    }
    return cell
  }

  /**
   * The rejection count of one limit of a `rateLimit` rule, `kind` `rate` or `concurrent`. `route`: the
   * route's name or position, empty for a listener's rule. Off the request path (when rules compile).
   */
  rateLimitOf(listener: string, route: string, limit: string, kind: 'rate' | 'concurrent'): Cell {
    const key = `${listener}\0${route}\0${limit}\0${kind}`
    let entry = this.#rateLimits.get(key)
    if (!entry) {
      entry = { labels: { listener, route, limit, kind }, cell: new Cell() }
      this.#rateLimits.set(key, entry)
    }
    return entry.cell
  }

  /** The denial count of the `access` rules of a listener (`route` empty) or route. Off the request path. */
  accessDeniedOf(listener: string, route: string): Cell {
    const key = `${listener}\0${route}`
    let entry = this.#access.get(key)
    if (!entry) {
      entry = { labels: { listener, route }, cell: new Cell() }
      this.#access.set(key, entry)
    }
    return entry.cell
  }

  /** Where `switchyard_server_up` reads each checked pool's states from (replaces the previous set). */
  setHealth(trackers: HealthStates): void {
    this.#health.clear()
    for (const [pool, tracker] of trackers) this.#health.set(pool, tracker)
  }

  /** Where the queue, pending and ejection gauges read the pools that serve from. */
  setPools(source: () => Iterable<PoolGauges>): void {
    this.#pools = source
  }

  /** Where `switchyard_override_*` read the runtime overrides from. */
  setOverrides(source: () => readonly OverrideRow[]): void {
    this.#overrides = source
  }

  /** The tunnel cells of one pool: looked up once per tunnel. */
  tunnelsOf(pool: string): TunnelMetrics {
    let cells = this.#tunnels.get(pool)
    if (!cells) {
      cells = { opened: new Cell(), active: new Cell(), bytesIn: new Cell(), bytesOut: new Cell() }
      this.#tunnels.set(pool, cells)
    }
    return cells
  }

  /** The HTTP/2 session cells of one listener. Off the request path. */
  http2Of(listener: string): Http2Metrics {
    let cells = this.#http2.get(listener)
    if (!cells) {
      cells = { opened: new Cell(), active: new Cell() }
      this.#http2.set(listener, cells)
    }
    return cells
  }

  /** The in-flight gauge cell of one listener. Off the request path. */
  inFlightOf(listener: string): Cell {
    let cell = this.#inFlight.get(listener)
    if (!cell) {
      cell = new Cell()
      this.#inFlight.set(listener, cell)
    }
    return cell
  }
}

/** The supervisor's own metrics, in multi-process mode (see SUPERVISOR_METRICS). */
export class SupervisorMetrics {
  readonly registry = new Registry()
  readonly reloads = new Counter({ ...METRICS.reloads, registers: [this.registry] })
  readonly info = new Gauge({ ...METRICS.info, registers: [this.registry] })
  readonly workers = new Gauge({ ...METRICS.workers, registers: [this.registry] })
  readonly workerRestarts = new Counter({ ...METRICS.workerRestarts, registers: [this.registry] })
  #health: HealthStates = new Map()
  #overrides: () => readonly OverrideRow[] = () => []

  constructor() {
    collectedGauge(this.registry, METRICS.serverUp, (add) => addHealth(this.#health, add))
    addOverrideGauges(this.registry, () => this.#overrides())
  }

  /** Where `switchyard_server_up` reads each checked pool's states from (the supervisor runs the checks). */
  setHealth(trackers: HealthStates): void {
    this.#health = trackers
  }

  /** Where `switchyard_override_*` read the runtime overrides from. */
  setOverrides(source: () => readonly OverrideRow[]): void {
    this.#overrides = source
  }
}

function addHealth(health: HealthStates, add: (labels: Record<string, string>, value: number) => void): void {
  for (const [pool, tracker] of health)
    for (const s of tracker.states()) add({ pool, server: s.server }, s.state === 'up' ? 1 : 0)
}

function addOverrideGauges(registry: Registry, rows: () => readonly OverrideRow[]): void {
  collectedGauge(registry, METRICS.overrideState, (add) => {
    for (const o of rows()) add({ pool: o.pool, server: o.server, state: o.state }, 1)
  })
  collectedGauge(registry, METRICS.overrideWeight, (add) => {
    for (const o of rows()) if (o.weight !== undefined) add({ pool: o.pool, server: o.server }, o.weight)
  })
}
