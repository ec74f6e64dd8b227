/**
 * One try on the native engine: the request written to one upstream connection, its response read
 * with llhttp and reported to the exchange's handler.
 *
 * Request: the head is built before a connection is taken (upstream-head.ts: a refused head never
 * takes one) and written in one write with a Buffer body (corked), or followed by a streamed body
 * (upstream-body.ts) with backpressure.
 *
 * Response:
 * - interim 1xx responses are skipped; a 101 (this engine sends no upgrades yet) is SWY_UPSTREAM_PROTOCOL;
 * - HEAD, 204 and 304 have no body; a Content-Length body is delivered as slices of the socket's own
 *   chunks (no copy); chunked and close-delimited bodies are read by llhttp; trailers go to `onUpstreamEnd`;
 * - the handler's `false` (from the head or a chunk) pauses the socket until `resume()`; what was read
 *   already is held and delivered first;
 * - a response that begins before the request body was sent whole is relayed while the body goes on
 *   (a server may answer as it reads); once it is read whole, the rest of the body is not sent, and the
 *   connection is closed rather than reused;
 * - bytes past the end of the response (beyond its framing) close the connection: they are never read
 *   as part of another response.
 *
 * Timeouts (precise to about a millisecond, see deadline.ts):
 * - `headersTimeoutMs`: from the request head being handed to the socket to the response head. While a
 *   streamed body is still being sent and the server reads it, it does not fire (it is counted again from
 *   the body's last byte); it fires when it comes due while the server has stopped reading (the socket's
 *   buffer is full). SWY_UPSTREAM_TIMEOUT.
 * - `bodyTimeoutMs`: the longest silence on the socket between the response head and its end, not
 *   counting time paused for the client's backpressure. SWY_UPSTREAM_BODY_TIMEOUT.
 *
 * Errors (SwitchyardErrors, so that `classifyUpstreamError` keeps them): a connection that closes or
 * resets before the response ends is SWY_UPSTREAM_RESET (on a reused connection with no byte of a
 * response, the exchange resends it: a lost keep-alive race); a malformed response (llhttp's `HPE_*`)
 * is SWY_UPSTREAM_PROTOCOL. `abort(err)` closes the connection and reports `err`. The handler hears
 * exactly one of `onUpstreamEnd` and `onUpstreamError`.
 */
import type { Readable } from 'node:stream'
import { ERROR_CODES, SwitchyardError } from '../core/errors.js'
import type { UpstreamHandler, UpstreamRequest, UpstreamTry } from '../l7/upstream.js'
import { BODY_NONE, BODY_PARSE, BODY_SELF, type BodyMode, type ParsedHead, type ParseError } from './parser.js'
import { BodyPump, type BodySink } from './upstream-body.js'
import { type ConnectionUser, lostError, type UpstreamConnection } from './upstream-connection.js'
import { type BodyShape, type RequestHead, requestBytes, requestHead } from './upstream-head.js'

/** What a call needs of its agent. */
export interface CallAgent {
  /** `host:port`, the Host of a request that has none. */
  readonly hostHeader: string
  /** How long an idle connection is kept (ms); 0: connections are not reused. */
  readonly keepAliveMs: number
  /** Requests a connection carries; 0: no limit. */
  readonly maxRequestsPerConnection: number
  /** The call is ready: it gets a connection (`start()`) now or once one is free. */
  submit(call: NativeCall): void
  /** A waiting call leaves the queue. */
  withdraw(call: NativeCall): void
}

/**
 * How much earlier than a server's `Keep-Alive: timeout=N` an idle connection is retired: undici's
 * `keepAliveTimeoutThreshold` (2 s), so that both engines retire alike. It covers the request's way to
 * the server and a server that times idle connections coarsely; with N of 2 or less, a connection is
 * not reused at all.
 */
export const KEEP_ALIVE_HINT_MARGIN_MS = 2000

const KEEP_ALIVE_TIMEOUT_RE = /timeout=(\d+)/

type State = 'new' | 'queued' | 'running' | 'read' | 'done'
/** What is being read: the head, a Content-Length body (sliced here), a body llhttp reads, nothing more. */
type Phase = 'head' | 'self' | 'parse' | 'done'
type Timer = 'none' | 'headers' | 'body'

const NO_BODY: BodyShape = { kind: 'none' }
const STREAMED: BodyShape = { kind: 'stream' }
const NO_TRAILERS: readonly string[] = []

export class NativeCall implements UpstreamTry, ConnectionUser, BodySink {
  readonly #agent: CallAgent
  readonly #handler: UpstreamHandler
  #state: State = 'new'
  #request: UpstreamRequest | undefined
  #head: RequestHead | undefined
  #conn: UpstreamConnection | undefined
  // --- the request
  /** The body was handed to the socket whole (or there is none). */
  #bodySent = false
  #pump: BodyPump | undefined
  /** The connection closes after this request (`Connection: close` sent). */
  #closeAfter = false
  // --- the response, as parsed
  #phase: Phase = 'head'
  /** An interim (1xx) response is being parsed. */
  #interim = false
  /** Content-Length body bytes still to come. */
  #remaining = 0
  /** The server keeps the connection open after this response (llhttp's verdict). */
  #keepAlive = false
  /** The server's `Keep-Alive: timeout=` (ms); -1: none. */
  #hintMs = -1
  /** Bytes came past the end of the response. */
  #leftover = false
  /** The final head, parsed and not yet delivered. */
  #parsedHead: ParsedHead | undefined
  /** The message was read whole in this parse: its trailers. */
  #complete: string[] | undefined
  /** A failure found inside a parser callback, reported once the parse returns. */
  #failure: SwitchyardError | undefined
  #timer: Timer = 'none'
  // --- delivery to the handler
  /** Body chunks read but not yet delivered (paused, or read inside a parse). */
  readonly #backlog: Buffer[] = []
  /** The response was read whole: its trailers, delivered after the backlog. */
  #trailers: readonly string[] | undefined
  #paused = false
  #flushing = false

  constructor(agent: CallAgent, handler: UpstreamHandler) {
    this.#agent = agent
    this.#handler = handler
  }

  get active(): boolean {
    return this.#state !== 'done'
  }

  send(request: UpstreamRequest): void {
    if (this.#state !== 'new') return
    const body = request.body
    const shape: BodyShape =
      body === null || body === undefined
        ? NO_BODY
        : Buffer.isBuffer(body)
          ? body.length === 0
            ? NO_BODY
            : { kind: 'buffer', length: body.length }
          : STREAMED
    const head = requestHead(
      request.method,
      request.path,
      request.headers,
      this.#agent.hostHeader,
      shape,
      request.checkedHeaders ?? 0,
    )
    if (head instanceof SwitchyardError) {
      this.#state = 'done'
      return this.#handler.onUpstreamError(head)
    }
    this.#request = request
    this.#head = head
    this.#state = 'queued'
    // Until the body pump takes the stream, its failure (the client gone while the request waits for a
    // connection) fails the call, and is never an unhandled 'error'.
    if (shape === STREAMED && isStream(body)) body.once('error', this.#onEarlyBodyError)
    this.#agent.submit(this)
  }

  readonly #onEarlyBodyError = (err: Error): void => {
    if (this.#pump === undefined)
      this.#fail(new SwitchyardError('SWY_CLIENT_ABORTED', 'the request body failed', { cause: err }))
  }

  abort(err: Error): void {
    this.#fail(err)
  }

  resume(): void {
    if (!this.#paused || this.#state === 'done') return
    this.#paused = false
    if (this.#flushing) return // the loop below us goes on
    this.#flush()
    const conn = this.#conn
    if (this.#paused || this.#state !== 'running' || conn === undefined) return
    conn.socket.resume()
    if (this.#phase === 'self' || this.#phase === 'parse') this.#armBody()
  }

  // --- the request ------------------------------------------------------------------------------

  /** The agent gives the call a connection: the request is written to it. */
  start(conn: UpstreamConnection): void {
    const request = this.#request
    const head = this.#head
    // Not waiting any more (it cannot happen: a call that ends leaves the queue): the connection goes.
    if (this.#state !== 'queued' || request === undefined || head === undefined) return conn.destroy()
    this.#state = 'running'
    this.#conn = conn
    conn.take(this)
    conn.parser.reset()
    const max = this.#agent.maxRequestsPerConnection
    this.#closeAfter =
      request.closeAfter || head.close || request.method === 'HEAD' || (max > 0 && conn.uses + 1 >= max)
    this.#handler.onUpstreamSocket(conn.socket, conn.uses)
    if (this.#state !== 'running') return // aborted by the handler
    conn.uses++
    const socket = conn.socket
    const body = request.body
    if (request.headersTimeoutMs > 0) this.#arm('headers', request.headersTimeoutMs)
    if (body === null || body === undefined || (Buffer.isBuffer(body) && body.length === 0)) {
      this.#bodySent = true
      socket.write(requestBytes(head, this.#closeAfter, undefined))
    } else if (Buffer.isBuffer(body)) {
      this.#bodySent = true
      // A small body is in the head's buffer: one write. A larger one follows it, corked.
      if (head.bodyRoom === body.length) socket.write(requestBytes(head, this.#closeAfter, body))
      else {
        socket.cork()
        socket.write(requestBytes(head, this.#closeAfter, undefined))
        socket.write(body)
        socket.uncork()
      }
    } else {
      // Corked to the next tick: the head leaves with what the source holds already.
      socket.cork()
      socket.write(requestBytes(head, this.#closeAfter, undefined))
      if (isStream(body)) body.off('error', this.#onEarlyBodyError)
      this.#pump = new BodyPump(socket, body, head.length, this)
      process.nextTick(uncork, socket)
    }
  }

  bodyWritten(): void {
    this.#bodySent = true
    this.#pump = undefined
    // The server may not answer before the whole body: the headers timeout counts from here.
    const ms = this.#request?.headersTimeoutMs ?? 0
    if (this.#timer === 'headers' && ms > 0) this.#arm('headers', ms)
  }

  bodyFailed(err: SwitchyardError): void {
    this.#fail(err)
  }

  onDrain(): void {
    this.#pump?.drained()
  }

  // --- the response: the socket's events --------------------------------------------------------

  onData(chunk: Buffer): void {
    if (this.#state !== 'running') return
    if (this.#phase === 'self') {
      this.#armBody()
      this.#selfBytes(chunk)
      return
    }
    if (this.#phase === 'parse') this.#armBody()
    const conn = this.#conn as UpstreamConnection
    const result = conn.parser.execute(chunk)
    let consumed = chunk.length
    if (typeof result === 'number') consumed = result
    // An error in bytes past a complete response is theirs (leftovers), not this response's.
    else if (this.#complete === undefined && this.#failure === undefined) this.#failure = protocolError(result)
    else this.#leftover = true
    this.#afterParse(chunk, consumed)
  }

  onEnd(): void {
    if (this.#state !== 'running') return
    const conn = this.#conn as UpstreamConnection
    if (this.#phase === 'parse' || this.#phase === 'head') {
      // A close-delimited body ends here; anything else was cut short.
      const err = conn.parser.finish()
      if (err === undefined && this.#complete !== undefined) {
        this.#keepAlive = false
        return this.#afterParse(EMPTY_CHUNK, 0)
      }
    }
    this.#fail(
      lostError(
        undefined,
        this.#phase === 'head' ? 'closed before the response head' : 'closed before the end of the response',
      ),
    )
  }

  onLost(err: SwitchyardError): void {
    this.#conn = undefined
    this.#fail(err)
  }

  onDeadline(): void {
    const request = this.#request
    if (this.#state !== 'running' || request === undefined) return
    switch (this.#timer) {
      case 'headers': {
        const socket = this.#conn?.socket
        // A body still going out to a server that reads it: the clock starts again at its end.
        if (!this.#bodySent && socket !== undefined && !socket.writableNeedDrain)
          return this.#arm('headers', request.headersTimeoutMs)
        return this.#fail(
          new SwitchyardError(
            'SWY_UPSTREAM_TIMEOUT',
            `${ERROR_CODES.SWY_UPSTREAM_TIMEOUT.text}: no response head after ${request.headersTimeoutMs} ms`,
          ),
        )
      }
      case 'body':
        return this.#fail(
          new SwitchyardError(
            'SWY_UPSTREAM_BODY_TIMEOUT',
            `${ERROR_CODES.SWY_UPSTREAM_BODY_TIMEOUT.text}: ${request.bodyTimeoutMs} ms without a byte`,
          ),
        )
      case 'none':
        return
      default: {
        const unknown: never = this.#timer
        throw new Error(`unknown timer ${String(unknown)}`)
      }
    }
  }

  // --- the response: the parser's events (recorded only; reported once the parse returns) ----------

  onMessageBegin(): void {
    if (this.#complete !== undefined) this.#leftover = true
  }

  onHead(head: ParsedHead): BodyMode {
    if (this.#complete !== undefined || this.#failure !== undefined) {
      this.#leftover = true
      return BODY_NONE
    }
    const status = head.status
    if (status === 101 || head.upgrade) {
      this.#failure = new SwitchyardError(
        'SWY_UPSTREAM_PROTOCOL',
        `${ERROR_CODES.SWY_UPSTREAM_PROTOCOL.text}: 101 Switching Protocols to a request that asked for no upgrade`,
      )
      return BODY_NONE
    }
    if (status < 200) {
      this.#interim = true
      return BODY_PARSE
    }
    let length = -1
    let chunked = false
    let hintMs = -1
    const raw = head.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string
      if (name.length === 14 && is(name, 'content-length')) length = Number(raw[i + 1])
      else if (name.length === 17 && is(name, 'transfer-encoding')) chunked = true
      else if (name.length === 10 && is(name, 'keep-alive')) {
        const m = KEEP_ALIVE_TIMEOUT_RE.exec(raw[i + 1] as string)
        if (m !== null) hintMs = Number(m[1]) * 1000
      }
    }
    this.#keepAlive = head.keepAlive
    this.#hintMs = hintMs
    this.#parsedHead = head
    if (this.#request?.method === 'HEAD' || status === 204 || status === 304) {
      this.#phase = 'parse'
      return BODY_NONE
    }
    if (chunked || length < 0) {
      this.#phase = 'parse'
      return BODY_PARSE
    }
    if (!Number.isSafeInteger(length)) {
      this.#failure = new SwitchyardError(
        'SWY_UPSTREAM_PROTOCOL',
        `${ERROR_CODES.SWY_UPSTREAM_PROTOCOL.text}: Content-Length too large`,
      )
      return BODY_NONE
    }
    this.#phase = 'self'
    this.#remaining = length
    return BODY_SELF
  }

  onBody(chunk: Buffer): void {
    if (this.#complete === undefined && this.#phase === 'parse') this.#backlog.push(chunk)
  }

  onComplete(trailers: string[]): void {
    if (this.#interim) {
      this.#interim = false
      return
    }
    if (this.#complete !== undefined || this.#phase !== 'parse') return
    this.#complete = trailers
  }

  // --- the response: after each parse ----------------------------------------------------------

  #afterParse(chunk: Buffer, consumed: number): void {
    const failure = this.#failure
    if (failure !== undefined) return this.#fail(failure)
    const head = this.#parsedHead
    if (head !== undefined) {
      this.#parsedHead = undefined
      if (!this.#gotHead(head)) return
      if (this.#phase === 'self') return this.#selfBytes(chunk.subarray(consumed))
    }
    const complete = this.#complete
    if (complete !== undefined) return this.#read(complete)
    this.#flush()
  }

  /** Delivers the final head; false when the call ended meanwhile. */
  #gotHead(head: ParsedHead): boolean {
    this.#timerOff()
    const go = this.#handler.onUpstreamHead(head.status, head.rawHeaders, head.statusText, true)
    if (this.#state !== 'running') return false
    if (!go) this.#pause()
    else if (this.#complete === undefined && (this.#phase === 'parse' || this.#remaining > 0)) this.#armBody()
    return true
  }

  /** Content-Length body bytes: the response's share of `buf` is delivered, the rest is leftover. */
  #selfBytes(buf: Buffer): void {
    const n = Math.min(this.#remaining, buf.length)
    if (n > 0) {
      this.#remaining -= n
      this.#deliver(n === buf.length ? buf : buf.subarray(0, n))
      if (this.#state !== 'running') return
    }
    if (n < buf.length) this.#leftover = true
    if (this.#remaining === 0) this.#read(NO_TRAILERS)
  }

  /**
   * The response was read whole: the connection goes back to the agent (kept, or closed), and the end
   * is delivered after what the handler has not taken yet.
   */
  #read(trailers: readonly string[]): void {
    this.#phase = 'done'
    this.#complete = undefined
    this.#timerOff()
    const conn = this.#conn
    this.#conn = undefined
    this.#state = 'read'
    if (!this.#bodySent) this.#pump?.stop()
    this.#pump = undefined
    conn?.release(this.#keepAlive && !this.#closeAfter && this.#bodySent && !this.#leftover ? this.#keepMs() : 0)
    this.#trailers = trailers
    this.#flush()
  }

  /** How long the connection may stay idle now: `keepAlive`, shortened by the server's hint. */
  #keepMs(): number {
    const keep = this.#agent.keepAliveMs
    const hint = this.#hintMs
    return Math.max(0, hint < 0 ? keep : Math.min(keep, hint - KEEP_ALIVE_HINT_MARGIN_MS))
  }

  #deliver(chunk: Buffer): void {
    if (this.#paused || this.#backlog.length > 0) {
      this.#backlog.push(chunk)
      return
    }
    if (!this.#handler.onUpstreamData(chunk)) this.#pause()
  }

  /** Delivers the backlog, then the end, while the handler takes them. */
  #flush(): void {
    this.#flushing = true
    const backlog = this.#backlog
    while (!this.#paused && backlog.length > 0 && this.#state !== 'done') {
      if (!this.#handler.onUpstreamData(backlog.shift() as Buffer)) this.#paused = true
    }
    this.#flushing = false
    if (this.#state === 'done') return
    if (this.#paused) return this.#pause()
    const trailers = this.#trailers
    if (trailers === undefined || backlog.length > 0) return
    this.#trailers = undefined
    this.#state = 'done'
    this.#handler.onUpstreamEnd(trailers)
  }

  #pause(): void {
    this.#paused = true
    const conn = this.#conn
    if (conn === undefined) return
    conn.socket.pause()
    if (this.#timer === 'body') this.#timerOff()
  }

  // --- timers and the end -----------------------------------------------------------------------

  #arm(timer: Timer, ms: number): void {
    this.#timer = timer
    this.#conn?.arm(ms)
  }

  /** (Re)arms the body timeout, unless there is none or the body is paused. */
  #armBody(): void {
    const ms = this.#request?.bodyTimeoutMs ?? 0
    if (ms > 0 && !this.#paused) this.#arm('body', ms)
  }

  #timerOff(): void {
    if (this.#timer === 'none') return
    this.#timer = 'none'
    this.#conn?.disarm()
  }

  #fail(err: Error): void {
    const state = this.#state
    if (state === 'done') return
    this.#state = 'done'
    this.#backlog.length = 0
    this.#trailers = undefined
    const body = this.#request?.body
    if (this.#pump === undefined && isStream(body)) body.off('error', this.#onEarlyBodyError)
    this.#pump?.stop()
    this.#pump = undefined
    this.#timerOff()
    const conn = this.#conn
    this.#conn = undefined
    conn?.destroy()
    if (state === 'queued') this.#agent.withdraw(this)
    this.#handler.onUpstreamError(err)
  }
}

const EMPTY_CHUNK = Buffer.alloc(0)

function isStream(body: unknown): body is Readable {
  return typeof (body as Readable | undefined)?.once === 'function'
}

/** `name` equals `lower` ignoring ASCII case (`lower`: `a-z` and `-` only, of the same length). */
function is(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

function uncork(socket: { uncork(): void }): void {
  socket.uncork()
}

function protocolError(err: ParseError): SwitchyardError {
  return new SwitchyardError('SWY_UPSTREAM_PROTOCOL', `${ERROR_CODES.SWY_UPSTREAM_PROTOCOL.text}: ${err.code}`, {
    cause: err,
  })
}
