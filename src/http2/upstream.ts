/**
 * HTTP/2 to servers: a pool's `protocol: h2` (over TLS, agreed by ALPN) or `h2c` (in clear, with
 * prior knowledge, RFC 9113 §3.3). The ServerConnections of one server are a few node:http2 client
 * sessions, each carrying up to `maxConcurrentStreams` requests at once (fewer when the server's
 * SETTINGS say so). A request takes the oldest session with a free stream, so that spare sessions go
 * idle and close; a new session is opened only when every one is full, up to `maxConnections`; past
 * that, requests wait in a FIFO queue for a free stream.
 *
 * - Flow control is node:http2's: a paused response stops being read, so the server's window is not
 *   opened again until the client takes the data; a request body is written as the server's window
 *   allows (`write()` returning false waits for `drain`).
 * - A stream the server refused (RST_STREAM REFUSED_STREAM, also what a GOAWAY does to the streams
 *   past its last id) never reached the application: it is sent again once, on another stream, when
 *   its body can be replayed.
 * - Trailers are relayed. A gRPC "trailers-only" response (one HEADERS frame that ends the stream) is
 *   split into a head and trailers, so that it reaches a client over HTTP/1.1 or HTTP/2 intact.
 * - A session idle for `keepAliveMs` is closed (GOAWAY); 0 closes it as soon as it is idle. A session
 *   that carried `maxRequestsPerConnection` streams takes no more and closes once they end.
 */

import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http2'
import { type ClientHttp2Session, type ClientHttp2Stream, constants, connect as h2connect } from 'node:http2'
import { connect as netConnect, type Socket } from 'node:net'
import { type TLSSocket, connect as tlsConnect } from 'node:tls'
import { ERROR_CODES, SwitchyardError } from '../core/errors.js'
import { connectError } from '../http1/upstream-connection.js'
import type { ServerConnections, UpstreamHandler, UpstreamRequest, UpstreamTry } from '../l7/upstream.js'
import { connectWithPrefix } from '../upstream/send-proxy.js'
import { SessionCache, tlsConnectOptions, type UpstreamTls } from '../upstream/tls.js'
import { addField } from './fields.js'
import { isGrpcContentType } from './grpc.js'

export interface Http2Settings {
  readonly host: string
  readonly port: number
  /** `host:port`: the `:authority` of a request that names no host. */
  readonly authority: string
  /** TLS (`h2`, by ALPN); undefined: `h2c` in clear. */
  readonly tls: UpstreamTls | undefined
  /** Most sessions to the server. */
  readonly maxConnections: number
  /** Most streams at once on one session (the server's SETTINGS may lower it). */
  readonly maxConcurrentStreams: number
  /** How long an idle session is kept; 0: closed once idle. */
  readonly keepAliveMs: number
  readonly connectMs: number
  /** Streams one session carries before it is closed; 0: no limit. */
  readonly maxRequestsPerConnection: number
  /** Bytes each connection opens with, before TLS (a PROXY protocol header); undefined: none. */
  readonly prefix?: Buffer | undefined
}

/** Receive windows: 1 MiB per stream and 16 MiB per session (node:http2's defaults are 64 KiB). */
const STREAM_WINDOW_BYTES = 1024 * 1024
const SESSION_WINDOW_BYTES = 16 * 1024 * 1024
/** node:http2's memory cap per session, in MB (default 10), above the windows it must hold. */
const MAX_SESSION_MEMORY_MB = 64

/** Request fields that HTTP/2 forbids (RFC 9113 §8.2.2); `te` is kept when it says `trailers`. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
  'host',
])

interface Session {
  readonly h2: ClientHttp2Session
  /** Streams open now. */
  active: number
  /** Streams started on it, in all. */
  started: number
  /** Most streams at once: ours, or the server's SETTINGS_MAX_CONCURRENT_STREAMS when lower. */
  limit: number
  /** No new streams: closing, or told GOAWAY. */
  closing: boolean
  idleTimer: NodeJS.Timeout | undefined
  /** The error that destroyed the session, if one did. */
  error: Error | undefined
}

export class Http2Connections implements ServerConnections {
  readonly #s: Http2Settings
  readonly #scheme: 'http' | 'https'
  readonly #sessions: Session[] = []
  /** Sessions being connected. */
  #connecting = 0
  /** Sockets being connected, which `destroy()` ends. */
  readonly #sockets = new Set<Socket>()
  /** Calls waiting for a free stream, oldest first. */
  readonly #queue: H2Call[] = []
  #closing = false
  #destroyed = false
  #whenClosed: { promise: Promise<void>; resolve: () => void } | undefined
  readonly #tlsSessions = new SessionCache()

  constructor(settings: Http2Settings) {
    this.#s = settings
    this.#scheme = settings.tls === undefined ? 'http' : 'https'
  }

  call(handler: UpstreamHandler): UpstreamTry {
    return new H2Call(this, handler)
  }

  get scheme(): 'http' | 'https' {
    return this.#scheme
  }

  get authority(): string {
    return this.#s.authority
  }

  /** A call asks for a stream: now, or when one frees up. */
  dispatch(call: H2Call): void {
    if (this.#destroyed || this.#closing)
      return call.fail(new SwitchyardError('SWY_SHUTTING_DOWN', 'the connections to the server are closing'))
    const session = this.#free()
    if (session !== undefined) return this.#start(session, call)
    this.#queue.push(call)
    this.#grow()
  }

  /** A call that no longer waits (aborted). */
  unqueue(call: H2Call): void {
    const at = this.#queue.indexOf(call)
    if (at >= 0) this.#queue.splice(at, 1)
  }

  /** Whether this pool was destroyed (its streams' resets are its own doing). */
  get destroyed(): boolean {
    return this.#destroyed
  }

  /** A stream of `session` closed: its slot serves the queue, or the session idles. */
  streamClosed(session: Session): void {
    session.active--
    this.#serveQueue()
    this.#idle(session)
  }

  /** A session with no open stream: closed when closing or retired, else after `keepAliveMs`. */
  #idle(session: Session): void {
    if (session.active > 0 || this.#sessions.indexOf(session) < 0 || session.idleTimer !== undefined) return
    if (session.closing || this.#closing || this.#s.keepAliveMs === 0) {
      session.closing = true
      return session.h2.close()
    }
    session.idleTimer = setTimeout(() => {
      session.idleTimer = undefined
      session.closing = true
      session.h2.close()
    }, this.#s.keepAliveMs)
    session.idleTimer.unref()
  }

  close(): Promise<void> {
    this.#closing = true
    this.#whenClosed ??= withResolvers()
    for (const s of this.#sessions) if (s.active === 0) s.h2.close()
    this.#maybeClosed()
    return this.#whenClosed.promise
  }

  destroy(): Promise<void> {
    this.#destroyed = true
    this.#closing = true
    this.#whenClosed ??= withResolvers()
    const err = new SwitchyardError('SWY_SHUTTING_DOWN', 'the connections to the server were closed')
    for (const call of this.#queue.splice(0)) call.fail(err)
    for (const s of [...this.#sessions]) s.h2.destroy()
    for (const socket of [...this.#sockets]) socket.destroy()
    this.#maybeClosed()
    return this.#whenClosed.promise
  }

  #maybeClosed(): void {
    if (this.#closing && this.#sessions.length === 0 && this.#connecting === 0) this.#whenClosed?.resolve()
  }

  /** The oldest session with a free stream (not closing, not gone: its streams close before it does). */
  #free(): Session | undefined {
    for (const s of this.#sessions) if (!s.closing && s.active < s.limit && !s.h2.destroyed && !s.h2.closed) return s
    return undefined
  }

  #start(session: Session, call: H2Call): void {
    if (session.idleTimer !== undefined) clearTimeout(session.idleTimer)
    session.idleTimer = undefined
    session.active++
    session.started++
    const max = this.#s.maxRequestsPerConnection
    if (max > 0 && session.started >= max) session.closing = true
    call.start(session)
  }

  #serveQueue(): void {
    while (this.#queue.length > 0) {
      const session = this.#free()
      if (session === undefined) break
      this.#start(session, this.#queue.shift() as H2Call)
    }
    if (this.#queue.length > 0) this.#grow()
  }

  /** Opens sessions while the queue holds more calls than the sessions being connected will take. */
  #grow(): void {
    const s = this.#s
    if (this.#destroyed) return
    while (
      this.#queue.length > this.#connecting * s.maxConcurrentStreams &&
      this.#sessions.filter((x) => !x.closing).length + this.#connecting < s.maxConnections
    )
      this.#connect()
  }

  #connect(): void {
    const s = this.#s
    this.#connecting++
    let socket: Socket
    let tcpUp = false
    const tcp = { host: s.host, port: s.port, noDelay: true }
    const tls =
      s.tls === undefined
        ? undefined
        : { ...tlsConnectOptions(s.tls, s.host, s.port, this.#tlsSessions), ALPNProtocols: ['h2'] }
    const onTcpUp = () => {
      tcpUp = true
    }
    if (s.prefix !== undefined) socket = connectWithPrefix(tcp, s.prefix, tls, onTcpUp)
    else if (tls === undefined) socket = netConnect(tcp)
    else {
      socket = tlsConnect(tls)
      socket.setNoDelay(true)
      socket.once('connect', onTcpUp)
    }
    if (tls !== undefined)
      socket.on('session', (session: Buffer) => {
        this.#tlsSessions.session = session
      })
    this.#sockets.add(socket)
    let timedOut = false
    const timer =
      s.connectMs > 0
        ? setTimeout(() => {
            timedOut = true
            socket.destroy()
          }, s.connectMs)
        : undefined
    let settled = false
    const failed = (err: Error | undefined) => {
      if (settled) return
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      socket.destroy()
      this.#sockets.delete(socket)
      this.#connecting--
      const reason = connectError(err, { timedOut, connectMs: s.connectMs, tlsStarted: s.tls !== undefined && tcpUp })
      this.#connectFailed(reason)
    }
    socket.once('error', failed)
    socket.once('close', () => failed(undefined))
    socket.once(s.tls === undefined ? 'connect' : 'secureConnect', () => {
      if (settled) return
      if (s.tls !== undefined && (socket as TLSSocket).alpnProtocol !== 'h2')
        return failed(
          new SwitchyardError(
            'SWY_UPSTREAM_PROTOCOL',
            `the upstream server did not agree to HTTP/2 by ALPN (it chose ${String((socket as TLSSocket).alpnProtocol || 'nothing')})`,
          ),
        )
      settled = true
      if (timer !== undefined) clearTimeout(timer)
      socket.removeListener('error', failed)
      this.#sockets.delete(socket)
      this.#connecting--
      this.#opened(socket)
    })
  }

  #connectFailed(err: SwitchyardError): void {
    // With no session to wait for, the waiting calls fail (and are retried elsewhere, by the exchange).
    if (this.#sessions.length > 0 || this.#connecting > 0) return this.#maybeClosed()
    for (const call of this.#queue.splice(0)) call.fail(err)
    this.#maybeClosed()
  }

  #opened(socket: Socket): void {
    const s = this.#s
    const h2 = h2connect(`${this.#scheme}://${s.authority}`, {
      createConnection: () => socket,
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW_BYTES },
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
      peerMaxConcurrentStreams: s.maxConcurrentStreams,
    })
    const session: Session = {
      h2,
      active: 0,
      started: 0,
      limit: s.maxConcurrentStreams,
      // Even while the pool closes: the queue it was opened for is served first, then it closes idle.
      closing: false,
      idleTimer: undefined,
      error: undefined,
    }
    this.#sessions.push(session)
    h2.on('error', (err: Error) => {
      session.error ??= err
      session.closing = true
    })
    h2.once('connect', () => {
      try {
        h2.setLocalWindowSize(SESSION_WINDOW_BYTES)
      } catch {
        // the session closed meanwhile
      }
    })
    h2.on('remoteSettings', (settings) => {
      const max = settings.maxConcurrentStreams
      if (max !== undefined) session.limit = Math.max(0, Math.min(s.maxConcurrentStreams, max))
      this.#serveQueue()
    })
    h2.on('goaway', () => {
      session.closing = true
    })
    h2.once('close', () => {
      if (session.idleTimer !== undefined) clearTimeout(session.idleTimer)
      session.closing = true
      const at = this.#sessions.indexOf(session)
      if (at >= 0) this.#sessions.splice(at, 1)
      if (this.#queue.length > 0) {
        if (this.#closing) {
          const err = new SwitchyardError('SWY_SHUTTING_DOWN', 'the connections to the server were closed')
          for (const call of this.#queue.splice(0)) call.fail(err)
        } else this.#serveQueue()
      }
      this.#maybeClosed()
    })
    this.#serveQueue()
    // Nothing left for it (the call it was opened for was aborted, or another session took it).
    this.#idle(session)
  }
}

const EMPTY: readonly string[] = []

/** One try over HTTP/2: a stream, or a place in the queue for one. */
class H2Call implements UpstreamTry {
  readonly #owner: Http2Connections
  readonly #handler: UpstreamHandler
  #request: UpstreamRequest | undefined
  #session: Session | undefined
  #stream: ClientHttp2Stream | undefined
  #done = false
  #head = false
  #paused = false
  #resent = false
  #trailers: readonly string[] = EMPTY
  #timer: NodeJS.Timeout | undefined

  constructor(owner: Http2Connections, handler: UpstreamHandler) {
    this.#owner = owner
    this.#handler = handler
  }

  get active(): boolean {
    return !this.#done
  }

  send(request: UpstreamRequest): void {
    this.#request = request
    this.#owner.dispatch(this)
  }

  abort(err: Error): void {
    if (this.#done) return
    this.#cancel()
    this.#finish()
    this.#handler.onUpstreamError(err)
  }

  resume(): void {
    if (!this.#paused) return
    this.#paused = false
    this.#watchBody()
    this.#stream?.resume()
  }

  /** Fails the try (refused, no session, a timeout, the server's reset). */
  fail(err: Error): void {
    if (this.#done) return
    this.#finish()
    this.#handler.onUpstreamError(err)
  }

  /** Opens the stream on `session`. */
  start(session: Session): void {
    const request = this.#request as UpstreamRequest
    if (this.#done) return this.#owner.streamClosed(session)
    this.#session = session
    const body = request.body
    const empty = body === null || (Buffer.isBuffer(body) && body.length === 0)
    let stream: ClientHttp2Stream
    try {
      stream = session.h2.request(outgoingHeaders(request, this.#owner.scheme, this.#owner.authority), {
        endStream: empty,
      })
    } catch (err) {
      this.#owner.streamClosed(session)
      this.#session = undefined
      // The session went away or ran out of stream ids under us: nothing was sent, so another takes it.
      const code = (err as { code?: unknown }).code
      if (
        code === 'ERR_HTTP2_INVALID_SESSION' ||
        code === 'ERR_HTTP2_GOAWAY_SESSION' ||
        code === 'ERR_HTTP2_OUT_OF_STREAMS'
      ) {
        session.closing = true
        return this.#owner.dispatch(this)
      }
      return this.fail(
        new SwitchyardError('SWY_INTERNAL', `the request could not be sent over HTTP/2: ${(err as Error).message}`, {
          cause: err,
        }),
      )
    }
    this.#stream = stream
    let closed = false
    stream.once('close', () => {
      if (closed) return
      closed = true
      this.#owner.streamClosed(session)
      this.#onClose(stream)
    })
    stream.on('error', () => {}) // the close that follows says what happened
    stream.on('response', (headers, flags) => this.#onResponse(headers, flags))
    stream.on('data', (chunk: Buffer) => this.#onData(chunk))
    stream.on('trailers', (headers) => {
      this.#trailers = flatHeaders(headers)
    })
    stream.once('end', () => this.#onEnd(stream))
    const headersMs = request.headersTimeoutMs
    if (headersMs > 0)
      this.#timer = setTimeout(
        () => this.#timeout('SWY_UPSTREAM_TIMEOUT', `no response head within ${headersMs} ms`),
        headersMs,
      )
    if (!empty) void this.#writeBody(stream, body as NonNullable<UpstreamRequest['body']>)
  }

  async #writeBody(stream: ClientHttp2Stream, body: NonNullable<UpstreamRequest['body']>): Promise<void> {
    if (Buffer.isBuffer(body)) {
      stream.end(body)
      return
    }
    // Read by hand rather than `for await`: leaving the loop would destroy the client's request stream.
    const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
    try {
      for (;;) {
        const next = await chunks.next()
        if (this.#done || stream.destroyed) return
        if (next.done === true) {
          stream.end()
          return
        }
        if (!stream.write(next.value)) await writable(stream)
      }
    } catch (err) {
      if (this.#done) return
      this.#cancel()
      this.#finish()
      this.#handler.onUpstreamError(err as Error)
    }
  }

  #onResponse(headers: IncomingHttpHeaders, flags: number): void {
    if (this.#done) return
    this.#clearTimer()
    this.#head = true
    const status = Number(headers[':status'])
    let raw = flatHeaders(headers)
    if ((flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0 && headers['grpc-status'] !== undefined) {
      // gRPC trailers-only: all but the content type is trailing metadata.
      const split = splitTrailersOnly(raw)
      raw = split.head
      this.#trailers = split.trailers
    }
    if (!this.#handler.onUpstreamHead(status, raw, '', false)) this.#pause()
    else if (!this.#done) this.#watchBody()
  }

  #onData(chunk: Buffer): void {
    if (this.#done) return
    this.#timer?.refresh()
    if (!this.#handler.onUpstreamData(chunk)) this.#pause()
  }

  #onEnd(stream: ClientHttp2Stream): void {
    if (this.#done) return
    // node:http2 also ends the readable side of a reset stream: that is a failure, which `close` reports.
    const code = stream.rstCode
    if (!this.#head || (code !== undefined && code !== constants.NGHTTP2_NO_ERROR)) return
    this.#finish()
    this.#handler.onUpstreamEnd(this.#trailers)
    // The response is whole while the request body still runs: the rest of the request is not needed
    // (RST_STREAM NO_ERROR, RFC 9113 §8.1). A request that was sent whole closes on its own.
    if (!stream.writableEnded && !stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_NO_ERROR)
  }

  #onClose(stream: ClientHttp2Stream): void {
    if (this.#done) return
    const code = stream.rstCode ?? constants.NGHTTP2_NO_ERROR
    const request = this.#request as UpstreamRequest
    const replayable = request.body === null || Buffer.isBuffer(request.body)
    if (code === constants.NGHTTP2_REFUSED_STREAM && !this.#head && replayable && !this.#resent) {
      // Not processed (RFC 9113 §8.7): once more, on another stream.
      this.#resent = true
      this.#clearTimer()
      this.#stream = undefined
      this.#session = undefined
      this.#handler.onUpstreamResent?.()
      return this.#owner.dispatch(this)
    }
    const session = this.#session
    const sessionError = session?.error
    // node:http2 closes the streams of a session that died with CANCEL too: only a live session's
    // CANCEL is the server's.
    const sessionAlive = session !== undefined && sessionError === undefined && !session.h2.destroyed
    let err: SwitchyardError
    if (this.#owner.destroyed)
      err = new SwitchyardError('SWY_SHUTTING_DOWN', 'the connections to the server were closed')
    else if (code === constants.NGHTTP2_CANCEL && sessionAlive)
      err = new SwitchyardError('SWY_UPSTREAM_CANCELLED', undefined, { details: { http2Code: code } })
    else if (code === constants.NGHTTP2_PROTOCOL_ERROR || code === constants.NGHTTP2_COMPRESSION_ERROR)
      err = new SwitchyardError(
        'SWY_UPSTREAM_PROTOCOL',
        `${ERROR_CODES.SWY_UPSTREAM_PROTOCOL.text}: HTTP/2 error ${http2CodeName(code)}`,
      )
    else
      err = new SwitchyardError(
        'SWY_UPSTREAM_RESET',
        `${ERROR_CODES.SWY_UPSTREAM_RESET.text}: ${
          code !== constants.NGHTTP2_NO_ERROR
            ? `HTTP/2 RST_STREAM ${http2CodeName(code)}`
            : sessionError !== undefined
              ? String((sessionError as { code?: unknown }).code ?? sessionError.message)
              : 'the stream closed before the response ended'
        }`,
        sessionError === undefined ? undefined : { cause: sessionError, details: { http2Code: code } },
      )
    this.fail(err)
  }

  #timeout(code: 'SWY_UPSTREAM_TIMEOUT' | 'SWY_UPSTREAM_BODY_TIMEOUT', detail: string): void {
    this.#timer = undefined
    if (this.#done) return
    this.#cancel()
    this.#finish()
    this.#handler.onUpstreamError(new SwitchyardError(code, `${ERROR_CODES[code].text}: ${detail}`))
  }

  /** The body-silence timer, while the response is being read. */
  #watchBody(): void {
    const ms = (this.#request as UpstreamRequest).bodyTimeoutMs
    if (ms <= 0 || this.#done) return
    if (this.#timer !== undefined) this.#timer.refresh()
    else this.#timer = setTimeout(() => this.#timeout('SWY_UPSTREAM_BODY_TIMEOUT', `no body data for ${ms} ms`), ms)
  }

  #pause(): void {
    if (this.#done) return
    this.#paused = true
    this.#clearTimer() // a body the client is slow to take is not the server's silence
    this.#stream?.pause()
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  /** Resets the stream (CANCEL), or leaves the queue. */
  #cancel(): void {
    const stream = this.#stream
    if (stream === undefined) this.#owner.unqueue(this)
    else if (!stream.closed && !stream.destroyed) stream.close(constants.NGHTTP2_CANCEL)
  }

  #finish(): void {
    this.#done = true
    this.#clearTimer()
  }
}

/** The request head as node:http2 takes it: pseudo-headers, lower-case names, no connection-specific field. */
function outgoingHeaders(request: UpstreamRequest, scheme: string, fallbackAuthority: string): OutgoingHttpHeaders {
  const out: Record<string, string | string[]> = {
    ':method': request.method,
    ':path': request.path,
    ':scheme': scheme,
  }
  let authority: string | undefined
  const raw = request.headers
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase()
    const value = raw[i + 1] as string
    if (name.charCodeAt(0) === 58 /* : */) continue
    if (CONNECTION_SPECIFIC.has(name)) {
      if (name === 'host') authority ??= value
      continue
    }
    if (name === 'te') {
      if (value.trim().toLowerCase() === 'trailers') out.te = 'trailers'
      continue
    }
    addField(out, name, value)
  }
  out[':authority'] = authority ?? fallbackAuthority
  const type = out['content-type']
  // gRPC servers may insist on `te: trailers` (the gRPC spec asks for it); HTTP/1 hops drop it.
  if (typeof type === 'string' && isGrpcContentType(type)) out.te = 'trailers'
  return out
}

/** A node:http2 header object as `[name, value, ...]`, without pseudo-headers. */
function flatHeaders(headers: IncomingHttpHeaders): string[] {
  const out: string[] = []
  for (const name in headers) {
    if (name.charCodeAt(0) === 58 /* : */) continue
    const value = headers[name]
    if (Array.isArray(value)) for (const v of value) out.push(name, v)
    else if (value !== undefined) out.push(name, String(value))
  }
  return out
}

/** A gRPC trailers-only response: the content type as the head, every other field as trailers. */
function splitTrailersOnly(raw: readonly string[]): { head: string[]; trailers: string[] } {
  const head: string[] = []
  const trailers: string[] = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i] as string
    if (name === 'content-type') head.push(name, raw[i + 1] as string)
    else trailers.push(name, raw[i + 1] as string)
  }
  return { head, trailers }
}

const CODE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(constants)
    .filter(([k]) => k.startsWith('NGHTTP2_') && !k.startsWith('NGHTTP2_ERR_') && !k.startsWith('NGHTTP2_FLAG_'))
    .filter(([k]) =>
      /^NGHTTP2_(NO_ERROR|PROTOCOL_ERROR|INTERNAL_ERROR|FLOW_CONTROL_ERROR|SETTINGS_TIMEOUT|STREAM_CLOSED|FRAME_SIZE_ERROR|REFUSED_STREAM|CANCEL|COMPRESSION_ERROR|CONNECT_ERROR|ENHANCE_YOUR_CALM|INADEQUATE_SECURITY|HTTP_1_1_REQUIRED)$/.test(
        k,
      ),
    )
    .map(([k, v]) => [v as number, k.slice(8)]),
)

/** An HTTP/2 error code's name (RFC 9113 §7): `CANCEL`, `REFUSED_STREAM`, ... */
function http2CodeName(code: number): string {
  return CODE_NAMES[code] ?? `0x${code.toString(16)}`
}

/** Resolves when `stream` can take more, or is gone. */
function writable(stream: ClientHttp2Stream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.removeListener('drain', done)
      stream.removeListener('close', done)
      resolve()
    }
    stream.once('drain', done)
    stream.once('close', done)
  })
}

function withResolvers(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {}
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}
