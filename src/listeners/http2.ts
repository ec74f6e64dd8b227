/**
 * The HTTP/2 side of an HTTP listener (`http2:` in the listener config). The listener's own socket
 * server accepts every connection and hands the HTTP/2 ones here: on `https`, those that chose `h2` by
 * ALPN; on plain `http`, those that open with the HTTP/2 connection preface (prior knowledge, RFC 9113
 * §3.3), told apart by `sniffPreface`. Requests arrive through node:http2's compatibility API and take
 * the same proxy path as HTTP/1.1 ones.
 *
 * Sessions are tracked so that they can be closed gracefully: an idle session (no open stream for the
 * listener's `timeouts.idle`) and every session on drain get a GOAWAY and close once their open streams
 * finish; `destroyAll()` ends whatever is left when the grace period is over.
 *
 * Liveness: every `pingInterval`, each session with open streams is sent a PING; one that does not
 * answer within `pingTimeout` is destroyed, which closes its streams (and so ends their requests and
 * aborts their upstream requests). This is what ends a session that nghttp2 terminated after a
 * protocol error (an oversized DATA frame, a bad pad length): Node 20 stops reading it and emits
 * nothing at all, on the session, its streams, their requests or the socket, even when the peer
 * closes (Node 22.23 and 24 end such a session themselves).
 */
import {
  createServer,
  type Http2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
  type ServerHttp2Session,
  type ServerHttp2Stream,
  type Settings,
} from 'node:http2'
import type { Socket } from 'node:net'
import { markUnresponsive } from '../l7/client.js'
import type { Http2Metrics } from '../metrics/index.js'

export interface Http2Options {
  readonly maxConcurrentStreams: number
  /** Close a session after this long without an open stream. 0: never. */
  readonly idleMs: number
  /** How often a session with open streams is pinged. */
  readonly pingIntervalMs: number
  /** How long a PING may go unanswered before its session is destroyed. */
  readonly pingTimeoutMs: number
  /** SETTINGS_MAX_HEADER_LIST_SIZE: the largest header list a client may send (`limits.maxHeaderBytes`). */
  readonly maxHeaderListBytes: number
  /** Header fields a request may have (`limits.maxHeaderCount`): 431 beyond, on the request path. */
  readonly maxHeaderCount: number
}

type RequestListener = (req: Http2ServerRequest, res: Http2ServerResponse, expectContinue: boolean) => void

/** Open streams of one session, for the idle timeout. */
interface SessionState {
  open: number
  /** The idle timer fired while streams were open; it is started again when they are done. */
  expired: boolean
  /** A liveness PING is unanswered. */
  pinging: boolean
  /** A stream opened since the last liveness round (even one reset at once). */
  busy: boolean
}

export class Http2Front {
  readonly #server: Http2Server
  readonly #sessions = new Map<ServerHttp2Session, SessionState>()
  readonly #metrics: Http2Metrics
  #options: Http2Options
  #draining = false
  #liveness: NodeJS.Timeout | undefined

  constructor(options: Http2Options, metrics: Http2Metrics, onRequest: RequestListener) {
    this.#options = options
    this.#startLiveness()
    this.#metrics = metrics
    // node:http2 refuses a header block of more pairs than maxHeaderListPairs (pseudo-headers
    // included) with ENHANCE_YOUR_CALM; room above maxHeaderCount lets the request path answer 431.
    this.#server = createServer({
      settings: settingsOf(options),
      maxHeaderListPairs: Math.max(128, options.maxHeaderCount + 16),
    })
    this.#server.on('request', (req, res) => onRequest(req, res, false))
    this.#server.on('checkContinue', (req, res) => onRequest(req, res, true))
    // CONNECT: extended CONNECT (RFC 8441, a WebSocket over HTTP/2) is tunnelled; a plain one is
    // answered 501 on the request path.
    this.#server.on('connect', (req, res) => onRequest(req, res, false))
    this.#server.on('session', this.#onSession)
    this.#server.on('stream', this.#onStream)
    // A protocol error costs its session only (node:http2 then destroys it); nothing to answer.
    this.#server.on('sessionError', () => {})
  }

  /** Open sessions. */
  get sessions(): number {
    return this.#sessions.size
  }

  /** Takes over a connection that speaks HTTP/2 (ALPN `h2`, or a sniffed preface). */
  accept(socket: Socket): void {
    if (this.#draining) {
      socket.destroy()
      return
    }
    this.#server.emit('connection', socket)
  }

  /** New settings and idle timeout: for new sessions, and announced to open ones. */
  configure(options: Http2Options): void {
    if (
      options.maxConcurrentStreams !== this.#options.maxConcurrentStreams ||
      options.maxHeaderListBytes !== this.#options.maxHeaderListBytes
    ) {
      const settings = settingsOf(options)
      this.#server.updateSettings(settings)
      for (const session of this.#sessions.keys()) if (!session.closed && !session.destroyed) session.settings(settings)
    }
    const pingChanged = options.pingIntervalMs !== this.#options.pingIntervalMs
    this.#options = options
    if (pingChanged) this.#startLiveness()
  }

  #startLiveness(): void {
    if (this.#liveness !== undefined) clearInterval(this.#liveness)
    this.#liveness = setInterval(() => this.#checkLiveness(), this.#options.pingIntervalMs)
    this.#liveness.unref()
  }

  /**
   * Pings every session with open streams, or that opened one since the last round; one that does not
   * answer in time is destroyed. The second kind is the rapid-reset flood (CVE-2023-44487): nghttp2
   * answers it with a GOAWAY and stops reading, and on Node 20 the session then lingers with no stream
   * and no event, until this PING goes unanswered.
   */
  #checkLiveness(): void {
    const timeoutMs = this.#options.pingTimeoutMs
    for (const [session, state] of this.#sessions) {
      const busy = state.busy
      state.busy = false
      if ((state.open === 0 && !busy) || state.pinging || session.destroyed) continue
      state.pinging = true
      const deadline = setTimeout(() => {
        markUnresponsive(session)
        session.destroy()
      }, timeoutMs)
      deadline.unref()
      const sent = session.ping((err) => {
        clearTimeout(deadline)
        state.pinging = false
        if (err !== null && !session.destroyed) session.destroy()
      })
      if (!sent) {
        clearTimeout(deadline)
        state.pinging = false
      }
    }
  }

  /** Sends every session a GOAWAY: open streams finish, new ones are refused, then the session closes. */
  drain(): void {
    this.#draining = true
    for (const session of this.#sessions.keys()) if (!session.closed) session.close()
  }

  /** Ends every session now (after the drain grace period). */
  destroyAll(): void {
    for (const session of this.#sessions.keys()) session.destroy()
    if (this.#liveness !== undefined) clearInterval(this.#liveness)
    this.#liveness = undefined
  }

  readonly #onSession = (session: ServerHttp2Session): void => {
    const state: SessionState = { open: 0, expired: false, pinging: false, busy: false }
    this.#sessions.set(session, state)
    this.#metrics.opened.value++
    this.#metrics.active.value++
    session.once('close', () => {
      this.#sessions.delete(session)
      this.#metrics.active.value--
    })
    if (this.#draining) {
      session.close()
      return
    }
    // node:http2 restarts the timer on every frame and fires it after `idleMs` of silence, once. A
    // session whose streams are merely slow (a long poll) is left alone, and the timer is started
    // again when its last stream closes.
    if (this.#options.idleMs > 0) this.#armIdle(session, state)
  }

  #armIdle(session: ServerHttp2Session, state: SessionState): void {
    session.setTimeout(this.#options.idleMs, () => {
      if (state.open > 0) state.expired = true
      else if (!session.closed) session.close()
    })
  }

  readonly #onStream = (stream: ServerHttp2Stream): void => {
    const session = stream.session as ServerHttp2Session
    const state = this.#sessions.get(session)
    if (state === undefined) return
    state.open++
    state.busy = true
    stream.once('close', () => {
      if (--state.open === 0 && state.expired) {
        state.expired = false
        if (!session.closed && !session.destroyed) this.#armIdle(session, state)
      }
    })
  }
}

function settingsOf(options: Http2Options): Settings {
  // SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441): clients may open WebSockets with extended CONNECT.
  return {
    maxConcurrentStreams: options.maxConcurrentStreams,
    maxHeaderListSize: options.maxHeaderListBytes,
    enablePush: false,
    enableConnectProtocol: true,
  }
}

/** First bytes of the HTTP/2 client connection preface (RFC 9113 §3.4): "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
const PREFACE_START = Buffer.from('PRI', 'latin1')

/**
 * Reads the first bytes of a plain connection, then calls `route(socket, true)` when they open the
 * HTTP/2 preface and `route(socket, false)` otherwise, with those bytes put back. A connection that
 * sends nothing for `timeoutMs`, or fails first, is destroyed without a call.
 */
export function sniffPreface(socket: Socket, timeoutMs: number, route: (socket: Socket, h2: boolean) => void): void {
  let seen: Buffer | undefined
  const done = (): void => {
    clearTimeout(timer)
    socket.removeListener('data', onData)
    socket.removeListener('error', onError)
    socket.removeListener('close', done)
  }
  const onData = (chunk: Buffer): void => {
    seen = seen === undefined ? chunk : Buffer.concat([seen, chunk])
    const n = Math.min(seen.length, PREFACE_START.length)
    const h2 = seen.compare(PREFACE_START, 0, n, 0, n) === 0
    // A lone "P" or "PR" could still be either; wait for a third byte.
    if (h2 && seen.length < PREFACE_START.length) return
    done()
    socket.pause()
    socket.unshift(seen)
    route(socket, h2)
    // node:http reads straight from the handle once it has the connection; the bytes put back reach
    // it by resuming the stream, ahead of anything read later. node:http2 takes them from the buffer.
    if (!h2) socket.resume()
  }
  const onError = (): void => {
    done()
    socket.destroy()
  }
  const timer = setTimeout(onError, timeoutMs)
  socket.on('data', onData)
  socket.on('error', onError)
  socket.on('close', done)
}
