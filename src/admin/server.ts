/**
 * The admin HTTP server: the versioned API under /api/v1 (routes in api.ts, described by
 * `GET /api/v1/openapi.json`), Prometheus metrics, liveness, and the dashboard page.
 *
 *   GET /healthz      200 {"status":"ok"} while serving (open)
 *   GET /             the dashboard page (open: it holds no data, and asks for the token)
 *   GET /metrics      Prometheus text exposition
 *   GET /api/status   the summary of earlier versions (listeners, pools, workers)
 *   /api/v1/...       read and steer: pools, servers, listeners, config, reload, overrides, events
 *
 * It reads reports, snapshots and metrics, never pool internals, and changes things only through
 * Steering (server/steering.ts). Closed by default: the config allows it on a loopback address only,
 * unless `admin.token` guards every request but `/healthz` and `/` (401 otherwise).
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
import type { SwitchyardEvent } from '../server/events.js'
import { unmatched } from '../server/overrides.js'
import type { PoolReport } from '../server/reports.js'
import { ChangeError, type Steering } from '../server/steering.js'
import { matchRoute, type OperationId, openApiDocument, serverAddSchema, serverPatchSchema } from './api.js'
import { LatencyWindow, listenerViews, type PoolView, poolView, redact, SAMPLE_MS, type ServerView } from './views.js'

/** What the admin API reads and steers: one load balancer, or the supervisor of several worker processes. */
export interface AdminSource {
  /** Prometheus text exposition. */
  metricsText(): Promise<{ contentType: string; body: string }>
  /** The summary of `/api/status`; its `listeners` give each listener's address and in-flight count. */
  status(): unknown
  /** Every pool with its servers (summed over workers). */
  poolReports(): PoolReport[] | Promise<PoolReport[]>
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
  readonly #sampler: NodeJS.Timeout
  /** Open event streams, ended on close. */
  readonly #streams = new Set<ServerResponse>()

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
    // Readings for the latency window, also while nobody asks.
    this.#sampler = setInterval(() => void this.#reports().catch(() => {}), SAMPLE_MS * 2)
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
    if (path === '/healthz' || path === '/') {
      if (method !== 'GET' && method !== 'HEAD')
        return sendJson(res, 405, { error: 'method not allowed' }, { allow: 'GET' })
      if (path === '/healthz') return sendJson(res, 200, { status: 'ok' })
      return send(res, 200, 'text/html; charset=utf-8', INDEX_HTML)
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
      case 'listListeners': {
        const status = (await this.#source.status()) as {
          listeners: { name: string; address: string; inFlight: number }[]
        }
        return new Reply(200, { listeners: listenerViews(this.#source.config, status.listeners) })
      }
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

const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard admin</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;max-width:50rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}</style>
</head><body><h1>Switchyard admin</h1>
<ul><li><a href="/api/v1/pools">/api/v1/pools</a>: pools and servers</li>
<li><a href="/api/v1/openapi.json">/api/v1/openapi.json</a>: the API</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li><li><a href="/healthz">/healthz</a>: liveness</li></ul>
<h2>Pools</h2><form id="f" hidden><label>Admin token <input id="t" type="password" autocomplete="off"></label> <button>Use</button></form><pre id="s">loading…</pre>
<script>const T='switchyard-admin-token',s=document.getElementById('s'),f=document.getElementById('f');
async function r(){try{const k=sessionStorage.getItem(T),h=k?{authorization:'Bearer '+k}:{},q=await fetch('/api/v1/pools',{headers:h});
if(q.status===401){f.hidden=false;s.textContent='this admin API needs its token';return}f.hidden=true;s.textContent=JSON.stringify(await q.json(),null,2)}catch(e){s.textContent=String(e)}}
f.onsubmit=(e)=>{e.preventDefault();sessionStorage.setItem(T,document.getElementById('t').value);r()};r();setInterval(r,2000)</script>
</body></html>
`
