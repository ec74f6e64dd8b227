/**
 * Every metric Switchyard exports, declared in one table (after Envoy's stats.h). Each LoadBalancer has
 * its own prom-client Registry, so several instances in one process (tests, embedders) do not collide.
 *
 * Request-path metrics are plain number cells, bound once per (listener, pool) or (pool, server) when a
 * snapshot is built: an update is one addition, with no label hashing or string building. They are
 * read into Prometheus form only when scraped. Cells outlive reloads, so counters never go backwards.
 * Rare events (errors, reloads) use prom-client's own counters.
 */
import { Counter, Gauge, type Metric, Registry } from 'prom-client'

export const METRICS = {
  requests: {
    name: 'switchyard_http_requests_total',
    help: 'HTTP requests answered, by listener, pool and status class (1xx..5xx).',
    labelNames: ['listener', 'pool', 'class'],
  },
  duration: {
    name: 'switchyard_http_request_duration_seconds',
    help: 'Time from the request head to the end of the response, by listener and pool.',
    labelNames: ['listener', 'pool'],
  },
  inFlight: {
    name: 'switchyard_http_requests_in_flight',
    help: 'Requests being handled now, by listener.',
    labelNames: ['listener'],
  },
  errors: {
    name: 'switchyard_errors_total',
    help: 'Requests that ended in a Switchyard error, by pool and SWY_* code.',
    labelNames: ['pool', 'code'],
  },
  connectionsRefused: {
    name: 'switchyard_connections_refused_total',
    help: 'Client connections closed as soon as they were accepted, by listener and reason (access, max-connections, connections-per-ip, connection-rate).',
    labelNames: ['listener', 'reason'],
  },
  upstreamRequests: {
    name: 'switchyard_upstream_requests_total',
    help: 'Requests sent to each upstream server.',
    labelNames: ['pool', 'server'],
  },
  upstreamInFlight: {
    name: 'switchyard_upstream_requests_in_flight',
    help: 'Requests in flight to each upstream server now, by pool and server.',
    labelNames: ['pool', 'server'],
  },
  upstreamDuration: {
    name: 'switchyard_upstream_request_duration_seconds',
    help: "Time from the start of a try to its end (the server's response complete, or the try failed), by pool and server.",
    labelNames: ['pool', 'server'],
  },
  upstreamTtfb: {
    name: 'switchyard_upstream_ttfb_seconds',
    help: "Time from the start of a try to the server's response head (time to first byte), by pool and server.",
    labelNames: ['pool', 'server'],
  },
  upstreamErrors: {
    name: 'switchyard_upstream_errors_total',
    help: 'Tries to each server that failed, by pool, server and code: the SWY_* code of the failure, or 5xx for an answer of status 500 to 599.',
    labelNames: ['pool', 'server', 'code'],
  },
  upstreamRetries: {
    name: 'switchyard_upstream_retries_total',
    help: 'Requests tried again, by pool, the server whose try failed, and reason (connect-failure, reset, timeout, status, keepalive-race).',
    labelNames: ['pool', 'server', 'reason'],
  },
  mirrorRequests: {
    name: 'switchyard_mirror_requests_total',
    help: 'Requests copied to a mirror pool (outcome sent), or not copied because the mirror was at its in-flight cap or refused admission (outcome skipped).',
    labelNames: ['pool', 'outcome'],
  },
  tcpConnections: {
    name: 'switchyard_tcp_connections_total',
    help: 'TCP (layer 4) connections ended, by listener, pool and outcome (ok: piped to a server; error: no server reached).',
    labelNames: ['listener', 'pool', 'outcome'],
  },
  tcpActive: {
    name: 'switchyard_tcp_connections_active',
    help: 'TCP (layer 4) client connections open now, by listener.',
    labelNames: ['listener'],
  },
  tcpBytes: {
    name: 'switchyard_tcp_bytes_total',
    help: 'Bytes piped by TCP (layer 4) listeners, by listener and direction (in: from clients, out: to clients).',
    labelNames: ['listener', 'direction'],
  },
  tunnels: {
    name: 'switchyard_tunnels_total',
    help: 'WebSocket and other upgraded connections (tunnels) opened, by pool.',
    labelNames: ['pool'],
  },
  tunnelsActive: {
    name: 'switchyard_tunnels_active',
    help: 'WebSocket and other upgraded connections (tunnels) open now, by pool.',
    labelNames: ['pool'],
  },
  tunnelBytes: {
    name: 'switchyard_tunnel_bytes_total',
    help: 'Bytes carried by tunnels once they closed, by pool and direction (in: from clients, out: to clients).',
    labelNames: ['pool', 'direction'],
  },
  http2Sessions: {
    name: 'switchyard_http2_sessions_total',
    help: 'HTTP/2 client connections (sessions) opened, by listener.',
    labelNames: ['listener'],
  },
  http2Active: {
    name: 'switchyard_http2_sessions_active',
    help: 'HTTP/2 client connections (sessions) open now, by listener.',
    labelNames: ['listener'],
  },
  serverUp: {
    name: 'switchyard_server_up',
    help: 'Active health check state of each server: 1 up, 0 down (pools with healthCheck only).',
    labelNames: ['pool', 'server'],
  },
  reloads: {
    name: 'switchyard_config_reloads_total',
    help: 'Configuration reloads, by result (ok, rejected).',
    labelNames: ['result'],
  },
  info: {
    name: 'switchyard_build_info',
    help: 'Always 1; labelled with the Switchyard version.',
    labelNames: ['version'],
  },
  workers: {
    name: 'switchyard_workers',
    help: 'Worker processes running now (multi-process mode only).',
    labelNames: [],
  },
  workerRestarts: {
    name: 'switchyard_worker_restarts_total',
    help: 'Workers restarted after they exited unasked (multi-process mode only).',
    labelNames: [],
  },
} as const

/**
 * With several workers, these are the supervisor's alone: it applies reloads and knows the version.
 * Every other metric is summed over the workers when scraped.
 */
export const SUPERVISOR_METRICS: readonly string[] = [
  METRICS.serverUp.name,
  METRICS.reloads.name,
  METRICS.info.name,
  METRICS.workers.name,
  METRICS.workerRestarts.name,
]

/** Upper bounds of the duration histogram, in seconds; a last, implicit bucket is +Inf. */
export const DURATION_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** A request-path counter or gauge: one number. */
export class Cell {
  value = 0
  inc(): void {
    this.value++
  }
  dec(): void {
    this.value--
  }
}

/** A request-path histogram: per-bucket counts (not cumulative; summed when scraped), sum and count. */
export class DurationCell {
  readonly counts = new Float64Array(DURATION_BUCKETS_S.length + 1)
  sum = 0
  count = 0

  observe(seconds: number): void {
    // i stops at most at DURATION_BUCKETS_S.length, the last (+Inf) slot of `counts`.
    let i = 0
    while (i < DURATION_BUCKETS_S.length && seconds > (DURATION_BUCKETS_S[i] as number)) i++
    ;(this.counts[i] as number)++
    this.sum += seconds
    this.count++
  }
}

/** The request-path cells of one server of a pool. */
export class ServerCells {
  /** Tries sent to it. */
  readonly requests = new Cell()
  readonly inFlight = new Cell()
  /** Whole tries, start to end. */
  readonly duration = new DurationCell()
  /** Start of a try to the response head. */
  readonly ttfb = new DurationCell()
  /** Failed tries by code; a code's cell is made on its first failure. */
  readonly errors = new Map<string, Cell>()

  error(code: string): void {
    let cell = this.errors.get(code)
    if (cell === undefined) {
      cell = new Cell()
      this.errors.set(code, cell)
    }
    cell.value++
  }
}

/** The cells of one TCP listener and its pool. */
export interface TcpMetrics {
  readonly ok: Cell
  readonly error: Cell
  readonly active: Cell
  readonly bytesIn: Cell
  readonly bytesOut: Cell
}

/** The tunnel cells of one pool. */
export interface TunnelMetrics {
  readonly opened: Cell
  readonly active: Cell
  readonly bytesIn: Cell
  readonly bytesOut: Cell
}

/** The HTTP/2 session counts of one listener. */
export interface Http2Metrics {
  readonly opened: Cell
  readonly active: Cell
}

/** The cells of one (listener, pool) pair. */
export interface RouteMetrics {
  /** Index `Math.floor(status / 100) - 1`. */
  readonly byClass: readonly Cell[]
  readonly duration: DurationCell
}

interface Sample {
  value: number
  labels: Record<string, string | number>
  metricName?: string
}

/**
 * A metric read from cells at scrape time, in the shape prom-client's Registry (and its cluster
 * aggregator, which sums each series over workers) expects from `get()`.
 */
class ScrapedMetric {
  readonly aggregator = 'sum'
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    readonly read: () => Sample[],
  ) {}

  get(): { name: string; help: string; type: string; values: Sample[]; aggregator: string } {
    return { name: this.name, help: this.help, type: this.type, values: this.read(), aggregator: this.aggregator }
  }

  reset(): void {}
}

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
  readonly #mirrors = new Map<string, { sent: Cell; skipped: Cell }>()
  readonly #inFlight = new Map<string, Cell>()
  readonly #tcp = new Map<string, { listener: string; pool: string; cells: TcpMetrics }>()
  readonly #http2 = new Map<string, Http2Metrics>()
  readonly #tunnels = new Map<string, TunnelMetrics>()
  readonly #health = new Map<string, { states(): { server: string; state: 'up' | 'down' }[] }>()

  constructor() {
    const register = (m: ScrapedMetric) => this.registry.registerMetric(m as unknown as Metric)
    register(
      new ScrapedMetric(METRICS.requests.name, METRICS.requests.help, 'counter', () =>
        [...this.#routes.values()].flatMap(({ listener, pool, cells }) =>
          CLASSES.map((cls, i) => ({ value: cells.byClass[i]?.value ?? 0, labels: { listener, pool, class: cls } })),
        ),
      ),
    )
    register(
      new ScrapedMetric(METRICS.duration.name, METRICS.duration.help, 'histogram', () =>
        [...this.#routes.values()].flatMap(({ listener, pool, cells }) =>
          histogramSamples(METRICS.duration.name, { listener, pool }, cells.duration),
        ),
      ),
    )
    register(
      new ScrapedMetric(METRICS.inFlight.name, METRICS.inFlight.help, 'gauge', () =>
        [...this.#inFlight].map(([listener, cell]) => ({ value: cell.value, labels: { listener } })),
      ),
    )
    const tcpByListener = () => {
      const seen = new Map<string, TcpMetrics>()
      for (const e of this.#tcp.values()) if (!seen.has(e.listener)) seen.set(e.listener, e.cells)
      return [...seen]
    }
    register(
      new ScrapedMetric(METRICS.tcpConnections.name, METRICS.tcpConnections.help, 'counter', () =>
        [...this.#tcp.values()].flatMap(({ listener, pool, cells }) => [
          { value: cells.ok.value, labels: { listener, pool, outcome: 'ok' } },
          { value: cells.error.value, labels: { listener, pool, outcome: 'error' } },
        ]),
      ),
    )
    register(
      new ScrapedMetric(METRICS.tcpActive.name, METRICS.tcpActive.help, 'gauge', () =>
        tcpByListener().map(([listener, cells]) => ({ value: cells.active.value, labels: { listener } })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.tcpBytes.name, METRICS.tcpBytes.help, 'counter', () =>
        tcpByListener().flatMap(([listener, cells]) => [
          { value: cells.bytesIn.value, labels: { listener, direction: 'in' } },
          { value: cells.bytesOut.value, labels: { listener, direction: 'out' } },
        ]),
      ),
    )
    const tunnels = () => [...this.#tunnels]
    register(
      new ScrapedMetric(METRICS.tunnels.name, METRICS.tunnels.help, 'counter', () =>
        tunnels().map(([pool, cells]) => ({ value: cells.opened.value, labels: { pool } })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.tunnelsActive.name, METRICS.tunnelsActive.help, 'gauge', () =>
        tunnels().map(([pool, cells]) => ({ value: cells.active.value, labels: { pool } })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.tunnelBytes.name, METRICS.tunnelBytes.help, 'counter', () =>
        tunnels().flatMap(([pool, cells]) => [
          { value: cells.bytesIn.value, labels: { pool, direction: 'in' } },
          { value: cells.bytesOut.value, labels: { pool, direction: 'out' } },
        ]),
      ),
    )
    register(
      new ScrapedMetric(METRICS.http2Sessions.name, METRICS.http2Sessions.help, 'counter', () =>
        [...this.#http2].map(([listener, cells]) => ({ value: cells.opened.value, labels: { listener } })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.http2Active.name, METRICS.http2Active.help, 'gauge', () =>
        [...this.#http2].map(([listener, cells]) => ({ value: cells.active.value, labels: { listener } })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.serverUp.name, METRICS.serverUp.help, 'gauge', () =>
        [...this.#health].flatMap(([pool, tracker]) =>
          tracker.states().map((s) => ({ value: s.state === 'up' ? 1 : 0, labels: { pool, server: s.server } })),
        ),
      ),
    )
    register(
      new ScrapedMetric(METRICS.mirrorRequests.name, METRICS.mirrorRequests.help, 'counter', () =>
        [...this.#mirrors].flatMap(([pool, cells]) => [
          { value: cells.sent.value, labels: { pool, outcome: 'sent' } },
          { value: cells.skipped.value, labels: { pool, outcome: 'skipped' } },
        ]),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamRetries.name, METRICS.upstreamRetries.help, 'counter', () =>
        [...this.#retries.values()].map(({ pool, server, reason, cell }) => ({
          value: cell.value,
          labels: { pool, server, reason },
        })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamRequests.name, METRICS.upstreamRequests.help, 'counter', () =>
        [...this.#servers.values()].map(({ pool, server, cells }) => ({
          value: cells.requests.value,
          labels: { pool, server },
        })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamInFlight.name, METRICS.upstreamInFlight.help, 'gauge', () =>
        [...this.#servers.values()].map(({ pool, server, cells }) => ({
          value: cells.inFlight.value,
          labels: { pool, server },
        })),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamDuration.name, METRICS.upstreamDuration.help, 'histogram', () =>
        [...this.#servers.values()].flatMap(({ pool, server, cells }) =>
          histogramSamples(METRICS.upstreamDuration.name, { pool, server }, cells.duration),
        ),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamTtfb.name, METRICS.upstreamTtfb.help, 'histogram', () =>
        [...this.#servers.values()].flatMap(({ pool, server, cells }) =>
          histogramSamples(METRICS.upstreamTtfb.name, { pool, server }, cells.ttfb),
        ),
      ),
    )
    register(
      new ScrapedMetric(METRICS.upstreamErrors.name, METRICS.upstreamErrors.help, 'counter', () =>
        [...this.#servers.values()].flatMap(({ pool, server, cells }) =>
          [...cells.errors].map(([code, cell]) => ({ value: cell.value, labels: { pool, server, code } })),
        ),
      ),
    )
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
    for (const [key, e] of this.#retries) if (gone(e.pool, e.server) && e.server !== '') this.#retries.delete(key)
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

  /** Where `switchyard_server_up` reads each checked pool's states from (replaces the previous set). */
  setHealth(trackers: ReadonlyMap<string, { states(): { server: string; state: 'up' | 'down' }[] }>): void {
    this.#health.clear()
    for (const [pool, tracker] of trackers) this.#health.set(pool, tracker)
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

/** The supervisor's own metrics, in multi-process mode. */
export class SupervisorMetrics {
  readonly registry = new Registry()
  readonly reloads = new Counter({ ...METRICS.reloads, registers: [this.registry] })
  readonly info = new Gauge({ ...METRICS.info, registers: [this.registry] })
  readonly workers = new Gauge({ ...METRICS.workers, registers: [this.registry] })
  readonly workerRestarts = new Counter({ ...METRICS.workerRestarts, registers: [this.registry] })
  #health: ReadonlyMap<string, { states(): { server: string; state: 'up' | 'down' }[] }> = new Map()

  constructor() {
    const self = this
    new Gauge({
      ...METRICS.serverUp,
      registers: [this.registry],
      collect() {
        this.reset()
        for (const [pool, tracker] of self.#health)
          for (const s of tracker.states()) this.labels(pool, s.server).set(s.state === 'up' ? 1 : 0)
      },
    })
  }

  /** Where `switchyard_server_up` reads each checked pool's states from (the supervisor runs the checks). */
  setHealth(trackers: ReadonlyMap<string, { states(): { server: string; state: 'up' | 'down' }[] }>): void {
    this.#health = trackers
  }
}

function histogramSamples(name: string, labels: Record<string, string>, cell: DurationCell): Sample[] {
  const out: Sample[] = []
  let cumulative = 0
  for (let i = 0; i <= DURATION_BUCKETS_S.length; i++) {
    cumulative += cell.counts[i] ?? 0
    const le = DURATION_BUCKETS_S[i] ?? '+Inf'
    out.push({ value: cumulative, labels: { ...labels, le }, metricName: `${name}_bucket` })
  }
  out.push({ value: cell.sum, labels, metricName: `${name}_sum` })
  out.push({ value: cell.count, labels, metricName: `${name}_count` })
  return out
}
