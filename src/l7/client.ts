/**
 * The client side of an exchange, behind one small interface: read the head, read the body, write the
 * head, write the body, end with trailers, abort. Today node:http (HTTP/1.x) and node:http2's
 * compatibility API (HTTP/2) sit under it; the exchange, the filters, routing, retries and logging see
 * only this interface, so another engine can replace them.
 *
 * Lifecycle: `watch(onGone)` calls `onGone` once when the client can no longer be answered, on the
 * first of the events that can say so. Node does not always emit `close` on the response:
 * - HTTP/1.1: a pipelined request whose response is still queued behind another gets no `close` when
 *   the connection goes away, so such a request watches the socket's own `close` (one listener per
 *   socket, shared by the requests on it);
 * - HTTP/2: the response, its stream, and the session (one listener per session) are watched. A
 *   session that nghttp2 ended after a protocol error emits nothing at all; the listener's liveness
 *   ping (listeners/http2.ts) destroys it, which closes its streams (Node 22.23 and 24 end such a
 *   session themselves).
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { constants, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from 'node:http2'
import type { Socket } from 'node:net'
import { Duplex, type Readable } from 'node:stream'

import { bareIp } from '../core/address.js'
import { addField } from '../http2/fields.js'
import { peerAddress } from '../listeners/proxy-protocol.js'

export type Protocol = 'http/1.0' | 'http/1.1' | 'h2'

/** A client connection given up by its engine to a tunnel (ClientSide#switchProtocols). */
export interface SwitchedConnection {
  readonly socket: Duplex
  /** Bytes the client sent after its request head, read by the engine already. */
  readonly head: Buffer
}

export interface ClientSide {
  readonly protocol: Protocol
  /**
   * The major version of the request: 2 for HTTP/2; for HTTP/1, the request line's (1, but 0 for an
   * HTTP/0.9 request and 2 for one naming `HTTP/2.0`, both of which the request path refuses).
   */
  readonly versionMajor: number
  readonly method: string
  /** The request target as sent. */
  readonly url: string
  /** `[name, value, ...]` as received. */
  readonly rawHeaders: readonly string[]
  /**
   * Strict llhttp read `rawHeaders` (our own engine): every name is a token and every value is free of
   * controls, so the upstream side need not check them again. False where another parser read them.
   */
  readonly headersChecked: boolean
  /** The address of the connection's peer, without the `::ffff:` prefix. */
  readonly peerIp: string
  /** The client's connection (a TLSSocket on `https` listeners: its client certificate); undefined when there is none. */
  readonly connection: Socket | undefined
  /** HTTP/2: the request has a body (the HEADERS frame did not end the stream); undefined for HTTP/1.x. */
  readonly h2HasBody: boolean | undefined
  /** The request body. */
  readonly body: Readable
  /** The whole request body has been read. */
  readonly bodyComplete: boolean
  /** The request stream was destroyed before its body was complete (an aborted upload). */
  readonly bodyAborted: boolean
  /** The response head has been written. */
  readonly headersSent: boolean
  /** The client can no longer be written to. */
  readonly gone: boolean
  /** Bytes the client sent for this request so far (HTTP/1: on its socket; HTTP/2: body bytes). */
  bytesIn(): number
  /** Records HTTP/2 body bytes read by the exchange (HTTP/1 counts its socket). */
  countBody(bytes: number): void
  writeContinue(): void
  /**
   * Writes the head; `reason` is dropped for HTTP/2. Throws on an invalid header. `checked`: the first
   * `checked` entries of `headers` are known to be valid (read by strict llhttp), so an engine may skip
   * checking them again.
   */
  writeHead(status: number, reason: string | undefined, headers: readonly string[], checked?: number): void
  /** False when the client is full: wait for `onDrain`. */
  write(chunk: Buffer): boolean
  onDrain(fn: () => void): void
  end(chunk?: Buffer | string, trailers?: readonly [string, string][]): void
  /**
   * Ends the response so that it cannot pass for complete: HTTP/2 RST_STREAM INTERNAL_ERROR (CANCEL
   * when `cancelled`: the server cancelled the request, which a gRPC client then sees), HTTP/1 a closed
   * connection.
   */
  abort(cancelled?: boolean): void
  /**
   * The client asked to switch protocols and its engine can hand the connection to a tunnel: an
   * HTTP/1.1 `Upgrade` with no body, or an HTTP/2 extended CONNECT (RFC 8441). False for every other request.
   */
  readonly canSwitch: boolean
  /** HTTP/2 extended CONNECT: the protocol its `:protocol` names (`websocket`); undefined otherwise. */
  readonly connectProtocol?: string | undefined
  /**
   * Writes `101 Switching Protocols` with `headers` and gives up the connection: the engine reads and
   * writes nothing more on it. Undefined when it cannot (the client is gone, `canSwitch` is false, a
   * head was written). Throws on an invalid header, before anything is written.
   */
  switchProtocols(
    reason: string | undefined,
    headers: readonly string[],
    checked?: number,
  ): SwitchedConnection | undefined
  /** Why the client went away, when Switchyard knows more than "it closed" (HTTP/2 liveness). */
  readonly goneReason: string | undefined
  /** Calls `onGone` once when the client goes away before `unwatch()`. */
  watch(onGone: () => void): void
  unwatch(): void
}

/** HTTP/2 sessions destroyed because they did not answer a liveness PING (see listeners/http2.ts). */
const unresponsive = new WeakSet<Http2Session>()

/** The listener destroyed `session` after an unanswered liveness PING: its requests say so. */
export function markUnresponsive(session: Http2Session): void {
  unresponsive.add(session)
}

/** Requests watching each HTTP/1 socket or HTTP/2 session: one `close` listener per socket or session. */
const watchers = new WeakMap<object, Set<Watched>>()

interface Watched {
  clientClosed(): void
}

function watchClose(target: Socket | Http2Session, who: Watched): void {
  let set = watchers.get(target)
  if (set === undefined) {
    const created = new Set<Watched>()
    set = created
    watchers.set(target, created)
    target.once('close', () => {
      watchers.delete(target)
      for (const w of created) w.clientClosed()
    })
  }
  set.add(who)
}

function unwatchClose(target: Socket | Http2Session | undefined, who: Watched): void {
  if (target !== undefined) watchers.get(target)?.delete(who)
}

/** Fields of a 101 that have no place in HTTP/2's 200 to an extended CONNECT (RFC 8441 §5). */
const SWITCH_ONLY: ReadonlySet<string> = new Set([
  'connection',
  'upgrade',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'sec-websocket-accept',
])

/** A Connection value that names `close`. */
const CLOSE_TOKEN = /(?:^|,)[ \t]*close[ \t]*(?:,|$)/i

abstract class NodeClient implements ClientSide, Watched {
  abstract readonly protocol: Protocol
  readonly headersChecked = false
  /**
   * node:http's upgrade requests come through its `upgrade` event, on the native client side
   * (listeners/http.ts); HTTP/2's extended CONNECT can (Http2Client).
   */
  readonly canSwitch: boolean = false
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly peerIp: string
  #onGone: (() => void) | undefined
  /** The response emitted `close`. */
  protected closed = false

  constructor(req: IncomingMessage, res: ServerResponse) {
    this.req = req
    this.res = res
    this.peerIp = bareIp(req.socket === undefined || req.socket === null ? undefined : peerAddress(req.socket))
  }

  switchProtocols(
    _reason: string | undefined,
    _headers: readonly string[],
    _checked?: number,
  ): SwitchedConnection | undefined {
    return undefined
  }

  get connection(): Socket | undefined {
    return this.req.socket ?? undefined
  }

  get method(): string {
    return this.req.method ?? 'GET'
  }

  get url(): string {
    return this.req.url ?? '/'
  }

  get rawHeaders(): readonly string[] {
    return this.req.rawHeaders
  }

  get body(): Readable {
    return this.req
  }

  get bodyComplete(): boolean {
    return this.req.complete
  }

  get bodyAborted(): boolean {
    return this.req.destroyed && !this.req.complete
  }

  get headersSent(): boolean {
    return this.res.headersSent
  }

  abstract readonly versionMajor: number
  abstract readonly h2HasBody: boolean | undefined
  abstract get gone(): boolean
  abstract get goneReason(): string | undefined
  abstract bytesIn(): number
  abstract countBody(bytes: number): void
  abstract abort(cancelled?: boolean): void
  protected abstract watchMore(): void
  protected abstract unwatchMore(): void

  writeContinue(): void {
    this.res.writeContinue()
  }

  write(chunk: Buffer): boolean {
    return this.res.write(chunk)
  }

  onDrain(fn: () => void): void {
    this.res.once('drain', fn)
  }

  end(chunk?: Buffer | string, trailers?: readonly [string, string][]): void {
    if (trailers !== undefined && trailers.length > 0) this.res.addTrailers(trailers as [string, string][])
    this.res.end(chunk)
  }

  abstract writeHead(status: number, reason: string | undefined, headers: readonly string[]): void

  watch(onGone: () => void): void {
    this.#onGone = onGone
    this.res.once('close', this.#onResClose)
    this.watchMore()
  }

  unwatch(): void {
    this.#onGone = undefined
    this.unwatchMore()
  }

  readonly #onResClose = (): void => {
    this.closed = true
    this.clientClosed()
  }

  clientClosed(): void {
    const fn = this.#onGone
    if (fn === undefined) return
    this.#onGone = undefined
    this.unwatchMore()
    fn()
  }
}

/** A node:http request (HTTP/1.x). */
export class Http1Client extends NodeClient {
  readonly protocol: Protocol
  readonly versionMajor: number
  readonly h2HasBody = undefined
  readonly #socket: Socket | undefined
  /** The socket's bytesRead when the request began. */
  readonly #bytesAtStart: number
  /** The response was queued behind another (pipelining) and watches the socket itself. */
  #watchingSocket = false
  /** The head written says `Connection: close`. */
  #closeWritten = false

  constructor(req: IncomingMessage, res: ServerResponse) {
    super(req, res)
    this.protocol = req.httpVersionMinor === 0 ? 'http/1.0' : 'http/1.1'
    this.versionMajor = req.httpVersionMajor
    this.#socket = req.socket ?? undefined
    this.#bytesAtStart = this.#socket?.bytesRead ?? 0
  }

  /**
   * The connection is to close after this response: the request wants it (node:http's keep-alive
   * flag, and the listener's own rules, in `res.shouldKeepAlive`), or the head written says so.
   */
  get closing(): boolean {
    return !this.res.shouldKeepAlive || this.#closeWritten
  }

  get gone(): boolean {
    return this.closed || this.res.destroyed || this.#socket?.destroyed === true
  }

  get goneReason(): string | undefined {
    return undefined
  }

  bytesIn(): number {
    return this.#socket ? this.#socket.bytesRead - this.#bytesAtStart : 0
  }

  countBody(): void {}

  writeHead(status: number, reason: string | undefined, headers: readonly string[]): void {
    if (reason) this.res.writeHead(status, reason, headers as string[])
    else this.res.writeHead(status, headers as string[])
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = headers[i] as string
      if (name.length === 10 && name.toLowerCase() === 'connection' && CLOSE_TOKEN.test(headers[i + 1] as string))
        this.#closeWritten = true
    }
  }

  abort(): void {
    this.res.destroy()
  }

  /** The request turned out malformed after it was handed over: it ends as if its client had gone. */
  abandon(): void {
    this.closed = true
    this.clientClosed()
  }

  protected watchMore(): void {
    const socket = this.#socket
    if (socket === undefined) return
    if (socket.destroyed) queueMicrotask(() => this.clientClosed())
    // A response that has the socket gets its `close` when the socket goes. One queued behind another
    // (pipelining: node:http has not assigned it the socket yet) gets none: it watches the socket.
    else if (this.res.socket !== socket) {
      this.#watchingSocket = true
      watchClose(socket, this)
    }
  }

  protected unwatchMore(): void {
    if (!this.#watchingSocket) return
    this.#watchingSocket = false
    unwatchClose(this.#socket, this)
  }
}

/** A node:http2 compatibility request. */
export class Http2Client extends NodeClient {
  readonly protocol = 'h2' as const
  readonly versionMajor = 2
  readonly h2HasBody: boolean
  readonly #h2res: Http2ServerResponse
  readonly #session: Http2Session | undefined
  #bodyBytes = 0

  override get connection(): Socket | undefined {
    return (this.#session?.socket as Socket | undefined) ?? undefined
  }

  /** Extended CONNECT (RFC 8441): what `:protocol` names (`websocket`); undefined for every other request. */
  readonly connectProtocol: string | undefined
  override readonly canSwitch: boolean

  constructor(req: Http2ServerRequest, res: Http2ServerResponse) {
    super(req as unknown as IncomingMessage, res as unknown as ServerResponse)
    this.#h2res = res
    const protocol = req.method === 'CONNECT' ? req.headers[':protocol'] : undefined
    this.connectProtocol = typeof protocol === 'string' && protocol !== '' ? protocol : undefined
    this.canSwitch = this.connectProtocol !== undefined
    // HTTP/2 frames the request body: it has one unless the HEADERS frame ended the stream. What an
    // extended CONNECT's stream carries after its head is the tunnel, not a body.
    this.h2HasBody = !req.stream.endAfterHeaders && !this.canSwitch
    this.#session = req.stream.session ?? undefined
  }

  /** An extended CONNECT is, to routing, rules and the server, the GET of an HTTP/1.1 upgrade. */
  override get method(): string {
    return this.canSwitch ? 'GET' : (this.req.method ?? 'GET')
  }

  /**
   * Answers an extended CONNECT with 200 (RFC 8441 §5) and the server's WebSocket fields, and gives
   * up the stream: reads go through the compatibility request (which has the stream's data), writes
   * to the stream itself.
   */
  override switchProtocols(
    _reason: string | undefined,
    headers: readonly string[],
    _checked?: number,
  ): SwitchedConnection | undefined {
    const stream = this.#h2res.stream
    if (!this.canSwitch || this.gone || stream.headersSent) return undefined
    const fields: Record<string, string | string[]> = { ':status': '200' }
    for (let i = 0; i + 1 < headers.length; i += 2) {
      const name = (headers[i] as string).toLowerCase()
      if (SWITCH_ONLY.has(name)) continue
      addField(fields, name, headers[i + 1] as string)
    }
    stream.respond(fields)
    // The request ends when the tunnel closes (the exchange is told then), not when the stream does.
    this.unwatch()
    return { socket: Duplex.from({ readable: this.req, writable: stream }), head: Buffer.alloc(0) }
  }

  get gone(): boolean {
    const stream = this.#h2res.stream
    return this.closed || stream.destroyed || stream.closed
  }

  get goneReason(): string | undefined {
    const session = this.#session
    return session !== undefined && unresponsive.has(session)
      ? 'the client did not answer a PING within http2.pingTimeout'
      : undefined
  }

  bytesIn(): number {
    return this.#bodyBytes
  }

  countBody(bytes: number): void {
    this.#bodyBytes += bytes
  }

  writeHead(status: number, _reason: string | undefined, headers: readonly string[]): void {
    // HTTP/2 has no reason phrase (RFC 9113 §8.3.2), and no hop-by-hop headers.
    this.res.writeHead(status, headers as string[])
  }

  /** node:http2's `addTrailers` takes an object (node:http's takes pairs too): repeated names become arrays. */
  override end(chunk?: Buffer | string, trailers?: readonly [string, string][]): void {
    if (trailers !== undefined && trailers.length > 0) {
      const fields: Record<string, string | string[]> = {}
      for (const [name, value] of trailers) addField(fields, name.toLowerCase(), value)
      this.#h2res.addTrailers(fields)
    }
    this.res.end(chunk)
    // A CONNECT that is not tunnelled (answered 501): its stream is not left open (Node 24 keeps it).
    if (this.req.method === 'CONNECT' && !this.canSwitch) {
      const stream = this.#h2res.stream
      stream.once('finish', () => {
        if (!stream.closed) stream.close(constants.NGHTTP2_NO_ERROR)
      })
    }
  }

  abort(cancelled = false): void {
    // RST_STREAM with INTERNAL_ERROR; a plain destroy() would reset with NO_ERROR, which a client may
    // take for a complete response.
    this.#h2res.stream.close(cancelled ? constants.NGHTTP2_CANCEL : constants.NGHTTP2_INTERNAL_ERROR)
  }

  protected watchMore(): void {
    const stream = this.#h2res.stream
    stream.once('close', this.clientGoneListener)
    const session = this.#session
    if (session === undefined) return
    if (session.destroyed) queueMicrotask(() => this.clientClosed())
    else watchClose(session, this)
  }

  protected unwatchMore(): void {
    this.#h2res.stream.removeListener('close', this.clientGoneListener)
    unwatchClose(this.#session, this)
  }

  readonly clientGoneListener = (): void => {
    this.closed = true
    this.clientClosed()
  }
}
