/**
 * The HTTP request path: route → pool → balancer → undici dispatch, with both bodies streamed and
 * backpressure both ways. One `Exchange` object per request holds its state and is itself the undici
 * dispatch handler, so the path allocates little beyond the header arrays. Client requests are HTTP/1.x
 * (node:http) or HTTP/2 (node:http2's compatibility API); upstream requests are HTTP/1.1.
 *
 * Failure contract: before the response head is sent, every failure becomes an error response whose
 * status comes from the error table (502/503/504/...). After it, the client connection is destroyed, so a
 * truncated body is never mistaken for a complete one. Each request is logged once, when it ends.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type Http2ServerRequest, type Http2ServerResponse, constants as h2constants } from 'node:http2'
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { SecureContextOptions } from 'node:tls'
import type { Dispatcher } from 'undici'
import type { KeySource, Outcome, PickContext } from '../balancer/index.js'
import type { ListenerConfig } from '../config/index.js'
import type { Backend } from '../core/backend.js'
import { channels } from '../core/channels.js'
import { classifyUpstreamError, errorBody, errorText, SwitchyardError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { TcpRuntime } from '../l4/tcp-proxy.js'
import type { Metrics, RouteMetrics } from '../metrics/index.js'
import type { QueuedRequest, Selection, UpstreamPool } from '../upstream/pool.js'
import { expectSocket, type SocketObserver } from '../upstream/socket-reuse.js'
import type { AccessEntry, AccessLog } from './access-log.js'
import {
  downstreamResponseHeaders,
  type ForwardingPolicy,
  isValidRequestId,
  joinCookies,
  type RequestHead,
  scanRequestHead,
  trailerPairs,
  upstreamRequestHeaders,
} from './headers.js'
import { hostWithoutPort, pathOf, type Router } from './router.js'

export interface RouteTarget {
  readonly pool: UpstreamPool
  readonly metrics: RouteMetrics
}

/** Immutable per-listener snapshot, swapped whole on reload. */
export interface ListenerRuntime {
  readonly config: ListenerConfig
  /** `https` for TLS listeners: what X-Forwarded-Proto and Forwarded say. */
  readonly proto: 'http' | 'https'
  /** Certificate and key, read when the snapshot was built (https only). */
  readonly tls: SecureContextOptions | undefined
  readonly router: Router<RouteTarget>
  /** The pool and metric cells of a `tcp` listener; undefined for HTTP listeners. */
  readonly tcp: TcpRuntime | undefined
  readonly forwarding: ForwardingPolicy
  readonly logger: Logger
  /** Undefined when the access log is off (by config, or because the logger drops `info`). */
  readonly accessLog: AccessLog | undefined
  readonly metrics: Metrics
  /** Metrics for requests that matched no route. */
  readonly unrouted: RouteMetrics
}

/** The listener's live state that the request path reports to. */
export interface RequestHooks {
  /** True once the listener drains: responses then carry `Connection: close`. */
  readonly draining: boolean
  begin(): void
  end(): void
}

export function proxyRequest(
  rt: ListenerRuntime,
  hooks: RequestHooks,
  request: IncomingMessage | Http2ServerRequest,
  response: ServerResponse | Http2ServerResponse,
  expectContinue: boolean,
): void {
  // node:http2's compatibility API mirrors node:http's request and response in every member used on
  // this path, except `res.destroyed` (see Exchange#clientGone) and what `h2` switches.
  const req = request as IncomingMessage
  const res = response as ServerResponse
  const h2 = req.httpVersionMajor === 2
  const idCfg = rt.config.requestId
  const head = scanRequestHead(req.rawHeaders, idCfg.header)
  // HTTP/2 frames the request body: it has one unless the HEADERS frame ended the stream.
  if (h2) {
    head.hasBody = !(request as Http2ServerRequest).stream.endAfterHeaders
    joinCookies(head.headers)
  }
  const ex = new Exchange(rt, hooks, req, res, head, h2)
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400 (checked here to answer with a code).
  // An HTTP/2 request names its host in :authority (or Host), which the head scan reads as the host.
  if (head.host === undefined && (h2 || req.httpVersionMinor >= 1))
    return ex.fail(new SwitchyardError('SWY_BAD_REQUEST', 'missing Host header'))
  // HTTP/2 CONNECT (tunnels, RFC 9113 §8.5) has no path to route on.
  if (h2 && req.method === 'CONNECT') return ex.fail(new SwitchyardError('SWY_NOT_IMPLEMENTED', 'CONNECT'))
  const url = req.url ?? '/'
  let path = url
  if (url.charCodeAt(0) !== 47 /* / */) {
    // absolute-form (RFC 9112 §3.2.2) is accepted and sent on as origin-form; anything else is refused.
    const origin = absoluteToOrigin(url)
    if (origin === undefined) return ex.fail(new SwitchyardError('SWY_BAD_REQUEST', 'unsupported request target'))
    path = origin
  }
  const method = req.method ?? 'GET'
  const target = rt.router.match({ method, host: hostWithoutPort(head.host), path: pathOf(path), source: req })
  if (!target) return ex.fail(new SwitchyardError('SWY_NO_ROUTE'))
  ex.target = target
  const pool = target.pool
  const keyOf = pool.keyOf
  // The request head is read for a key only by hashing and sticky pools.
  const src =
    keyOf === undefined && pool.sticky === undefined
      ? undefined
      : { clientIp: ex.clientIp, rawHeaders: req.rawHeaders, url: path }
  ex.pickCtx =
    keyOf === undefined || src === undefined
      ? { clientIp: ex.clientIp }
      : { clientIp: ex.clientIp, hashKey: keyOf(src) }
  ex.keySource = src
  ex.expectContinue = expectContinue
  ex.path = path
  ex.method = method
  ex.head = head
  ex.baseHeaders = head.headers.length
  // Circuit breaking: over the pool's in-flight cap, or with every server full, the request waits.
  if (!pool.admits() || ex.start() === 'full') ex.wait()
}

/** Methods that RFC 9110 §9.2.2 defines as idempotent. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

function absoluteToOrigin(url: string): string | undefined {
  if (!/^https?:\/\//i.test(url)) return undefined
  try {
    const u = new URL(url)
    return `${u.pathname}${u.search}`
  } catch {
    return undefined
  }
}

/** Resends of one request after lost keep-alive races, at most (see Exchange#lostKeepAliveRace). */
const MAX_RACE_RESENDS = 3

/** One request in flight. Implements undici's (raw-header) dispatch handler. */
class Exchange implements Dispatcher.DispatchHandler, SocketObserver, QueuedRequest {
  readonly rt: ListenerRuntime
  readonly hooks: RequestHooks
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly requestId: string
  readonly clientIp: string
  readonly startMs = performance.now()
  /** The request announces a body (chunked, or a non-zero Content-Length; HTTP/2: DATA frames follow). */
  readonly hasBody: boolean
  /** An HTTP/2 request: no hop-by-hop headers or status text in the response, no per-request byte count from the shared socket. */
  readonly h2: boolean
  /** HTTP/1: the client socket's bytesRead when the request began. HTTP/2: -1. */
  readonly #bytesReadAtStart: number
  /** HTTP/2: request body bytes seen so far. */
  #h2BytesIn = 0
  /** The response emitted `close` (its stream or socket is gone, or it completed). */
  #closed = false
  /**
   * The first body chunk, held until the parse that produced it ends: if the response completes in the
   * same read (the common case for small bodies), head and body leave in one `res.end(chunk)`.
   */
  #held: Buffer | undefined
  #bodyStarted = false
  target: RouteTarget | undefined
  backend: Backend | undefined
  /** The balancer was told that a request to `backend` started; it is told once that it ended. */
  upstreamStarted = false
  /** A sticky binding to send with the response (`Set-Cookie` value), when one is due. */
  setCookie: string | undefined
  // What each try sends, set once the request is routed (see proxyRequest and send()).
  path = ''
  method = 'GET'
  head: RequestHead | undefined
  /** Length of `head.headers` before the forwarding headers of a try were added to it. */
  baseHeaders = 0
  pickCtx: PickContext = { clientIp: '' }
  /** What a sticky pool reads the binding from; undefined for other pools. */
  keySource: KeySource | undefined
  /** The client sent `Expect: 100-continue`: answered once the request starts. */
  expectContinue = false
  /** Holds a place under the pool's `queue.maxInFlight` (see UpstreamPool#admitted). */
  #admitted = false
  /** Waiting in the pool's queue. */
  #queued = false
  /** The balancer's candidates for this request, which retries continue from (not for sticky pools). */
  candidates: IterableIterator<Backend> | undefined
  /** Servers tried so far, kept when the pool retries. */
  #tried: string[] | undefined
  /** Tries sent so far (resends after lost keep-alive races not included). */
  #tries = 0
  /** The server of the current try. */
  #selection: Selection | undefined
  /** The request body, read whole (see bufferBody); undefined when it streams or there is none. */
  #body: Buffer | undefined
  /** The socket the current try was written to, if undici published it (see socket-reuse.ts). */
  #socket: Socket | undefined
  /** The socket had carried requests before the current try's. */
  #socketReused = false
  /** `#socket.bytesRead` when the current try was written: more means a response began. */
  #readAtSend = 0
  /** Resends after lost keep-alive races. */
  #raceResends = 0
  /** The current try is a retry, holding a place in the pool's retry budget. */
  #inBudget = false
  #retryTimer: NodeJS.Timeout | undefined
  /** Set when a response with a retryable status is being discarded (its abort ends in onError). */
  #discarding: SwitchyardError | undefined
  #abort: ((err: Error) => void) | undefined
  #status = 0
  #bytesOut = 0
  #ttfbMs = -1
  #done = false
  #timer: NodeJS.Timeout | undefined
  /** undici's resume for the upstream socket, called on client `drain` after onData returned false. */
  #resume: (() => void) | undefined

  constructor(
    rt: ListenerRuntime,
    hooks: RequestHooks,
    req: IncomingMessage,
    res: ServerResponse,
    head: RequestHead,
    h2: boolean,
  ) {
    this.rt = rt
    this.hooks = hooks
    this.req = req
    this.res = res
    this.h2 = h2
    const incoming = rt.config.requestId.trustIncoming ? head.requestId : undefined
    this.requestId = isValidRequestId(incoming) ? incoming : randomUUID()
    const ip = req.socket.remoteAddress ?? ''
    this.clientIp = ip.startsWith('::ffff:') ? ip.slice(7) : ip
    this.hasBody = head.hasBody
    // HTTP/2 streams share the socket: their body bytes are counted by `h2Body` instead.
    this.#bytesReadAtStart = h2 ? -1 : req.socket.bytesRead
    hooks.begin()
    res.once('close', this.#onClientClose)
    const totalMs = rt.config.timeouts.totalMs
    if (totalMs > 0) this.#timer = setTimeout(this.#onTotalTimeout, totalMs)
  }

  /**
   * Picks a server and sends the first try: `full` when every server that could take the request is
   * full (it must wait), `ended` when there is no server to take it (answered 503 SWY_NO_SERVER).
   */
  start(): 'started' | 'full' | 'ended' {
    const pool = this.target!.pool
    const ctx = this.pickCtx
    let selection: Selection | undefined
    if (pool.sticky === undefined || this.keySource === undefined) {
      this.candidates = pool.candidates(ctx)
      selection = pool.take(this.candidates, ctx)
    } else {
      const sticky = pool.selectSticky(ctx, this.keySource)
      if (sticky === 'full') return 'full'
      selection = sticky?.selection
      this.setCookie = sticky?.setCookie
    }
    if (selection === undefined) {
      if (pool.saturated()) return 'full'
      this.fail(new SwitchyardError('SWY_NO_SERVER'))
      return 'ended'
    }
    pool.admitted()
    this.#admitted = true
    if (this.expectContinue) this.res.writeContinue()
    // A small body with a known length is read whole first, so that a failed try can send it again.
    const length = this.head!.contentLength
    if (length > 0 && length <= pool.config.retries.bufferBytes) this.bufferBody(selection)
    else this.send(selection)
    return 'started'
  }

  /** Waits in the pool's queue, or is answered 503 SWY_OVERLOADED when it is full. */
  wait(): void {
    if (!this.target!.pool.enqueue(this)) return this.fail(new SwitchyardError('SWY_OVERLOADED', 'the queue is full'))
    this.#queued = true
  }

  // QueuedRequest: the pool calls these.
  get sticky(): boolean {
    return this.keySource !== undefined && this.target?.pool.sticky !== undefined
  }

  resume(): boolean {
    if (this.#done) return true
    const started = this.start() !== 'full'
    if (started) this.#queued = false
    return started
  }

  expire(): void {
    this.#queued = false
    const waitedMs = this.target!.pool.config.queue.timeoutMs
    this.fail(new SwitchyardError('SWY_OVERLOADED', `waited ${waitedMs} ms in the queue`))
  }

  /**
   * Reads the whole request body (its Content-Length is at most `retries.bufferBytes`), then sends the
   * first try. The body can then be sent again by any retry.
   */
  bufferBody(selection: Selection): void {
    const chunks: Buffer[] = []
    const req = this.req
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.once('end', () => {
      if (this.#done) return
      this.#body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      this.#h2BytesIn = this.#body.length
      this.send(selection)
    })
    // An aborted upload ends the exchange through the response's `close` (#onClientClose).
    req.once('error', () => {})
  }

  /** Sends one try to `selection`'s server: the first, a retry, or (`resend`) the same try again. */
  send(selection: Selection, resend = false): void {
    const rt = this.rt
    const pool = this.target!.pool
    const poolConfig = pool.config
    const head = this.head!
    this.backend = selection.backend
    this.#selection = selection
    this.#socket = undefined
    if (resend) this.#raceResends++
    else if (this.#tries++ === 0) pool.requestBegan()
    if (poolConfig.retries.attempts > 0 && !resend) {
      this.#tried ??= []
      this.#tried.push(selection.backend.id)
    }
    // The forwarding headers depend on the server (Host, without preserveHost): rebuilt for each try.
    head.headers.length = this.baseHeaders
    const headers = upstreamRequestHeaders(
      head,
      {
        clientIp: this.clientIp,
        proto: rt.proto,
        requestId: this.requestId,
        requestIdHeader: rt.config.requestId.header,
        upstreamHost: poolConfig.preserveHost ? undefined : selection.hostHeader,
      },
      rt.forwarding,
    )
    selection.counter.value++
    pool.started(selection)
    this.upstreamStarted = true
    selection.dispatcher.dispatch(
      {
        path: this.path,
        method: this.method,
        headers,
        // undici's dispatch takes async iterables as bodies (core/request.js) although its types omit them.
        body: this.hasBody ? (this.#body ?? (this.h2 ? (this.h2Body() as unknown as Readable) : this.req)) : null,
        headersTimeout: poolConfig.retries.perTryTimeoutMs || poolConfig.timeouts.responseHeadersMs,
        bodyTimeout: poolConfig.timeouts.idleMs,
      },
      this,
    )
  }

  /**
   * Whether a failed try may be retried: tries left, a kind of failure the pool retries (a connect
   * failure whatever the request, since nothing reached the server and the body is still unread; a
   * reset or a status only for a request without a body, and idempotent unless `retryNonIdempotent`),
   * nothing sent to the client yet, and room in the retry budget.
   */
  #mayRetry(err: SwitchyardError, status: number): boolean {
    const pool = this.target?.pool
    if (pool === undefined || this.res.headersSent) return false
    const r = pool.config.retries
    if (this.#tries > r.attempts) return false
    let kind: boolean
    if (err.code === 'SWY_UPSTREAM_CONNECT' || err.code === 'SWY_UPSTREAM_CONNECT_TIMEOUT') kind = r.onConnectFailure
    else {
      const safe = this.#replayable() && (r.retryNonIdempotent || IDEMPOTENT.has(this.method))
      if (!safe) kind = false
      else if (status > 0) kind = r.statuses.includes(status)
      else if (err.code === 'SWY_UPSTREAM_RESET') kind = r.onReset
      else kind = err.code === 'SWY_UPSTREAM_TIMEOUT' && r.onTimeout
    }
    return kind && pool.tryRetry()
  }

  /** The request can be sent again: it has no body, or its body was buffered. */
  #replayable(): boolean {
    return !this.hasBody || this.#body !== undefined
  }

  /**
   * The try failed because the server closed a reused idle connection just as the request was written
   * to it: undici's connection was closed or reset, the socket had carried an earlier request, and not
   * one byte of a response came back on it after this request was written. A server closes an idle
   * connection only when no request is in it, and an application that reads a request and then closes
   * without a byte of an answer is the one case this cannot tell apart (see docs/availability.md).
   */
  #lostKeepAliveRace(err: SwitchyardError): boolean {
    const socket = this.#socket
    return (
      err.code === 'SWY_UPSTREAM_RESET' &&
      socket !== undefined &&
      this.#socketReused &&
      socket.bytesRead === this.#readAtSend &&
      this.#raceResends < MAX_RACE_RESENDS &&
      !this.res.headersSent &&
      this.#replayable() &&
      this.target!.pool.config.retries.keepAliveRace
    )
  }

  onSocket(socket: Socket, uses: number): void {
    this.#socket = socket
    this.#socketReused = uses > 0
    this.#readAtSend = socket.bytesRead
  }

  /** Ends the failed try (balancer and outlier feedback) and sends the next after a backoff. */
  #retry(err: SwitchyardError): void {
    const pool = this.target!.pool
    this.#endTry('failure')
    this.#inBudget = true
    const r = pool.config.retries
    // A server that could not be reached says nothing about the others: the next one is tried at once.
    // After a reset or an error status, waits grow with full jitter: a random share of
    // base × 2^(retry − 1), at most max.
    const connectFailure = err.code === 'SWY_UPSTREAM_CONNECT' || err.code === 'SWY_UPSTREAM_CONNECT_TIMEOUT'
    const ceiling = connectFailure ? 0 : Math.min(r.backoffMaxMs, r.backoffBaseMs * 2 ** (this.#tries - 1))
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined
      if (this.#done) return
      // Sticky pools kept no candidate list: a fresh pick, minus the servers tried.
      const next = pool.take(this.candidates ?? pool.candidates(this.pickCtx), this.pickCtx, this.#tried)
      if (next === undefined) return this.fail(err)
      this.#abort = undefined
      this.send(next)
    }, Math.random() * ceiling)
  }

  /** Reports the end of the current try to the pool (balancers, outlier detection, retry budget). */
  #endTry(outcome: Outcome): void {
    if (this.#inBudget && !this.upstreamStarted) {
      // A retry that never went out (no server left, or the client left during the backoff).
      this.#inBudget = false
      this.target!.pool.retryEnded()
    }
    if (!this.upstreamStarted) return
    this.upstreamStarted = false
    const latency = this.#ttfbMs >= 0 ? this.#ttfbMs : performance.now() - this.startMs
    this.target!.pool.ended(this.#selection!, outcome, latency)
    if (this.#inBudget) {
      this.#inBudget = false
      this.target!.pool.retryEnded()
    }
  }

  /** The HTTP/2 request body, counted as undici reads it. */
  async *h2Body(): AsyncGenerator<Buffer> {
    for await (const chunk of this.req as AsyncIterable<Buffer>) {
      this.#h2BytesIn += chunk.length
      yield chunk
    }
  }

  // --- undici handler -------------------------------------------------------------------------

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#done) abort(new SwitchyardError('SWY_CLIENT_ABORTED'))
    else expectSocket(this)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true // interim responses are not relayed
    if (statusCode >= 500 && this.target?.pool.config.retries.statuses.includes(statusCode)) {
      const err = new SwitchyardError('SWY_UPSTREAM_STATUS', `the upstream server answered ${statusCode}`)
      if (this.#mayRetry(err, statusCode)) {
        // Discard this response: the abort ends the try in onError, which retries.
        this.#discarding = err
        this.#abort?.(err)
        return false
      }
    }
    this.#status = statusCode
    this.#ttfbMs = performance.now() - this.startMs
    this.#resume = resume
    const extra: string[] = []
    if (this.rt.config.requestId.echo) extra.push(this.rt.config.requestId.header, this.requestId)
    if (this.setCookie !== undefined) extra.push('set-cookie', this.setCookie)
    const sticky = this.target?.pool.sticky
    if (sticky?.learns) sticky.learn(this.backend!.id, rawHeaders)
    if (this.hooks.draining && !this.h2) extra.push('connection', 'close')
    try {
      const headers = downstreamResponseHeaders(rawHeaders, extra)
      // HTTP/2 has no reason phrase (RFC 9113 §8.3.2).
      if (statusText && !this.h2) this.res.writeHead(statusCode, statusText, headers)
      else this.res.writeHead(statusCode, headers)
    } catch (err) {
      this.#abort?.(new SwitchyardError('SWY_UPSTREAM_PROTOCOL', 'invalid response header', { cause: err }))
      return false
    }
    return true
  }

  onData(chunk: Buffer): boolean {
    this.#bytesOut += chunk.length
    if (!this.#bodyStarted) {
      this.#bodyStarted = true
      this.#held = chunk
      queueMicrotask(this.#flushHeld)
      return true
    }
    if (this.#held !== undefined) this.#flushHeld()
    if (this.res.write(chunk)) return true
    this.res.once('drain', this.#resume!)
    return false
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    if (trailers && trailers.length > 0) this.res.addTrailers(trailerPairs(trailers as Buffer[]))
    const held = this.#held
    this.#held = undefined
    this.res.end(held)
    this.#finish(this.#status, undefined)
  }

  /** Writes the held first chunk, if the response did not complete in the same parse. */
  readonly #flushHeld = (): void => {
    const held = this.#held
    if (held === undefined) return
    this.#held = undefined
    if (!this.#done && !this.#clientGone()) this.res.write(held)
  }

  /** The client can no longer be written to. (The HTTP/2 compatibility response has no `destroyed`.) */
  #clientGone(): boolean {
    return this.#closed || this.res.destroyed === true
  }

  onError(err: Error): void {
    if (this.#done) return
    const discarded = this.#discarding
    if (discarded !== undefined) {
      this.#discarding = undefined
      return this.#retry(discarded)
    }
    // The client went away (possibly mid-upload, which undici reports as a body stream error): not an
    // upstream failure, and nobody is left to answer.
    const clientGone = this.#clientGone() || (this.req.destroyed && !this.req.complete)
    const swy = clientGone
      ? new SwitchyardError('SWY_CLIENT_ABORTED', undefined, { cause: err })
      : classifyUpstreamError(err)
    if (swy.code === 'SWY_CLIENT_ABORTED') return this.#finish(499, swy)
    if (this.#lostKeepAliveRace(swy)) {
      // Nothing reached the application: the same server, at once, on another connection. Not a
      // failure of the server (outlier detection and balancers count it as a success).
      this.#endTry('success')
      if (channels.keepAliveRace.hasSubscribers)
        channels.keepAliveRace.publish({
          requestId: this.requestId,
          pool: this.target?.pool.name,
          server: this.backend?.id,
        })
      this.#abort = undefined
      return this.send(this.#selection!, true)
    }
    if (this.#mayRetry(swy, 0)) return this.#retry(swy)
    if (channels.upstreamError.hasSubscribers)
      channels.upstreamError.publish({
        requestId: this.requestId,
        pool: this.target?.pool.name,
        server: this.backend?.id,
        code: swy.code,
        error: err,
      })
    this.fail(swy)
  }

  // --- outcomes ---------------------------------------------------------------------------------

  /** Answers with the error's status if nothing was sent yet; otherwise aborts the client connection. */
  fail(err: SwitchyardError): void {
    if (this.#done) return
    const res = this.res
    if (res.headersSent || this.#clientGone()) {
      // HTTP/2: RST_STREAM with INTERNAL_ERROR; a plain destroy() would reset with NO_ERROR, which a
      // client may take for a complete response.
      if (this.h2) (res as unknown as Http2ServerResponse).stream.close(h2constants.NGHTTP2_INTERNAL_ERROR)
      else res.destroy()
      return this.#finish(this.#status || err.status, err)
    }
    const accept = this.req.headers.accept
    const plain = accept?.includes('text/plain') === true && !accept.includes('json')
    const body = plain ? errorText(err, this.requestId) : errorBody(err, this.requestId)
    const headers: string[] = [
      'content-type',
      plain ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length',
      String(Buffer.byteLength(body)),
      'cache-control',
      'no-store',
    ]
    if (this.rt.config.requestId.echo) headers.push(this.rt.config.requestId.header, this.requestId)
    // Close when a request body is left unread, rather than read and discard an unbounded upload.
    const bodyPending = this.hasBody && !this.req.complete
    if (!this.h2 && (this.hooks.draining || bodyPending || err.code === 'SWY_BAD_REQUEST'))
      headers.push('connection', 'close')
    res.writeHead(err.status, headers)
    res.end(this.req.method === 'HEAD' ? undefined : body)
    this.#finish(err.status, err)
  }

  readonly #onClientClose = (): void => {
    this.#closed = true
    // HTTP/2: a reset stream reads as finished; only our own end() (which sets #done) means done.
    if (this.#done || (!this.h2 && this.res.writableFinished)) return
    const err = new SwitchyardError('SWY_CLIENT_ABORTED')
    if (this.#abort) this.#abort(err)
    else this.#finish(499, err)
  }

  readonly #onTotalTimeout = (): void => {
    this.#timer = undefined
    const err = new SwitchyardError('SWY_TIMEOUT')
    if (this.#abort) this.#abort(err)
    else this.fail(err)
  }

  #finish(status: number, err: SwitchyardError | undefined): void {
    if (this.#done) return
    this.#done = true
    if (this.#timer) clearTimeout(this.#timer)
    this.hooks.end()
    const durationMs = performance.now() - this.startMs
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    if (this.#queued) this.target!.pool.dequeue(this)
    if (this.#admitted) this.target!.pool.requestEnded()
    // An upstream error or an upstream 5xx is a failure for the balancer; a client abort is not.
    this.#endTry((err === undefined ? status >= 500 : err.source === 'upstream') ? 'failure' : 'success')
    const rt = this.rt
    const m = this.target?.metrics ?? rt.unrouted
    const cls = (status / 100) | 0
    if (cls >= 1 && cls <= 5) m.byClass[cls - 1]!.value++
    m.duration.observe(durationMs / 1000)
    const poolName = this.target?.pool.name
    if (err) rt.metrics.errors.labels(poolName ?? '', err.code).inc()
    if (channels.requestEnd.hasSubscribers)
      channels.requestEnd.publish({
        requestId: this.requestId,
        listener: rt.config.name,
        pool: poolName,
        server: this.backend?.id,
        status,
        code: err?.code,
        durationMs,
      })
    const serverError = err !== undefined && err.status >= 500
    if (rt.accessLog === undefined && !serverError) return
    const entry: AccessEntry = {
      requestId: this.requestId,
      listener: rt.config.name,
      client: this.clientIp,
      method: this.req.method ?? '',
      url: this.req.url ?? '',
      status,
      pool: poolName,
      upstream: this.backend?.id,
      bytesIn: this.h2 ? this.#h2BytesIn : this.req.socket ? this.req.socket.bytesRead - this.#bytesReadAtStart : 0,
      bytesOut: this.#bytesOut,
      ttfbMs: this.#ttfbMs,
      durationMs,
      code: err?.code,
      error: err?.message,
      aborted: err !== undefined && this.res.headersSent && this.#status !== 0,
      h2: this.h2,
    }
    // Server-side failures are warnings, through pino, whether or not the access log is on; lines
    // already batched go first, to keep the order.
    if (serverError) {
      rt.accessLog?.flush()
      rt.logger.warn({
        type: 'access',
        ...entry,
        ttfbMs: entry.ttfbMs >= 0 ? round(entry.ttfbMs) : undefined,
        durationMs: round(durationMs),
      })
    } else rt.accessLog!.write(entry)
  }
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}
