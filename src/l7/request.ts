/**
 * One HTTP request from its head to its end: the checks on its head, the `onRequest` phase, routing,
 * the `onRoute` phase, then an Exchange (exchange.ts) that proxies it to the pool. Requests answered
 * before that (a bad head, no route, a redirect or a filter's own answer) never build an Exchange.
 *
 * Lifecycle: a request ends exactly once (`finish`), on the first of: its response completing, its
 * client going away (see ClientSide#watch), the listener's `timeouts.total`, or an error. Whatever is
 * running then (a filter's promise, a queued admission, a try upstream) is told, and releases what it
 * holds. Each request is counted, published on `switchyard:request:end` and logged once, when it ends.
 */
import { managedHeader } from '../config/schema.js'
import { SwitchyardError } from '../core/errors.js'
import { EXPLAIN_HEADER, RequestExplain } from '../explain/index.js'
import { callOnRequest, callOnRoute, type PhaseOutcome, runPhase } from '../filters/chain.js'
import type { FilterContext, Reject, RequestView, RouteView, UpstreamDraft } from '../filters/types.js'
import { isGrpcContentType, parseGrpcTimeout } from '../http2/grpc.js'
import type { HttpSnapshot } from '../listeners/snapshot.js'
import type { RequestTrace } from '../tracing/index.js'
import type { TunnelSet } from '../tunnel/index.js'
import type { ClientSide, Protocol } from './client.js'
import { clientCertificateHeader } from './client-cert.js'
import { errorResponse, grpcErrorResponse, type OwnResponse, verdictResponse } from './error-response.js'
import { Exchange } from './exchange.js'
import { removeHeaders } from './head-draft.js'
import {
  isValidHost,
  isValidRequestId,
  joinCookies,
  type RequestHead,
  resolveClientIp,
  scanRequestHead,
  transferCodingProblem,
} from './headers.js'
import { normalizeUrl } from './path.js'
import { recordEnd } from './request-end.js'
import { newRequestId } from './request-id.js'
import { hostWithoutPort, pathOf } from './router.js'
import { type SlowClientPolicy, unwatchSlow, type Watched, watchSlow } from './slow-clients.js'
import type { PoolTarget, RouteTarget } from './target.js'

/** The listener's live state that the request path reports to. */
export interface RequestHooks {
  /** True once the listener drains: responses then carry `Connection: close`. */
  readonly draining: boolean
  /** The listener's open tunnels (upgraded requests), which its drain closes gradually. */
  readonly tunnels: TunnelSet
  begin(): void
  end(): void
}

/** The longest a Node timer waits (2^31 − 1 ms, about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

/** An `Upgrade` value that names only HTTP/2 (RFC 7540 §3.2, removed by RFC 9113): never tunnelled. */
const H2C_ONLY = /^[ \t]*h2c[ \t]*$/i

/** What the exchange adds to a request's end: the upstream side of it. */
export interface UpstreamFacts {
  readonly server: string | undefined
  /** Milliseconds to the upstream response head, or -1 when there was none. */
  readonly ttfbMs: number
  readonly bytesOut: number
  /** Bytes from the client, when the client side no longer counts them (a tunnel's); else the client side's count. */
  readonly bytesIn?: number
  /** Tries after the first: retries, and resends after a lost keep-alive race. */
  readonly retries?: number
}

const NO_UPSTREAM: UpstreamFacts = { server: undefined, ttfbMs: -1, bytesOut: 0 }

export interface HandleOptions {
  /**
   * Takes the request once it is routed and its `onRequest`/`onRoute` phases ran, instead of an
   * Exchange: the config test kit (testkit/) records the decision there. The request is left as it is
   * (not answered, not finished): the callee owns it. Default: an Exchange proxies it.
   */
  readonly onProxy?: ((inbound: Inbound) => void) | undefined
}

/** Handles one request from a listener. */
export function handleRequest(
  rt: HttpSnapshot,
  hooks: RequestHooks,
  client: ClientSide,
  expectContinue: boolean,
  options?: HandleOptions,
): void {
  new Inbound(rt, hooks, client, expectContinue, options).run()
}

export class Inbound implements RequestView, Watched {
  readonly rt: HttpSnapshot
  readonly hooks: RequestHooks
  readonly client: ClientSide
  readonly head: RequestHead
  readonly requestId: string
  readonly peerIp: string
  readonly clientIp: string
  readonly startMs = performance.now()
  readonly expectContinue: boolean
  /** The request announces a body (chunked, a non-zero Content-Length, or HTTP/2 DATA frames). */
  readonly hasBody: boolean
  /**
   * The protocols the client asked to switch to, when the request may become a tunnel: an HTTP/1.1
   * `Upgrade` with no body, on an engine that can hand its connection over (ClientSide#canSwitch),
   * other than `h2c`. Undefined for every other request: an `Upgrade` it sent is dropped (hop-by-hop).
   */
  readonly upgrade: string | undefined
  /**
   * A gRPC call: HTTP/2 with an `application/grpc` content type. Its deadline (`grpc-timeout`) bounds
   * it as `timeouts.total` does, and Switchyard's own errors are answered in gRPC form.
   */
  readonly grpc: boolean
  /** The request's W3C trace (tracing on); its `traceparent` is what each try sends. */
  readonly trace: RequestTrace | undefined
  /** The origin-form target: path and query. */
  url = '/'
  /** What is sent upstream: path and query (rewrites change it), and a Host header that replaces the default. */
  upstreamPath = '/'
  upstreamHost: string | undefined
  /** Request headers whose value names `{server}`: added to each try for its server. */
  perTryHeaders: [name: string, template: string][] | undefined
  /** The route that matched; undefined before routing, or when none did. */
  target: RouteTarget | undefined
  /** The pool that serves the request: the route's, or one chosen with `usePool`. */
  poolTarget: PoolTarget | undefined
  /** The server of the latest try (set by the exchange). */
  server: string | undefined
  /** The request asked for an explanation, and its listener honours it (explain/); else undefined. */
  readonly explain: RequestExplain | undefined
  #context: PipelineContext | undefined
  readonly #onProxy: HandleOptions['onProxy']
  #exchange: Exchange | undefined
  #done = false
  #timer: NodeJS.Timeout | undefined
  /** `#timer` is the gRPC deadline (shorter than `timeouts.total`). */
  #deadline = false
  /** The slow-client watch's slot (l7/slow-clients.ts). */
  slowSlot = -1

  constructor(
    rt: HttpSnapshot,
    hooks: RequestHooks,
    client: ClientSide,
    expectContinue: boolean,
    options?: HandleOptions,
  ) {
    this.rt = rt
    this.#onProxy = options?.onProxy
    this.hooks = hooks
    this.client = client
    this.expectContinue = expectContinue
    const idCfg = rt.config.requestId
    const head = scanRequestHead(client.rawHeaders, idCfg.header, client.headersChecked)
    if (client.h2HasBody !== undefined) {
      head.hasBody = client.h2HasBody
      joinCookies(head.headers)
    }
    const clientAuth = rt.config.tls?.clientAuth
    if (clientAuth !== undefined) {
      // Only Switchyard says which certificate a client showed: a client's own such header goes.
      const at = removeHeaders(head.headers, clientAuth.forwardHeader)
      if (at >= 0 && at < head.checked) head.checked = at
      const cert = clientCertificateHeader(client.connection)
      if (cert !== undefined) head.headers.push(clientAuth.forwardHeader, cert)
    }
    this.head = head
    this.trace = rt.tracing === undefined ? undefined : rt.tracing.begin(head, this.startMs)
    this.hasBody = head.hasBody
    const upgrade = head.upgrade
    // An HTTP/1.0 request's Upgrade is ignored (RFC 9110 §7.8).
    // HTTP/2: an extended CONNECT names its protocol in `:protocol` (RFC 8441).
    this.upgrade =
      client.protocol === 'h2'
        ? client.connectProtocol
        : upgrade !== undefined &&
            client.canSwitch &&
            client.protocol === 'http/1.1' &&
            !head.hasBody &&
            !H2C_ONLY.test(upgrade)
          ? upgrade
          : undefined
    const incoming = idCfg.trustIncoming ? head.requestId : undefined
    this.requestId = isValidRequestId(incoming) ? incoming : newRequestId()
    this.peerIp = client.peerIp
    this.clientIp = resolveClientIp(this.peerIp, head.xff, rt.forwarding)
    // Off (no `explain` on the listener): the head is not read for it. On: its headers are read, and removed.
    const explain = rt.explain
    this.explain =
      explain === undefined ? undefined : RequestExplain.of(explain.check(client.rawHeaders, head, this.clientIp))
    hooks.begin()
    client.watch(() => this.#onClientGone())
    watchSlow(this)
    const totalMs = rt.config.timeouts.totalMs
    this.grpc = client.protocol === 'h2' && isGrpcContentType(this.header('content-type'))
    // A gRPC deadline (0: already past) bounds the call when it is shorter; Node's timers go up to
    // about 24.8 days, and a longer deadline is, in effect, none.
    const deadlineMs = this.grpc ? parseGrpcTimeout(this.header('grpc-timeout')) : undefined
    if (deadlineMs !== undefined && deadlineMs <= MAX_TIMER_MS && (totalMs === 0 || deadlineMs < totalMs)) {
      this.#deadline = true
      this.#timer = setTimeout(() => this.#onTotalTimeout(), deadlineMs)
    } else if (totalMs > 0) this.#timer = setTimeout(() => this.#onTotalTimeout(), totalMs)
  }

  // --- RequestView ------------------------------------------------------------------------------

  get method(): string {
    return this.client.method
  }

  get path(): string {
    return pathOf(this.url)
  }

  get query(): string {
    const q = this.url.indexOf('?')
    return q < 0 ? '' : this.url.slice(q)
  }

  get host(): string | undefined {
    return this.head.host
  }

  get hostname(): string {
    return hostWithoutPort(this.head.host)
  }

  get scheme(): 'http' | 'https' {
    return this.rt.proto
  }

  get protocol(): Protocol {
    return this.client.protocol
  }

  get rawHeaders(): readonly string[] {
    return this.client.rawHeaders
  }

  header(name: string): string | undefined {
    const raw = this.client.rawHeaders
    const lower = name.toLowerCase()
    for (let i = 0; i < raw.length; i += 2) {
      const n = raw[i] as string
      if (n.length === lower.length && n.toLowerCase() === lower) return raw[i + 1]
    }
    return undefined
  }

  get done(): boolean {
    return this.#done
  }

  /** The filter context of this request, made when a filter first needs it. */
  context(): PipelineContext {
    this.#context ??= new PipelineContext(this)
    return this.#context
  }

  // --- the steps before the exchange --------------------------------------------------------------

  run(): void {
    const client = this.client
    const h2 = client.protocol === 'h2'
    if (!h2) {
      const problem = http1HeadProblem(client, this.head)
      if (problem !== undefined) return this.fail(problem)
    }
    const limits = this.rt.config.limits
    if (client.url.length > limits.maxUrlBytes)
      return this.fail(new SwitchyardError('SWY_URL_TOO_LONG', `a request target of ${client.url.length} bytes`))
    if (client.rawHeaders.length > 2 * limits.maxHeaderCount)
      return this.fail(new SwitchyardError('SWY_HEADERS_TOO_LARGE', `more than ${limits.maxHeaderCount} header fields`))
    // RFC 9112 §3.2: an HTTP/1.1 request without Host is answered 400 (checked here to answer with a code).
    // An HTTP/2 request names its host in :authority (or Host), which the head scan reads as the host.
    if (this.head.host === undefined && client.protocol !== 'http/1.0')
      return this.fail(new SwitchyardError('SWY_BAD_REQUEST', 'missing Host header'))
    // HTTP/2 CONNECT (tunnels, RFC 9113 §8.5) has no path to route on.
    if (h2 && client.method === 'CONNECT') return this.fail(new SwitchyardError('SWY_NOT_IMPLEMENTED', 'CONNECT'))
    const url = client.url
    if (url.charCodeAt(0) === 47 /* / */) this.url = url
    else {
      // absolute-form (RFC 9112 §3.2.2) is accepted and sent on as origin-form; anything else is refused.
      // Its host wins over the Host header, for routing and for what is forwarded.
      const target = absoluteTarget(url)
      if (target === undefined) return this.fail(new SwitchyardError('SWY_BAD_REQUEST', 'unsupported request target'))
      this.url = target.origin
      if (!isValidHost(target.authority))
        return this.fail(new SwitchyardError('SWY_BAD_REQUEST', 'an invalid host in the request target'))
      this.head.host = target.authority
    }
    const normalized = normalizeUrl(this.url, this.rt.config.paths)
    if (normalized.kind === 'reject') return this.fail(new SwitchyardError('SWY_BAD_REQUEST', normalized.reason))
    this.url = normalized.url
    this.upstreamPath = this.url
    // An ACME CA validating a certificate this configuration orders: answered before any rule.
    const challenges = this.rt.acmeChallenges
    if (challenges !== undefined && (client.method === 'GET' || client.method === 'HEAD')) {
      const answer = challenges.answer(this.url)
      if (answer !== undefined)
        return this.respond({
          status: 200,
          headers: ['content-type', 'text/plain', 'content-length', String(Buffer.byteLength(answer))],
          body: answer,
        })
    }
    const filters = this.rt.pipeline.onRequest
    if (filters.length === 0) return this.#route()
    const call = this.explain === undefined ? callOnRequest : this.explain.onRequest
    this.#afterPhase(runPhase(filters, call, this.context(), undefined), 'request')
  }

  /** Carries on after a phase, now or when its promise settles. */
  #afterPhase(outcome: PhaseOutcome | Promise<PhaseOutcome>, phase: 'request' | 'route'): void {
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => this.#afterPhase(o, phase),
        (err: unknown) => this.filterFailed('(pipeline)', err),
      )
      return
    }
    if (this.#done) return
    switch (outcome.kind) {
      case 'continue':
        return phase === 'request' ? this.#route() : this.#proxy()
      case 'respond':
        this.explain?.answered()
        return this.respond(verdictResponse(outcome))
      case 'reject':
        this.explain?.answered()
        return this.reject(outcome)
      case 'error':
        return this.filterFailed(outcome.filter, outcome.error)
      default: {
        const unknown: never = outcome
        throw new Error(`unknown phase outcome ${JSON.stringify(unknown)}`)
      }
    }
  }

  #route(): void {
    const target = this.rt.router.match({
      method: this.method,
      host: this.hostname,
      path: this.path,
      rawHeaders: this.client.rawHeaders,
    })
    if (target === undefined) return this.fail(new SwitchyardError('SWY_NO_ROUTE'))
    this.target = target
    const maxBody = target.maxBodyBytes
    if (maxBody > 0 && this.head.contentLength > maxBody)
      return this.fail(
        new SwitchyardError('SWY_BODY_TOO_LARGE', `a Content-Length of ${this.head.contentLength} bytes`),
      )
    this.poolTarget ??= target.pool
    const filters = target.pipeline.onRoute
    if (filters.length === 0) return this.#proxy()
    const call = this.explain === undefined ? callOnRoute : this.explain.onRoute
    this.#afterPhase(runPhase(filters, call, this.context(), undefined), 'route')
  }

  #proxy(): void {
    const poolTarget = this.poolTarget
    const target = this.target
    if (poolTarget === undefined || target === undefined)
      return this.fail(new SwitchyardError('SWY_INTERNAL', 'the route has no pool and no rule answered'))
    if (this.#onProxy !== undefined) return this.#onProxy(this)
    const exchange = new Exchange(this, target, poolTarget)
    this.#exchange = exchange
    exchange.start()
  }

  // --- outcomes ---------------------------------------------------------------------------------

  /** A filter threw or rejected: 500 SWY_FILTER_ERROR, naming it. */
  filterFailed(filter: string, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error)
    this.fail(new SwitchyardError('SWY_FILTER_ERROR', `filter ${filter} failed: ${message}`, { cause: error }))
  }

  /** Answers with a response of our own (a filter's, or an error), then ends the request. */
  respond(own: OwnResponse, err?: SwitchyardError, upstream: UpstreamFacts = NO_UPSTREAM): void {
    if (this.#done) return
    const client = this.client
    const headers = own.headers
    const idCfg = this.rt.config.requestId
    if (idCfg.echo) headers.push(idCfg.header, this.requestId)
    if (this.explain !== undefined) headers.push(EXPLAIN_HEADER, this.explain.header(this, err?.code))
    // Close when a request body is left unread, rather than read and discard an unbounded upload, and
    // after a request refused for its own faults (its framing may be what is wrong).
    const bodyPending = this.hasBody && !client.bodyComplete
    if (client.protocol !== 'h2' && (this.hooks.draining || bodyPending || err?.source === 'downstream'))
      headers.push('connection', 'close')
    client.writeHead(own.status, undefined, headers)
    client.end(this.method === 'HEAD' ? undefined : (own.body as Buffer | string), own.trailers)
    this.finish(own.status, err, upstream)
  }

  /** Answers with the error's status if nothing was sent yet; otherwise aborts the client's response. */
  /** A filter's refusal: the code's error response with the filter's headers, or a closed connection. */
  reject(verdict: Reject, upstream: UpstreamFacts = NO_UPSTREAM): void {
    if (this.#done) return
    const err = new SwitchyardError(verdict.code, verdict.message)
    const client = this.client
    if (verdict.close === true || client.headersSent || client.gone) {
      client.abort()
      return this.finish(err.status, err, upstream, client.headersSent)
    }
    const own = this.grpc
      ? grpcErrorResponse(err, this.requestId)
      : errorResponse(err, this.requestId, this.header('accept'))
    if (verdict.headers !== undefined) own.headers.push(...verdict.headers)
    this.respond(own, err, upstream)
  }

  /**
   * The request body crossed the route's `maxBodySize` as it streamed: the upstream request (if any) is
   * aborted, so that its server sees an incomplete body, and the client gets 413 (or, after a response
   * head, a cut connection).
   */
  bodyTooLarge(): void {
    if (this.#done) return
    const err = new SwitchyardError('SWY_BODY_TOO_LARGE', `a streamed body over ${this.target?.maxBodyBytes} bytes`)
    if (this.#exchange !== undefined) this.#exchange.stop(err)
    else this.fail(err)
  }

  fail(err: SwitchyardError, upstream: UpstreamFacts = NO_UPSTREAM, status = 0): void {
    if (this.#done) return
    const client = this.client
    if (this.grpc && err.code === 'SWY_TIMEOUT' && client.headersSent && !client.gone) {
      // A gRPC deadline after the head: the status goes in trailers, which the client reads as
      // DEADLINE_EXCEEDED (a reset would read as INTERNAL).
      client.end(undefined, grpcErrorResponse(err, this.requestId).trailers)
      return this.finish(err.status, err, upstream, true)
    }
    if (client.headersSent || client.gone) {
      client.abort(err.code === 'SWY_UPSTREAM_CANCELLED')
      return this.finish(status || err.status, err, upstream, client.headersSent)
    }
    this.respond(
      this.grpc ? grpcErrorResponse(err, this.requestId) : errorResponse(err, this.requestId, this.header('accept')),
      err,
      upstream,
    )
  }

  #onClientGone(): void {
    if (this.#done) return
    const err = new SwitchyardError('SWY_CLIENT_ABORTED', this.client.goneReason)
    if (this.#exchange !== undefined) this.#exchange.stop(err)
    else this.finish(499, err, NO_UPSTREAM)
  }

  /** The listener's slow-client rates (l7/slow-clients.ts). */
  get policy(): SlowClientPolicy {
    return this.rt.config.slowClients
  }

  sendProgress(): { readonly waiting: boolean; readonly bytes: number } | undefined {
    return this.#exchange?.sendProgress
  }

  /** The client sent its body, or read its response, below the listener's `slowClients` rate. */
  tooSlow(what: 'body' | 'response'): void {
    if (this.#done) return
    const p = this.policy
    const err = new SwitchyardError(
      'SWY_CLIENT_TOO_SLOW',
      what === 'body'
        ? `the request body came at under ${p.minBodyRate} bytes/s over ${p.windowMs} ms`
        : `the response was read at under ${p.minSendRate} bytes/s over ${p.windowMs} ms`,
    )
    if (this.#exchange !== undefined) this.#exchange.stop(err)
    else this.fail(err)
  }

  /** The request became a tunnel: `timeouts.total` no longer applies (the tunnel's own timeouts do). */
  tunnelStarted(): void {
    unwatchSlow(this)
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #onTotalTimeout(): void {
    this.#timer = undefined
    if (this.#done) return
    const err = new SwitchyardError(
      'SWY_TIMEOUT',
      this.#deadline ? 'the gRPC deadline (grpc-timeout) expired in the load balancer' : undefined,
    )
    if (this.#exchange !== undefined) this.#exchange.stop(err)
    else this.fail(err)
  }

  /**
   * The end of the request, once: metrics, the `request:end` channel, `onLog` filters and the access
   * log. `aborted`: the response was cut off after its head.
   */
  finish(status: number, err: SwitchyardError | undefined, up: UpstreamFacts, aborted = false): void {
    if (this.#done) return
    this.#done = true
    unwatchSlow(this)
    if (this.#timer) clearTimeout(this.#timer)
    this.client.unwatch()
    this.hooks.end()
    recordEnd(this, status, err, up, aborted)
  }
}

/**
 * What the request path refuses in an HTTP/1 head, whichever engine parsed it (the parsers accept
 * some of it): a version other than 1.x (RFC 9112 §2.3: HTTP/0.9 is 400, `HTTP/2.0` on an HTTP/1
 * connection is 505), more than one Host or an invalid one (§3.2), a Transfer-Encoding other than
 * `chunked` alone (headers.ts transferCodingProblem). Each answer closes the connection.
 */
function http1HeadProblem(client: ClientSide, head: RequestHead): SwitchyardError | undefined {
  const major = client.versionMajor
  if (major === 0) return new SwitchyardError('SWY_BAD_REQUEST', 'an HTTP/0.9 request')
  if (major !== 1) return new SwitchyardError('SWY_HTTP_VERSION', `HTTP/${major}.x on an HTTP/1 connection`)
  if (head.hosts > 1) return new SwitchyardError('SWY_BAD_REQUEST', 'more than one Host header')
  if (head.host !== undefined && !isValidHost(head.host))
    return new SwitchyardError('SWY_BAD_REQUEST', 'an invalid Host header')
  const te = head.transferEncoding
  if (te === undefined) return undefined
  const problem = transferCodingProblem(te, client.protocol === 'http/1.0', head.contentLength >= 0)
  return problem === undefined ? undefined : new SwitchyardError(problem.code, problem.message)
}

/** An absolute-form target's origin-form (path and query) and authority (host, and port when not the default). */
function absoluteTarget(url: string): { origin: string; authority: string } | undefined {
  if (!/^https?:\/\//i.test(url)) return undefined
  try {
    const u = new URL(url)
    if (u.username !== '' || u.password !== '') return undefined // userinfo is not allowed (RFC 9110 §4.2.4)
    return { origin: `${u.pathname}${u.search}`, authority: u.host }
  } catch {
    return undefined
  }
}

/** The filter context of one request: its view, the upstream draft, the route, scratch state. */
export class PipelineContext implements FilterContext, UpstreamDraft {
  readonly #inbound: Inbound
  readonly state: Record<string, unknown> = {}
  #route: RouteView | undefined

  constructor(inbound: Inbound) {
    this.#inbound = inbound
  }

  get listener(): string {
    return this.#inbound.rt.config.name
  }

  get request(): RequestView {
    return this.#inbound
  }

  get upstream(): UpstreamDraft {
    return this
  }

  get server(): string | undefined {
    return this.#inbound.server
  }

  /** A request header rendered for each try's server (a value that names `{server}`). */
  addPerTry(name: string, template: string): void {
    const inbound = this.#inbound
    inbound.perTryHeaders ??= []
    inbound.perTryHeaders.push([name, template])
  }

  get route(): RouteView | undefined {
    const target = this.#inbound.target
    if (target === undefined) return undefined
    const pool = this.#inbound.poolTarget?.pool.name
    if (this.#route === undefined || this.#route.pool !== pool) this.#route = { ...target.view, pool }
    return this.#route
  }

  usePool(pool: string): void {
    const target = this.#inbound.rt.pools.get(pool)
    if (target === undefined) throw new Error(`usePool: no pool named "${pool}"`)
    this.#inbound.poolTarget = target
  }

  // UpstreamDraft: writes to the forwarded head.
  get path(): string {
    return this.#inbound.upstreamPath
  }

  set path(value: string) {
    this.#inbound.upstreamPath = value
  }

  get host(): string | undefined {
    return this.#inbound.upstreamHost
  }

  set host(value: string | undefined) {
    this.#inbound.upstreamHost = value
  }

  setHeader(name: string, value: string): void {
    this.#checkManaged(name)
    if (this.#hostHeader(name, value)) return
    this.removeHeader(name)
    const perTry = this.#inbound.perTryHeaders
    if (perTry !== undefined)
      this.#inbound.perTryHeaders = perTry.filter(([n]) => n.toLowerCase() !== name.toLowerCase())
    this.#inbound.head.headers.push(name, value)
  }

  addHeader(name: string, value: string): void {
    this.#checkManaged(name)
    if (this.#hostHeader(name, value)) return
    this.#inbound.head.headers.push(name, value)
  }

  removeHeader(name: string): void {
    this.#checkManaged(name)
    const head = this.#inbound.head
    const at = removeHeaders(head.headers, name)
    // The entries after `at` moved: only those before it are still the client's, as checked.
    if (at >= 0 && at < head.checked) head.checked = at
  }

  /** The forwarding and request id headers are set by the listener's settings, after the filters. */
  #checkManaged(name: string): void {
    const why = managedHeader(name, this.#inbound.rt.config.requestId.header)
    if (why !== undefined) throw new TypeError(why)
  }

  /** Host is sent by its own rule (preserveHost, rewrite.host): a filter that sets it sets that. */
  #hostHeader(name: string, value: string): boolean {
    if (name.length !== 4 || name.toLowerCase() !== 'host') return false
    this.#inbound.upstreamHost = value
    return true
  }
}
