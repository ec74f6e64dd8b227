/**
 * The exchange: one routed request proxied to its pool. Built once a route matched (so its target is
 * always known): admission (a lease from the pool, or a place in its queue), the body (read whole when
 * small, so a retry can send it again), the tries (through the upstream interface), the retry decision
 * (retry.ts), the response head through the `onResponse` phase and the body through any
 * `responseBody` transform, with backpressure both ways.
 *
 * Failure contract: before the response head is sent, every failure becomes an error response whose
 * status comes from the error table (502/503/504/...), or the last upstream 5xx when retries of it
 * gave up. After it, the client's response is aborted, so a truncated body is never mistaken for a
 * complete one. `stop()` (the client went away, or the total timeout) aborts whatever runs: the try
 * upstream, the backoff timer, the queue wait.
 */
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import type { Transform } from 'node:stream'
import { headerValue } from '../balancer/hash-key.js'
import { channels } from '../core/channels.js'
import { classifyUpstreamError, isConnectFailure, SwitchyardError } from '../core/errors.js'
import { EXPLAIN_HEADER } from '../explain/index.js'
import { callOnResponse, type PhaseOutcome, runPhase } from '../filters/chain.js'
import type { RoutePipeline } from '../filters/pipeline.js'
import type { ForwardedRequest } from '../filters/types.js'
import { Tunnel, type UpgradeHandler, upgradeTry } from '../tunnel/index.js'
import type { PoolLease, Selection, TryLease, TryOutcome, Waiter } from '../upstream/pool.js'
import { clientProxyHeader, localProxyHeader } from '../upstream/send-proxy.js'
import { admitRequestOf, tryHeaders } from './admission.js'
import { readWholeBody, streamedBody } from './body.js'
import { verdictResponse } from './error-response.js'
import { HeadDraft } from './head-draft.js'
import { downstreamResponseHeaders, switchingResponseHeaders, trailerPairs } from './headers.js'
import type { Inbound, UpstreamFacts } from './request.js'
import { decideRetry, type RetryDecision, type RetryReason, type RetryToAnother } from './retry.js'
import type { PoolTarget, RouteTarget } from './target.js'
import type { UpstreamRequest, UpstreamTry } from './upstream.js'

/** Largest retryable 5xx response kept while its retry runs, to relay if the retries give up. */
const HELD_RESPONSE_BYTES = 64 * 1024

/** An upstream response being read before it is relayed (a 5xx that a retry may replace). */
interface HeldResponse {
  readonly status: number
  readonly statusText: string
  readonly rawHeaders: readonly string[]
  /** The engine checked the names and values (UpstreamHandler.onUpstreamHead). */
  readonly checked: boolean
  readonly chunks: Buffer[]
  bytes: number
  trailers: readonly string[]
  /** Its body was read whole. */
  complete: boolean
}

export class Exchange implements UpgradeHandler, Waiter {
  readonly #in: Inbound
  readonly #poolTarget: PoolTarget
  readonly #pipeline: RoutePipeline
  #lease: PoolLease | undefined
  /** Waiting in the pool's queue. */
  #ticket: { cancel(): void } | undefined
  #try: TryLease | undefined
  #call: UpstreamTry | undefined
  /** The request body, read whole; undefined when it streams or there is none. */
  #body: Buffer | undefined
  /** Length of the forwarded header array before a try's own headers were added to it; -1 before the first. */
  #baseHeaders = -1
  /** The socket the current try was written to, if the engine told it. */
  #socket: Socket | undefined
  #socketReused = false
  /** `#socket.bytesRead` when the current try was written: more means a response began. */
  #readAtSend = 0
  #raceResends = 0
  #retryTimer: NodeJS.Timeout | undefined
  /** A retryable 5xx being read while the exchange decides; the last one is relayed if retries give up. */
  #held: HeldResponse | undefined
  /** `#held` is the response of the current try (still being read). */
  #holding = false
  /** Why the exchange was stopped from outside (client gone, total timeout); the try's error follows. */
  #stopped: SwitchyardError | undefined
  #status = 0
  #bytesOut = 0
  /** A write to the client returned false and its `drain` has not come: the response waits on the client. */
  #blocked = false
  #ttfbMs = -1
  /** Bytes from the client, once a tunnel counted them (the client side counts them otherwise). */
  #bytesIn = -1
  /** The first body chunk, held for the rest of the current parse: head and body may leave in one write. */
  #firstChunk: Buffer | undefined
  #bodyStarted = false
  #transform: Transform | undefined
  #ended = false

  constructor(inbound: Inbound, target: RouteTarget, poolTarget: PoolTarget) {
    this.#in = inbound
    this.#poolTarget = poolTarget
    this.#pipeline = target.pipeline
    this.#maxBodyBytes = target.maxBodyBytes
  }

  readonly #maxBodyBytes: number
  readonly #onBodyTooLarge = (): void => this.#in.bodyTooLarge()

  get #pool() {
    return this.#poolTarget.pool
  }

  // --- admission --------------------------------------------------------------------------------

  start(): void {
    const pool = this.#pool
    const request = admitRequestOf(this.#in, pool, this.#pipeline.selectUpstream)
    const admission = pool.admit(request, this)
    const explain = this.#in.explain
    if (explain !== undefined) {
      // Described before the first try starts: the scores are those the pick compared.
      const select = this.#pipeline.selectUpstream
      if (admission.kind === 'go') explain.admitted(pool, request, admission.lease, select)
      else if (admission.kind === 'wait') explain.queued()
      else explain.refused(pool, request, select)
    }
    switch (admission.kind) {
      case 'go':
        return this.#go(admission.lease)
      case 'wait':
        this.#ticket = admission
        return
      case 'reject':
        return this.#in.fail(new SwitchyardError(admission.code, admission.reason))
      default: {
        const unknown: never = admission
        throw new Error(`unknown admission ${JSON.stringify(unknown)}`)
      }
    }
  }

  get sticky(): boolean {
    return this.#pool.sticky !== undefined
  }

  granted(lease: PoolLease): void {
    this.#ticket = undefined
    if (this.#in.done) return lease.end()
    this.#in.explain?.admitted(lease.pool, lease.request, lease, this.#pipeline.selectUpstream)
    this.#go(lease)
  }

  rejected(code: 'SWY_NO_SERVER' | 'SWY_OVERLOADED', reason: string): void {
    this.#ticket = undefined
    const explain = this.#in.explain
    if (explain !== undefined)
      explain.refused(
        this.#pool,
        admitRequestOf(this.#in, this.#pool, this.#pipeline.selectUpstream),
        this.#pipeline.selectUpstream,
      )
    this.#in.fail(new SwitchyardError(code, reason))
  }

  #go(lease: PoolLease): void {
    this.#lease = lease
    const inbound = this.#in
    if (inbound.expectContinue) inbound.client.writeContinue()
    // A small body with a known length is read whole first, so that a failed try can send it again.
    const length = inbound.head.contentLength
    if (length > 0 && length <= this.#pool.config.retries.bufferBytes)
      readWholeBody(inbound.client, (body) => {
        if (inbound.done) return
        this.#body = body
        this.#send(lease.first, lease.begin(lease.first, false))
      })
    else this.#send(lease.first, lease.begin(lease.first, false))
  }

  // --- tries ------------------------------------------------------------------------------------

  /** Sends one try to its server: the first, a retry, or the same try again after a lost race. */
  #send(selection: Selection, tryLease: TryLease): void {
    const inbound = this.#in
    const config = this.#pool.config
    const head = inbound.head
    this.#try = tryLease
    inbound.server = selection.backend.id
    this.#socket = undefined
    // The forwarding headers depend on the server (Host, without preserveHost): rebuilt for each try.
    const first = this.#baseHeaders < 0
    if (first) this.#baseHeaders = head.headers.length
    else head.headers.length = this.#baseHeaders
    const { headers, checked } = tryHeaders(inbound, this.#pool, selection, head)
    const body: UpstreamRequest['body'] = !inbound.hasBody
      ? null
      : (this.#body ?? streamedBody(inbound.client, this.#maxBodyBytes, this.#onBodyTooLarge))
    if (first && this.#pipeline.onForward.length > 0) this.#forward(headers)
    const upgrade = inbound.upgrade
    let call: UpstreamTry
    const proxyVersion = config.sendProxyProtocol
    if (upgrade === undefined)
      call =
        proxyVersion === undefined
          ? selection.connections.call(this)
          : selection.connections.call(this, inbound.client.connection)
    else {
      // Hop-by-hop, so never in the forwarded head: put back for the server to switch.
      headers.push('connection', 'upgrade', 'upgrade', upgrade)
      // An HTTP/2 WebSocket (RFC 8441) has no key: the server's HTTP/1.1 handshake needs one.
      if (inbound.client.protocol === 'h2' && headerValue(headers, 'sec-websocket-key') === undefined)
        headers.push('sec-websocket-key', randomBytes(16).toString('base64'))
      const backend = selection.backend
      call = upgradeTry(
        {
          host: backend.host,
          port: backend.port,
          connectMs: config.timeouts.connectMs,
          tls: backend.tls ? this.#pool.tls : undefined,
          prefix:
            proxyVersion === undefined
              ? undefined
              : inbound.client.connection === undefined
                ? localProxyHeader(proxyVersion)
                : clientProxyHeader(proxyVersion, inbound.client.connection),
        },
        this,
      )
    }
    this.#call = call
    call.send({
      path: inbound.upstreamPath,
      method: inbound.method,
      headers,
      checkedHeaders: checked,
      body,
      headersTimeoutMs: config.retries.perTryTimeoutMs || config.timeouts.responseHeadersMs,
      bodyTimeoutMs: config.timeouts.idleMs,
      closeAfter: config.connections.keepAliveMs === 0,
    })
  }

  /** The `onForward` phase: taps see the request as it is first sent. */
  #forward(headers: readonly string[]): void {
    const inbound = this.#in
    const request: ForwardedRequest = {
      method: inbound.method,
      path: inbound.upstreamPath,
      headers: [...headers],
      body: this.#body,
      hasBody: inbound.hasBody,
    }
    const ctx = inbound.context()
    for (const f of this.#pipeline.onForward) {
      try {
        f.onForward?.(ctx, request)
      } catch (err) {
        inbound.rt.logger.warn({ err, filter: f.name }, `filter ${f.name} failed in onForward`)
      }
    }
  }

  /** The HTTP/2 engine sent the try again itself, on another stream (the server refused it unprocessed). */
  onUpstreamResent(): void {
    this.#countRetry('refused-stream', this.#try?.selection)
  }

  onUpstreamSocket(socket: Socket, uses: number): void {
    this.#socket = socket
    this.#socketReused = uses > 0
    this.#readAtSend = socket.bytesRead
  }

  /**
   * Ends the current try (balancers, outlier detection, retry budget, server metrics). `code`: what
   * failed, for a failed try (a SWY_* code, or `5xx`).
   */
  #endTry(outcome: TryOutcome, code?: string): void {
    const t = this.#try
    if (t === undefined) return
    this.#try = undefined
    t.end(outcome, this.#ttfbMs >= 0 ? this.#ttfbMs : performance.now() - this.#in.startMs, code)
  }

  /** The end of a try that delivered a response: a 5xx counts as the server's failure. */
  #endAnswered(): void {
    if (this.#status >= 500) this.#endTry('failure', '5xx')
    else this.#endTry('success')
  }

  /** The retry decision for the current try; a retry that the spent budget refuses is counted here. */
  #decide(code: SwitchyardError['code'], status: number): RetryDecision {
    const lease = this.#lease as PoolLease
    const socket = this.#socket
    const decision = decideRetry(
      this.#pool.config.retries,
      {
        code,
        status,
        reusedConnection: socket !== undefined && this.#socketReused,
        // Unknown socket: count it as answered, so that nothing is taken for a lost race.
        responseBytes: socket === undefined || socket.bytesRead !== this.#readAtSend,
      },
      {
        method: this.#in.method,
        replayable: !this.#in.hasBody || this.#body !== undefined,
        responseStarted: this.#in.client.headersSent,
        tries: lease.tries,
        raceResends: this.#raceResends,
        budgetAvailable: lease.canRetry(),
      },
    )
    if (decision.kind === 'fail' && decision.why === 'budget') this.#budgetSpent()
    return decision
  }

  #budgetSpent(): void {
    this.#in.rt.metrics.retryBudgetOf(this.#pool.name).value++
  }

  /** Carries out a retry: the failed try ends, the next server is tried after the delay (and counted then). */
  #retry(reason: RetryToAnother, delayMs: number, err: SwitchyardError): void {
    const failed = this.#try?.selection
    this.#endTry(reason === 'connect-failure' ? 'connect-failure' : 'failure', reason === 'status' ? '5xx' : err.code)
    if (failed !== undefined)
      this.#in.explain?.retried(failed.backend.id, reason, reason === 'status' ? this.#held?.status : err.code, delayMs)
    const run = () => {
      this.#retryTimer = undefined
      if (this.#in.done) return
      const lease = this.#lease as PoolLease
      const next = lease.next()
      if (next === undefined) {
        this.#in.explain?.notRetried('no-server')
        return this.#giveUp(err)
      }
      if (!lease.takeRetry()) {
        this.#budgetSpent()
        this.#in.explain?.notRetried('budget')
        return this.#giveUp(err)
      }
      this.#countRetry(reason, failed)
      this.#send(next, lease.begin(next, true))
    }
    if (delayMs <= 0) run()
    else this.#retryTimer = setTimeout(run, delayMs)
  }

  #countRetry(reason: RetryReason, failed: Selection | undefined): void {
    const rt = this.#in.rt
    const server = failed?.backend.id ?? ''
    rt.metrics.retryOf(this.#pool.name, server, reason).value++
    if (rt.logger.isLevelEnabled('debug'))
      rt.logger.debug(
        { requestId: this.#in.requestId, pool: this.#pool.name, server, reason },
        `retrying request ${this.#in.requestId} (${reason} on ${server})`,
      )
  }

  /** No further try: the last upstream 5xx held for it, or the error. */
  #giveUp(err: SwitchyardError): void {
    const held = this.#held
    if (held?.complete) return this.#relayHeld(held)
    this.#fail(err)
  }

  // --- the upstream handler ---------------------------------------------------------------------

  onUpstreamHead(status: number, rawHeaders: readonly string[], statusText: string, checked: boolean): boolean {
    if (this.#in.done) return true
    this.#try?.responded()
    if (status >= 500 && this.#pool.config.retries.statuses.includes(status)) {
      const decision = this.#decide('SWY_UPSTREAM_STATUS', status)
      if (decision.kind === 'retry') {
        // Read it (bounded) while deciding: relayed if the retries give up, else dropped.
        this.#held = {
          status,
          statusText,
          rawHeaders,
          checked,
          chunks: [],
          bytes: 0,
          trailers: [],
          complete: false,
        }
        this.#holding = true
        return true
      }
      if (decision.kind === 'fail') this.#in.explain?.notRetried(decision.why)
    }
    this.#ttfbMs = performance.now() - this.#in.startMs
    return this.#head(status, statusText, rawHeaders, checked)
  }

  onUpstreamData(chunk: Buffer): boolean {
    // Answered otherwise (a filter's own response, an error): the rest of the body is dropped.
    if (this.#in.done) return true
    if (this.#holding) {
      const held = this.#held as HeldResponse
      held.bytes += chunk.length
      if (held.bytes > HELD_RESPONSE_BYTES) {
        this.#holding = false
        this.#held = undefined
        this.#call?.abort(new SwitchyardError('SWY_UPSTREAM_STATUS', `the upstream server answered ${held.status}`))
        return true
      }
      held.chunks.push(chunk)
      return true
    }
    return this.#data(chunk)
  }

  onUpstreamEnd(trailers: readonly string[]): void {
    if (this.#holding) {
      this.#holding = false
      const held = this.#held as HeldResponse
      held.trailers = trailers
      held.complete = true
      const decision = this.#decide('SWY_UPSTREAM_STATUS', held.status)
      const err = new SwitchyardError('SWY_UPSTREAM_STATUS', `the upstream server answered ${held.status}`)
      if (decision.kind === 'retry') return this.#retry(decision.reason, decision.delayMs, err)
      // The budget ran out while the body was read: relay this one.
      if (decision.kind === 'fail') this.#in.explain?.notRetried(decision.why)
      this.#endTry('failure', '5xx')
      return this.#relayHeld(held)
    }
    this.#complete(trailers)
  }

  onUpstreamError(raw: Error): void {
    const inbound = this.#in
    if (inbound.done) return this.#endTry('success')
    const stopped = this.#stopped
    if (stopped !== undefined) {
      this.#endTry('success')
      return stopped.code === 'SWY_CLIENT_ABORTED' ? this.#end(499, stopped) : this.#fail(stopped)
    }
    // The client went away (possibly mid-upload, which undici reports as a body stream error): not an
    // upstream failure, and nobody is left to answer.
    const client = inbound.client
    if (client.gone || client.bodyAborted) {
      this.#endTry('success')
      return this.#end(499, new SwitchyardError('SWY_CLIENT_ABORTED', undefined, { cause: raw }))
    }
    this.#holding = false
    const err = classifyUpstreamError(raw)
    if (err.source !== 'upstream') {
      this.#endTry('success')
      return this.#fail(err)
    }
    const decision = this.#decide(err.code, 0)
    switch (decision.kind) {
      case 'resend': {
        // Nothing reached the application: the same server, at once, on another connection. Not a
        // failure of the server (outlier detection and balancers count it as a success).
        const selection = (this.#try as TryLease).selection
        this.#endTry('success')
        this.#raceResends++
        this.#countRetry('keepalive-race', selection)
        inbound.explain?.retried(selection.backend.id, 'keepalive-race', err.code, 0)
        if (channels.keepAliveRace.hasSubscribers)
          channels.keepAliveRace.publish({
            requestId: inbound.requestId,
            pool: this.#pool.name,
            server: selection.backend.id,
          })
        return this.#send(selection, (this.#lease as PoolLease).resend(selection))
      }
      case 'retry':
        return this.#retry(decision.reason, decision.delayMs, err)
      case 'fail': {
        const connectFailure = isConnectFailure(err.code)
        const server = this.#try?.selection.backend.id
        this.#endTry(connectFailure ? 'connect-failure' : 'failure', err.code)
        inbound.explain?.failed(server, err.code, decision.why)
        if (channels.upstreamError.hasSubscribers)
          channels.upstreamError.publish({
            requestId: inbound.requestId,
            pool: this.#pool.name,
            server,
            code: err.code,
            error: raw,
          })
        return this.#giveUp(err)
      }
      default: {
        const unknown: never = decision
        throw new Error(`unknown retry decision ${JSON.stringify(unknown)}`)
      }
    }
  }

  /**
   * The server switched protocols: the 101 goes to the client, whose connection and the server's become
   * a tunnel. The request ends (is logged, counted, and gives back its lease) when the tunnel closes; its
   * try stays open until then, so balancers that count requests in flight, and server connection caps,
   * count the tunnel. Response rules do not run on a 101: it has no body, and its head is the protocol's
   * handshake. Sticky sessions do: a handshake may be the first request that pins a client.
   */
  onUpstreamUpgrade(rawHeaders: readonly string[], statusText: string, socket: Socket, head: Buffer): void {
    const inbound = this.#in
    if (inbound.done) {
      socket.destroy()
      return this.#endTry('success')
    }
    this.#ttfbMs = performance.now() - inbound.startMs
    this.#try?.responded()
    this.#status = 101
    const rt = inbound.rt
    const extra = this.#ownHeaders(rawHeaders)
    const asked = inbound.upgrade ?? ''
    const headers = switchingResponseHeaders(rawHeaders, asked, extra)
    let switched: ReturnType<typeof inbound.client.switchProtocols>
    try {
      switched = inbound.client.switchProtocols(statusText || undefined, headers)
    } catch (err) {
      socket.destroy()
      return this.#fail(new SwitchyardError('SWY_UPSTREAM_PROTOCOL', 'invalid response header', { cause: err }))
    }
    if (switched === undefined) {
      socket.destroy()
      return this.#end(499, new SwitchyardError('SWY_CLIENT_ABORTED'))
    }
    inbound.tunnelStarted()
    const timeouts = rt.config.timeouts
    const cells = rt.metrics.tunnelsOf(this.#pool.name)
    cells.opened.value++
    cells.active.value++
    const tunnels = inbound.hooks.tunnels
    const headBytes = inbound.client.bytesIn()
    const tunnel = new Tunnel(
      { client: switched.socket, clientHead: switched.head, upstream: socket, upstreamHead: head },
      {
        // What the server switched to (its Upgrade, or what the client asked for when it named none).
        websocket: /(?:^|[\s,])websocket(?:$|[\s,/])/i.test(switchedTo(rawHeaders) ?? asked),
        idleMs: timeouts.tunnelIdleMs,
        maxAgeMs: timeouts.tunnelMaxAgeMs,
      },
      (result) => {
        tunnels.delete(tunnel)
        cells.active.value--
        cells.bytesIn.value += result.bytesFromClient
        cells.bytesOut.value += result.bytesToClient
        this.#bytesOut = result.bytesToClient
        this.#bytesIn = headBytes + result.bytesFromClient
        this.#end(
          101,
          result.end === 'server-error'
            ? new SwitchyardError('SWY_UPSTREAM_RESET', 'the upstream server reset the tunnel')
            : undefined,
        )
      },
    )
    tunnels.add(tunnel)
  }

  // --- the response -----------------------------------------------------------------------------

  /**
   * What Switchyard adds to a response head it relays (a 101 too): the echoed request id and the sticky
   * cookie, as `[name, value, ...]`; a pool that learns sessions from responses learns from this one.
   */
  #ownHeaders(rawHeaders: readonly string[]): string[] {
    const inbound = this.#in
    const rt = inbound.rt
    const extra: string[] = []
    if (rt.config.requestId.echo) extra.push(rt.config.requestId.header, inbound.requestId)
    const setCookie = this.#lease?.setCookie
    if (setCookie !== undefined) extra.push('set-cookie', setCookie)
    const sticky = this.#pool.sticky
    const server = this.#try?.selection.backend.id
    if (sticky?.learns && server !== undefined) sticky.learn(server, rawHeaders)
    const explain = inbound.explain
    if (explain !== undefined) {
      if (server !== undefined) explain.responded(server, this.#status)
      extra.push(EXPLAIN_HEADER, explain.header(inbound, undefined))
    }
    return extra
  }

  /** Writes the response head (through `onResponse` and any `responseBody` transform). */
  #head(status: number, statusText: string, rawHeaders: readonly string[], checked: boolean): boolean {
    const inbound = this.#in
    this.#status = status
    const extra = this.#ownHeaders(rawHeaders)
    // HTTP/1: an answer that came before the client's body is complete ends the connection (the rest
    // of the body is never read), and says so, as Switchyard's own responses do (request.ts respond).
    const client = inbound.client
    if (client.protocol !== 'h2' && (inbound.hooks.draining || (inbound.hasBody && !client.bodyComplete)))
      extra.push('connection', 'close')
    const headers = downstreamResponseHeaders(rawHeaders, extra)
    const pipeline = this.#pipeline
    // With no filter between, the server's own fields come first and unchanged: when the engine checked
    // them, the client side checks only the `extra` pairs after them.
    if (pipeline.onResponse.length === 0 && pipeline.responseBody.length === 0)
      return this.#writeHead(status, statusText, headers, checked ? headers.length - extra.length : 0)
    const draft = new HeadDraft(status, headers)
    const outcome =
      pipeline.onResponse.length === 0
        ? undefined
        : runPhase(pipeline.onResponse, callOnResponse, inbound.context(), draft)
    if (outcome instanceof Promise) {
      outcome.then(
        (o) => {
          if (this.#afterResponsePhase(o, draft, statusText)) this.#call?.resume()
        },
        (err: unknown) => this.#filterFailed('(pipeline)', err),
      )
      return false
    }
    return this.#afterResponsePhase(outcome, draft, statusText)
  }

  /** After `onResponse`: the head as the filters left it, or their own answer. False: nothing more to write. */
  #afterResponsePhase(outcome: PhaseOutcome | undefined, draft: HeadDraft, statusText: string): boolean {
    if (this.#in.done) return false
    if (outcome !== undefined)
      switch (outcome.kind) {
        case 'continue':
          break
        case 'respond':
          this.#endAnswered()
          this.#in.respond(verdictResponse(outcome), undefined, this.#facts())
          this.#drop()
          this.#endLease()
          return false
        case 'reject':
          this.#endAnswered()
          this.#in.reject(outcome, this.#facts())
          this.#drop()
          this.#endLease()
          return false
        case 'error':
          this.#filterFailed(outcome.filter, outcome.error)
          return false
        default: {
          const unknown: never = outcome
          throw new Error(`unknown phase outcome ${JSON.stringify(unknown)}`)
        }
      }
    const ctx = this.#in.context()
    for (const f of this.#pipeline.responseBody) {
      let transform: Transform | undefined
      try {
        transform = f.responseBody?.(ctx, draft)
      } catch (err) {
        this.#filterFailed(f.name, err)
        return false
      }
      if (transform !== undefined) {
        this.#pipeTransform(transform)
        break
      }
    }
    const reason = draft.status === this.#status ? statusText : ''
    this.#status = draft.status
    return this.#writeHead(draft.status, reason, draft.headers)
  }

  #writeHead(status: number, statusText: string, headers: readonly string[], checked = 0): boolean {
    try {
      this.#in.client.writeHead(status, statusText || undefined, headers, checked)
    } catch (err) {
      const invalid = new SwitchyardError('SWY_UPSTREAM_PROTOCOL', 'invalid response header', { cause: err })
      if (this.#call?.active) this.#call.abort(invalid)
      else this.#fail(invalid)
      return false
    }
    return true
  }

  #filterFailed(filter: string, err: unknown): void {
    this.#endTry('success')
    this.#release()
    this.#in.filterFailed(filter, err)
    this.#drop()
    this.#endLease()
  }

  /** Stops reading the current upstream response, once the request was answered otherwise. */
  #drop(): void {
    const call = this.#call
    if (call?.active) call.abort(new SwitchyardError('SWY_CLIENT_ABORTED', 'the response was replaced'))
  }

  #pipeTransform(transform: Transform): void {
    this.#transform = transform
    const client = this.#in.client
    transform.on('data', (chunk: Buffer) => {
      this.#bytesOut += chunk.length
      if (!client.write(chunk)) {
        transform.pause()
        this.#blocked = true
        client.onDrain(() => {
          this.#blocked = false
          transform.resume()
        })
      }
    })
    transform.once('error', (err) =>
      this.#call?.abort(new SwitchyardError('SWY_INTERNAL', 'response transform failed', { cause: err })),
    )
  }

  #data(chunk: Buffer): boolean {
    const transform = this.#transform
    if (transform !== undefined) {
      if (transform.write(chunk)) return true
      transform.once('drain', () => queueMicrotask(() => this.#call?.resume()))
      return false
    }
    this.#bytesOut += chunk.length
    const client = this.#in.client
    if (!this.#bodyStarted) {
      this.#bodyStarted = true
      this.#firstChunk = chunk
      queueMicrotask(() => this.#flushFirst())
      return true
    }
    if (this.#firstChunk !== undefined) this.#flushFirst()
    if (client.write(chunk)) return true
    // Resumed on the next tick, not inside `drain`: node:http emits a pipelined response's `drain`
    // synchronously while another response's upstream parser runs, and undici's parser must not be
    // resumed from within another parser's callback.
    this.#blocked = true
    client.onDrain(() => {
      this.#blocked = false
      queueMicrotask(() => this.#call?.resume())
    })
    return false
  }

  /**
   * The response body as the slow-client watch sees it: whether it waits on the client (a write was
   * refused and its drain has not come), and the bytes given to the client so far.
   */
  get sendProgress(): { readonly waiting: boolean; readonly bytes: number } {
    return { waiting: this.#blocked, bytes: this.#bytesOut }
  }

  /** Writes the held first chunk, if the response did not complete in the same parse. */
  #flushFirst(): void {
    const held = this.#firstChunk
    if (held === undefined) return
    this.#firstChunk = undefined
    if (!this.#in.done && !this.#in.client.gone) this.#in.client.write(held)
  }

  #complete(trailers: readonly string[]): void {
    if (this.#in.done) return this.#endTry('success')
    const client = this.#in.client
    const pairs = trailers.length > 0 ? trailerPairs(trailers) : undefined
    const transform = this.#transform
    this.#endAnswered()
    if (transform !== undefined) {
      transform.once('end', () => {
        client.end(undefined, pairs)
        this.#end(this.#status, undefined)
      })
      transform.end()
      return
    }
    const held = this.#firstChunk
    this.#firstChunk = undefined
    client.end(held, pairs)
    this.#end(this.#status, undefined)
  }

  /** Relays an upstream response read whole (the last 5xx, when the retries of it gave up). */
  #relayHeld(held: HeldResponse): void {
    this.#held = undefined
    if (!this.#head(held.status, held.statusText, held.rawHeaders, held.checked) || this.#in.done) return
    for (const chunk of held.chunks) this.#data(chunk)
    this.#complete(held.trailers)
  }

  // --- the end ----------------------------------------------------------------------------------

  /** Ends the exchange from outside: the client went away, or the total timeout. */
  stop(err: SwitchyardError): void {
    if (this.#stopped !== undefined || this.#in.done) return
    this.#stopped = err
    if (this.#call?.active) return this.#call.abort(err) // onUpstreamError ends it
    if (err.code === 'SWY_CLIENT_ABORTED') this.#end(499, err)
    else this.#fail(err)
  }

  #facts(): UpstreamFacts {
    const retries = Math.max(0, (this.#lease?.tries ?? 0) - 1) + this.#raceResends
    const facts = { server: this.#in.server, ttfbMs: this.#ttfbMs, bytesOut: this.#bytesOut, retries }
    return this.#bytesIn < 0 ? facts : { ...facts, bytesIn: this.#bytesIn }
  }

  #fail(err: SwitchyardError): void {
    this.#release()
    this.#in.fail(err, this.#facts(), this.#status)
    this.#endLease()
  }

  #end(status: number, err: SwitchyardError | undefined): void {
    this.#release()
    this.#in.finish(status, err, this.#facts(), err !== undefined && this.#in.client.headersSent)
    this.#endLease()
  }

  /** Releases what a wait or a backoff holds. */
  #release(): void {
    if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer)
    this.#retryTimer = undefined
    this.#ticket?.cancel()
    this.#ticket = undefined
    this.#transform?.destroy()
  }

  #endLease(): void {
    if (this.#ended) return
    this.#ended = true
    this.#endTry('success')
    this.#lease?.end()
  }
}

/** A 101's Upgrade value, if the server sent one. */
function switchedTo(raw: readonly string[]): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 7 && name.toLowerCase() === 'upgrade') return raw[i + 1]
  }
  return undefined
}
