/**
 * The admin HTTP server: the versioned API under /api/v1 (routes in api.ts, described by
 * `GET /api/v1/openapi.json`), Prometheus metrics, liveness, and the dashboard page.
 *
 *   GET /healthz      200 {"status":"ok"} while serving (open)
 *   GET /             the dashboard (open, with /dashboard/app.js and app.css: they hold no data,
 *                     and the page asks for the token)
 *   GET /metrics      Prometheus text exposition
 *   GET /api/status   the summary of earlier versions (listeners, pools, workers)
 *   /api/v1/...       read and steer: pools, servers, listeners, stats, config, reload, overrides, events
 *
 * It reads reports, snapshots and metrics, never pool internals, and changes things only through
 * Steering (server/steering.ts). Closed by default: the config allows it on a loopback address only,
 * unless `admin.token` guards every request but `/healthz` and the dashboard's files (401 otherwise).
 *
 * Every STATS_INTERVAL_MS it reads the reports (stats.ts): the live numbers and their history
 * (`GET /api/v1/stats`), and a `stats` event to every open event stream.
 *
 * Bodies: JSON up to MAX_JSON_BYTES; a config for `PUT /api/v1/config` up to MAX_CONFIG_BYTES.
 * Errors answer `{"error": "...", "issues"?: [...]}`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import type { z } from 'zod'
import { type ConfigIssue, parseConfigText, type RuntimeConfig } from '../config/index.js'
import type { ListenAddress } from '../core/address.js'
import { isSwitchyardError } from '../core/errors.js'
import { tokenDigest, tokenMatches } from '../core/token.js'
import { boundAddress, listenOn } from '../listeners/bind.js'
import { DURATION_BUCKETS_S } from '../metrics/index.js'
import type { SwitchyardEvent } from '../server/events.js'
import { unmatched } from '../server/overrides.js'
import { addHistograms, type ListenerReport, type PoolReport } from '../server/reports.js'
import { ChangeError, type Steering } from '../server/steering.js'
import { matchRoute, type OperationId, openApiDocument, serverAddSchema, serverPatchSchema } from './api.js'
import { DASHBOARD_CSP, DashboardAssets, NOT_BUILT_HTML } from './assets.js'
import { type Reading, STATS_HISTORY_MS, STATS_INTERVAL_MS, StatsRecorder } from './stats.js'
import {
  LatencyWindow,
  type ListenerView,
  listenerViews,
  type PoolView,
  poolView,
  redact,
  type ServerView,
} from './views.js'

/** What the admin API reads and steers: one load balancer, or the supervisor of several worker processes. */
export interface AdminSource {
  /** Prometheus text exposition. */
  metricsText(): Promise<{ contentType: string; body: string }>
  /** The summary of `/api/status`; its `listeners` give each listener's address and in-flight count. */
  status(): unknown
  /** Every pool with its servers (summed over workers). */
  poolReports(): PoolReport[] | Promise<PoolReport[]>
  /** Every listener's connections, load and answers by class (summed over workers). */
  listenerReports(): ListenerReport[] | Promise<ListenerReport[]>
  /** Reloads the config file; ChangeError 409 without one. */
  reloadFile(): Promise<void>
  /** The effective config: what serves now. */
  readonly config: RuntimeConfig
  /** The config file it was started from (relative paths of a config put through the API start beside it). */
  readonly configFile: string | undefined
  readonly steering: Steering
}

const MAX_JSON_BYTES = 64 * 1024
const MAX_CONFIG_BYTES = 4 * 1024 * 1024
/** A comment line on every event stream this often, so that idle proxies keep it open. */
const SSE_KEEPALIVE_MS = 15_000
/** Unsent bytes past which an event stream is closed (its client reconnects with Last-Event-ID). */
const STREAM_BACKLOG_BYTES = 4 * 1024 * 1024

/** A server's or pool's view in a `stats` event: the view, plus its live numbers. */
export type LiveServerView = ServerView & { readonly live: LiveUpstream }
export type LivePoolView = Omit<PoolView, 'servers'> & {
  readonly live: LiveUpstream & { readonly inFlight: number }
  readonly servers: readonly LiveServerView[]
}
export type LiveListenerView = ListenerView & { readonly live: NonNullable<ReturnType<Reading['listeners']['get']>> }
type LiveUpstream = NonNullable<ReturnType<Reading['servers']['get']>> & {
  /** Whole-try counts per bucket over the last STATS_HISTORY_MS (or since the server joined). */
  readonly histogram: readonly number[]
}

/** The `stats` event: every pool and listener view with its live numbers. Not kept in the event log. */
export interface StatsEvent {
  readonly type: 'stats'
  readonly time: string
  readonly intervalMs: number
  readonly pools: readonly LivePoolView[]
  readonly listeners: readonly LiveListenerView[]
  /** This reading as one point of `GET /api/v1/stats`: the same paths, one value each. */
  readonly point: Reading['point'] & { readonly time: number }
}

/** An answer to send: status and JSON body. */
class Reply {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

export class AdminServer {
  readonly #server: Server
  readonly #source: AdminSource
  readonly #address: ListenAddress
  readonly #window = new LatencyWindow()
  /** The histograms of the dashboard: over the whole history, a reading every 30 s. */
  readonly #longWindow = new LatencyWindow(Date.now, STATS_HISTORY_MS, 30_000)
  readonly #stats = new StatsRecorder()
  readonly #sampler: NodeJS.Timeout
  /** A reading is under way: the next tick is skipped rather than piled up behind a slow one. */
  #sampling = false
  /** The last `stats` event, for a stream that opens between two. */
  #lastStats: string | undefined
  /** Open event streams, ended on close. */
  readonly #streams = new Set<ServerResponse>()
  readonly #assets = new DashboardAssets()

  /** SHA-256 of the bearer token, compared in constant time; undefined: no token (a loopback admin). */
  readonly #tokenDigest: Buffer | undefined

  constructor(source: AdminSource, address: ListenAddress & { readonly token?: string | undefined }) {
    this.#source = source
    this.#address = address
    this.#tokenDigest = address.token === undefined ? undefined : tokenDigest(address.token)
    this.#server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: (err as Error).message })
        else res.destroy()
      })
    })
    // Readings for the latency windows and the stats, also while nobody watches.
    this.#sampler = setInterval(() => void this.#sample().catch(() => {}), STATS_INTERVAL_MS)
    this.#sampler.unref()
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#address.host, this.#address.port, '(admin)')
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.#server)
  }

  close(): Promise<void> {
    clearInterval(this.#sampler)
    for (const res of this.#streams) res.end()
    return new Promise((resolve) => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string
    const method = req.method ?? 'GET'
    if (path === '/healthz' || DashboardAssets.serves(path)) {
      if (method !== 'GET' && method !== 'HEAD')
        return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' })
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' })
      return this.#asset(req, res, path)
    }
    if (!this.#authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="switchyard admin"')
      return sendJson(res, 401, { error: 'unauthorized: send Authorization: Bearer <admin token>' })
    }
    if (path === '/metrics' || path === '/api/status') {
      if (method !== 'GET' && method !== 'HEAD')
        return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' })
      if (path === '/api/status') return sendJson(res, 200, await this.#source.status())
      const { contentType, body } = await this.#source.metricsText()
      return send(res, 200, contentType, body)
    }
    const route = matchRoute(method, path)
    switch (route.kind) {
      case 'none':
        return sendJson(res, 404, { error: `no such admin path: ${path}` })
      case 'method':
        return sendJson(res, 405, { error: `${method} is not allowed here` }, { allow: route.allow.join(', ') })
      case 'match':
        break
      default: {
        const unknown: never = route
        throw new Error(`unknown route match ${JSON.stringify(unknown)}`)
      }
    }
    if (route.operation === 'events') return this.#events(req, res)
    let reply: Reply
    try {
      reply = await this.#run(route.operation, route.params, req)
    } catch (err) {
      reply = errorReply(err)
    }
    sendJson(res, reply.status, reply.body, reply.headers)
  }

  async #run(op: Exclude<OperationId, 'events'>, params: Readonly<Record<string, string>>, req: IncomingMessage) {
    const steering = this.#source.steering
    const pool = params.pool ?? ''
    const server = params.server ?? ''
    switch (op) {
      case 'listPools':
        return new Reply(200, { pools: await this.#pools() })
      case 'getPool':
        return new Reply(200, await this.#pool(pool))
      case 'getServer':
        return new Reply(200, await this.#serverView(pool, server))
      case 'addServer': {
        const body = parseBody(serverAddSchema, await readJson(req))
        const id = await steering.add(pool, body)
        return new Reply(201, await this.#serverView(pool, id), {
          location: `/api/v1/pools/${encodeURIComponent(pool)}/servers/${encodeURIComponent(id)}`,
        })
      }
      case 'updateServer': {
        const body = parseBody(serverPatchSchema, await readJson(req))
        await steering.update(pool, server, body)
        return new Reply(200, await this.#serverView(pool, server))
      }
      case 'removeServer':
        await steering.remove(pool, server)
        return new Reply(202, await this.#serverView(pool, server).catch(() => ({ name: server, state: 'draining' })))
      case 'listListeners':
        return new Reply(200, {
          listeners: listenerViews(this.#source.config, await this.#source.listenerReports()),
        })
      case 'getStats':
        return new Reply(200, { ...this.#stats.history(), bucketsS: DURATION_BUCKETS_S })
      case 'getConfig':
        return new Reply(200, redact(this.#source.config))
      case 'putConfig': {
        const text = await readBody(req, MAX_CONFIG_BYTES)
        const file = this.#source.configFile
        const parsed = parseConfigText(text, 'request body', process.env, {
          baseDir: file === undefined ? process.cwd() : path.dirname(path.resolve(file)),
        })
        if (!parsed.ok) return issuesReply(parsed.issues)
        await steering.reload(parsed.config, 'api')
        return new Reply(200, { generation: steering.generation })
      }
      case 'reload':
        await this.#source.reloadFile()
        return new Reply(200, { generation: steering.generation })
      case 'getOverrides':
        return new Reply(200, {
          overrides: steering.overrides.pools,
          unmatched: unmatched(steering.base, steering.overrides),
          stateFile: steering.base.admin?.stateFile ?? null,
        })
      case 'clearOverrides':
        await steering.clear()
        return new Reply(200, { generation: steering.generation })
      case 'openapi':
        return new Reply(200, openApiDocument())
      default: {
        const unknown: never = op
        throw new Error(`unknown operation ${JSON.stringify(unknown)}`)
      }
    }
  }

  async #reports(): Promise<PoolReport[]> {
    const reports = await this.#source.poolReports()
    this.#window.record(reports)
    return reports
  }

  /** One reading for the stats: recorded, and sent to every open stream as a `stats` event. */
  async #sample(): Promise<void> {
    if (this.#sampling) return
    this.#sampling = true
    try {
      const [pools, listeners] = await Promise.all([this.#reports(), this.#source.listenerReports()])
      this.#longWindow.record(pools)
      const reading = this.#stats.record(pools, listeners)
      if (this.#streams.size === 0) {
        this.#lastStats = undefined
        return
      }
      const event = this.#statsEvent(pools, listeners, reading)
      this.#lastStats = `event: stats\ndata: ${JSON.stringify(event)}\n\n`
      // A stream that stopped reading (a laptop asleep, a stuck proxy) gets no more readings until it
      // drains, and is closed once over STREAM_BACKLOG_BYTES: readings must not pile up in memory.
      for (const res of this.#streams) {
        if (res.writableLength > STREAM_BACKLOG_BYTES) res.destroy()
        else if (!res.writableNeedDrain) res.write(this.#lastStats)
      }
    } finally {
      this.#sampling = false
    }
  }

  #statsEvent(pools: readonly PoolReport[], listeners: readonly ListenerReport[], reading: Reading): StatsEvent {
    const overrides = this.#source.steering.overrides
    const none = { rps: null, errorRate: null, latencyMs: { p50: null, p95: null, p99: null } }
    return {
      type: 'stats',
      time: new Date(reading.atMs).toISOString(),
      intervalMs: STATS_INTERVAL_MS,
      point: { time: reading.atMs, ...reading.point },
      pools: pools.map((report) => {
        const view = poolView(report, overrides, this.#window)
        const histograms = report.servers.map((s) => this.#longWindow.window(report.name, s).duration)
        return {
          ...view,
          live: {
            ...(reading.pools.get(report.name) ?? none),
            inFlight: report.servers.reduce((n, s) => n + s.inFlight, 0),
            histogram: addHistograms(histograms).counts,
          },
          servers: view.servers.map((s, i) => ({
            ...s,
            live: {
              ...(reading.servers.get(`${report.name}\0${s.name}`) ?? none),
              histogram: (histograms[i] as { counts: readonly number[] }).counts,
            },
          })),
        }
      }),
      listeners: listenerViews(this.#source.config, listeners).map((l) => ({
        ...l,
        live: reading.listeners.get(l.name) ?? {
          rps: null,
          errorRate: null,
          classes: { '1xx': null, '2xx': null, '3xx': null, '4xx': null, '5xx': null },
        },
      })),
    }
  }

  /** A file of the dashboard: gzip when the client takes it, 304 when its copy is current. */
  #asset(req: IncomingMessage, res: ServerResponse, path: string): void {
    const asset = this.#assets.get(path)
    const headers = {
      'content-security-policy': DASHBOARD_CSP,
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-cache',
    }
    if (asset === undefined) {
      res.writeHead(503, { ...headers, 'content-type': 'text/html; charset=utf-8' })
      return void res.end(req.method === 'HEAD' ? undefined : NOT_BUILT_HTML)
    }
    if (req.headers['if-none-match'] === asset.etag) {
      res.writeHead(304, { ...headers, etag: asset.etag })
      return void res.end()
    }
    const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))
    const body = gzip ? asset.gzip : asset.body
    res.writeHead(200, {
      ...headers,
      'content-type': asset.type,
      'content-length': body.length,
      etag: asset.etag,
      vary: 'accept-encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }

  async #pools(): Promise<PoolView[]> {
    const overrides = this.#source.steering.overrides
    return (await this.#reports()).map((r) => poolView(r, overrides, this.#window))
  }

  async #pool(name: string): Promise<PoolView> {
    const found = (await this.#pools()).find((p) => p.name === name)
    if (found === undefined) throw new ChangeError(404, `no pool named "${name}"`)
    return found
  }

  async #serverView(pool: string, server: string): Promise<ServerView> {
    const found = (await this.#pool(pool)).servers.find((s) => s.name === server)
    if (found === undefined) throw new ChangeError(404, `pool "${pool}" has no server named "${server}"`)
    return found
  }

  /** Server-Sent Events: the kept history (after Last-Event-ID), then every event as it happens. */
  #events(req: IncomingMessage, res: ServerResponse): void {
    const log = this.#source.steering.events
    const last = Number(req.headers['last-event-id'] ?? 0)
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    })
    if (req.method === 'HEAD') return void res.end()
    const write = (e: SwitchyardEvent) => res.write(`id: ${e.id}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)
    res.write('retry: 2000\n\n')
    for (const e of log.since(Number.isFinite(last) ? last : 0)) write(e)
    if (this.#lastStats !== undefined) res.write(this.#lastStats)
    const unsubscribe = log.subscribe(write)
    const keepalive = setInterval(() => res.write(': keepalive\n\n'), SSE_KEEPALIVE_MS)
    this.#streams.add(res)
    res.once('close', () => {
      unsubscribe()
      clearInterval(keepalive)
      this.#streams.delete(res)
    })
  }

  /** The request carries the admin token (always, when there is none). */
  #authorized(req: IncomingMessage): boolean {
    const expected = this.#tokenDigest
    if (expected === undefined) return true
    const header = req.headers.authorization
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    return m !== null && tokenMatches(m[1] as string, expected)
  }
}

/** A body that fails its schema: 400 with each issue's path. */
class BodyError extends Error {
  constructor(
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
  ) {
    super(message)
  }
}

function parseBody<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value)
  if (result.success) return result.data
  const issues = result.error.issues.map((i) => ({ path: i.path.join('.') || '(body)', message: i.message }))
  throw new BodyError(`invalid body: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, issues)
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  if (type !== 'application/json') throw new BodyError('expected a JSON body (content-type: application/json)')
  const text = await readBody(req, MAX_JSON_BYTES)
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new BodyError(`the body is not JSON: ${(err as Error).message}`)
  }
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    req.on('data', (chunk: Buffer) => {
      size += chunk.length
      if (size > max) {
        reject(new BodyError(`the body is larger than ${max} bytes`))
        req.destroy()
        return
      }
      chunks.push(chunk)
    })
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    req.on('error', reject)
  })
}

function issuesReply(issues: readonly ConfigIssue[]): Reply {
  return new Reply(400, {
    error: `invalid configuration: ${issues.length} problem${issues.length === 1 ? '' : 's'}`,
    issues: issues.map((i) => ({ ...i, file: i.file ?? undefined })),
  })
}

function errorReply(err: unknown): Reply {
  if (err instanceof ChangeError) return new Reply(err.status, { error: err.message })
  if (err instanceof BodyError) return new Reply(400, { error: err.message, issues: err.issues })
  if (isSwitchyardError(err) && err.code === 'SWY_CONFIG_INVALID') {
    const issues = (err.details as { issues?: readonly ConfigIssue[] } | undefined)?.issues
    if (issues !== undefined) return issuesReply(issues)
    return new Reply(400, { error: err.message })
  }
  // A reload that the data plane refused (a listener that cannot bind, a worker that said no).
  return new Reply(409, { error: (err as Error).message })
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}) {
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
  send(res, status, 'application/json', `${JSON.stringify(body, null, 2)}\n`)
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}
