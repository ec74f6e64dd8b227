/**
 * One request of the native HTTP/1.1 engine, as the exchange sees it (`ClientSide`): the parsed head,
 * the body as a Readable, and the response written through the connection it came on
 * (connection.ts), which puts responses on the wire in request order.
 *
 * Response contract:
 * - `writeHead` checks and serializes the head, and throws on an invalid status, name or value before
 *   anything is written. The head is held until the first body bytes or the end, and leaves with them
 *   in one socket write, so head and a small body take one syscall. A body known whole at that point
 *   (`end(chunk)` with no Content-Length) gets a Content-Length; otherwise HTTP/1.1 clients get chunked
 *   framing and HTTP/1.0 clients a body delimited by closing the connection. No body for HEAD, 1xx,
 *   204, 304.
 * - A given Content-Length is enforced: more bytes than it announces abort the connection, and so do
 *   fewer at `end()`, so that a truncated response never passes for complete.
 * - While an earlier response on the connection is still being written, this one is buffered, up to
 *   QUEUED_RESPONSE_BYTES; beyond that `write()` answers false, and `onDrain` is called once it is on
 *   the wire and the socket has room.
 *
 * Lifecycle: the connection calls `goneNow()` once when the client can no longer be answered (the
 * socket closed, the client sent its FIN, the connection failed); `watch(onGone)` hears of it once.
 */
import type { Socket } from 'node:net'
import { Readable } from 'node:stream'
import type { ClientSide, SwitchedConnection } from '../l7/client.js'
import { CONTINUE, type Framing, finishHead, type GivenHead, headOf, lastChunk, switchingHead } from './response.js'

/** Output a queued response (one behind another on its connection) may buffer before `write()` answers false. */
export const QUEUED_RESPONSE_BYTES = 64 * 1024

/** The request body stream's buffer before the connection stops reading the socket. */
const BODY_HIGH_WATER_BYTES = 64 * 1024

/** A piece of output: a string is latin1 (heads, framing), a Buffer is body bytes. */
export type Piece = string | Buffer

/** What a request needs of its connection. */
export interface ClientPort {
  /** The socket closed or was destroyed. */
  readonly destroyed: boolean
  /** The client's socket. */
  readonly socket: Socket
  /** `timeout=N` for the Keep-Alive header, or '' to send none. */
  readonly keepAliveHint: string
  /** The connection closes after the response being finished now (the listener drains). */
  readonly draining: boolean
  /** Writes to the socket at once (the active response only); false when the socket is full. */
  send(pieces: readonly Piece[]): boolean
  /** The active response ended (all its bytes handed to `send`). */
  ended(client: NativeClient): void
  /** Ends the connection so that no response in progress can pass for complete. */
  abort(): void
  /** The body stream wants more: read the socket again. */
  bodyWanted(): void
  /** The exchange let go of a response it never ended. */
  abandoned(client: NativeClient): void
  /**
   * Writes `head` (a 101) and gives up the connection to a tunnel: the engine reads and writes nothing
   * more on it. Undefined when it cannot (the client is gone, or this is not the active response).
   */
  switchTo(client: NativeClient, head: Buffer): SwitchedConnection | undefined
}

export interface RequestFacts {
  readonly method: string
  readonly url: string
  readonly rawHeaders: string[]
  readonly versionMajor: number
  readonly versionMinor: number
  readonly peerIp: string
  /** The request announces a body (chunked, or a non-zero Content-Length). */
  readonly hasBody: boolean
  /** The client asked for an upgrade (`Upgrade` with `Connection: upgrade`), or a CONNECT. */
  readonly upgrade: boolean
  /**
   * The connection closes after this request's response (the client's wish, HTTP/1.0, an upgrade, a
   * version other than 1.x, the request limit).
   */
  readonly closeAfter: boolean
}

class RequestBody extends Readable {
  readonly #port: ClientPort

  constructor(port: ClientPort) {
    super({ highWaterMark: BODY_HIGH_WATER_BYTES })
    this.#port = port
  }

  override _read(): void {
    this.#port.bodyWanted()
  }

  // As node:http's IncomingMessage: an aborted upload errors only for those who listen for errors.
  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    cb(err !== null && this.listenerCount('error') > 0 ? err : null)
  }
}

function emptyBody(): Readable {
  const body = new Readable({ read() {} })
  body.push(null)
  return body
}

function aborted(): Error {
  return Object.assign(new Error('aborted'), { code: 'ECONNRESET' })
}

const NO_HEADERS: readonly string[] = []

export class NativeClient implements ClientSide {
  readonly protocol: 'http/1.0' | 'http/1.1'
  readonly headersChecked = true
  readonly method: string
  readonly url: string
  readonly rawHeaders: string[]
  readonly peerIp: string
  readonly h2HasBody = undefined
  readonly goneReason = undefined
  readonly upgrade: boolean
  /** An upgrade request with no body: the connection may be switched to a tunnel. */
  readonly canSwitch: boolean
  readonly closeAfter: boolean
  readonly headRequest: boolean
  readonly versionMajor: number
  readonly http10: boolean
  /** Request trailers (chunked bodies), `[name, value, ...]` as received; empty until the body ends. */
  rawTrailers: readonly string[] = NO_HEADERS
  readonly #port: ClientPort
  /** Bytes of this request read from the socket: head and body. */
  #bytes = 0
  #body: Readable | undefined
  #bodyComplete: boolean
  #onGone: (() => void) | undefined
  #gone = false
  #aborted = false
  // --- the response ---
  #given: GivenHead | undefined
  #framing: Framing = 'pending'
  /** 'length' framing: body bytes still to come. */
  #remaining = 0
  #continued = false
  #ended = false
  #last = false
  #truncated = false
  /** Its output goes to the socket now (it is first in its connection's queue). */
  #active = false
  /** Output held while queued behind another response. */
  #out: Piece[] | undefined
  #outBytes = 0
  #drainWaiter: (() => void) | undefined

  constructor(port: ClientPort, facts: RequestFacts) {
    this.#port = port
    this.method = facts.method
    this.url = facts.url
    this.rawHeaders = facts.rawHeaders
    this.peerIp = facts.peerIp
    this.versionMajor = facts.versionMajor
    this.http10 = facts.versionMajor < 1 || (facts.versionMajor === 1 && facts.versionMinor === 0)
    this.protocol = this.http10 ? 'http/1.0' : 'http/1.1'
    this.upgrade = facts.upgrade
    this.canSwitch = facts.upgrade && !facts.hasBody && facts.method !== 'CONNECT'
    this.closeAfter = facts.closeAfter
    this.headRequest = facts.method === 'HEAD'
    this.#bodyComplete = !facts.hasBody
    if (facts.hasBody) this.#body = new RequestBody(port)
  }

  // --- the request ------------------------------------------------------------------------------

  get body(): Readable {
    this.#body ??= emptyBody()
    return this.#body
  }

  get bodyComplete(): boolean {
    return this.#bodyComplete
  }

  get bodyAborted(): boolean {
    return !this.#bodyComplete && this.#body !== undefined && this.#body.destroyed
  }

  bytesIn(): number {
    return this.#bytes
  }

  get connection(): Socket {
    return this.#port.socket
  }

  countBody(): void {}

  /** The connection read `n` more bytes of this request. */
  countIn(n: number): void {
    this.#bytes += n
  }

  /** A body chunk (a slice of the socket's data, or llhttp's copy); false when the stream is full. */
  pushBody(chunk: Buffer): boolean {
    const body = this.#body
    // Nobody reads it any more: dropped, and the connection closes after the response.
    if (body === undefined || body.destroyed) return true
    return body.push(chunk)
  }

  /** The body is complete; `trailers` as received (chunked bodies). */
  endBody(trailers: readonly string[]): void {
    if (this.#bodyComplete) return
    this.#bodyComplete = true
    if (trailers.length > 0) this.rawTrailers = trailers
    const body = this.#body
    if (body !== undefined && !body.destroyed) body.push(null)
  }

  // --- the response -----------------------------------------------------------------------------

  get headersSent(): boolean {
    return this.#given !== undefined
  }

  get gone(): boolean {
    return this.#gone || this.#aborted || this.#port.destroyed
  }

  /** The response ended (all of it was given). */
  get ended(): boolean {
    return this.#ended
  }

  /** The connection closes after this response. */
  get last(): boolean {
    return this.#last
  }

  /** The response ended short of its Content-Length: the connection must be cut after it. */
  get truncated(): boolean {
    return this.#truncated
  }

  /** Its output goes to the socket as it is written (it is first in its connection's queue). */
  get active(): boolean {
    return this.#active
  }

  /** Part of the response is on the wire and the rest is not. */
  get midResponse(): boolean {
    return this.#active && this.#framing !== 'pending' && !this.#ended
  }

  writeContinue(): void {
    if (this.#continued || this.#given !== undefined || this.#ended) return
    this.#continued = true
    this.#emit([CONTINUE])
  }

  writeHead(status: number, reason: string | undefined, headers: readonly string[], checked = 0): void {
    if (this.#given !== undefined) return
    this.#given = headOf(status, reason, headers, checked)
  }

  write(chunk: Buffer): boolean {
    if (this.#ended || this.gone || chunk.length === 0) return true
    if (this.#given === undefined) this.writeHead(200, undefined, NO_HEADERS)
    const head = this.#framing === 'pending' ? this.#finishHead(-1, false) : undefined
    const length = chunk.length
    switch (this.#framing) {
      case 'none':
        return head === undefined ? true : this.#emit([head])
      case 'length':
        if (length > this.#remaining) {
          this.abort()
          return true
        }
        this.#remaining -= length
        return this.#emit(head === undefined ? [chunk] : [head, chunk])
      case 'close':
        return this.#emit(head === undefined ? [chunk] : [head, chunk])
      case 'chunked': {
        const size = `${length.toString(16)}\r\n`
        return this.#emit(head === undefined ? [size, chunk, '\r\n'] : [head, size, chunk, '\r\n'])
      }
      case 'pending':
        throw new Error('response framing not decided')
      default: {
        const unknown: never = this.#framing
        throw new Error(`unknown framing ${String(unknown)}`)
      }
    }
  }

  onDrain(fn: () => void): void {
    this.#drainWaiter = fn
  }

  end(chunk?: Buffer | string, trailers?: readonly [string, string][]): void {
    if (this.#ended) return
    this.#ended = true
    if (this.gone) return
    if (this.#given === undefined) this.writeHead(200, undefined, NO_HEADERS)
    let body = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (body !== undefined && body.length === 0) body = undefined
    const length = body?.length ?? 0
    const hasTrailers = trailers !== undefined && trailers.length > 0
    const head = this.#framing === 'pending' ? this.#finishHead(length, hasTrailers) : undefined
    const pieces: Piece[] = head === undefined ? [] : [head]
    switch (this.#framing) {
      case 'none':
        break
      case 'length':
        if (length > this.#remaining) {
          this.abort()
          return
        }
        this.#remaining -= length
        if (this.#remaining > 0) this.#truncated = true
        if (body !== undefined) pieces.push(body)
        break
      case 'close':
        if (body !== undefined) pieces.push(body)
        break
      case 'chunked':
        if (body === undefined) pieces.push(lastChunk(trailers))
        else pieces.push(`${length.toString(16)}\r\n`, body, `\r\n${lastChunk(trailers)}`)
        break
      case 'pending':
        throw new Error('response framing not decided')
      default: {
        const unknown: never = this.#framing
        throw new Error(`unknown framing ${String(unknown)}`)
      }
    }
    // A request body left unread: the connection closes rather than read and drop the rest of it.
    if (!this.#bodyComplete) this.#last = true
    if (pieces.length > 0) this.#emit(pieces)
    if (this.#active) this.#port.ended(this)
  }

  switchProtocols(reason: string | undefined, headers: readonly string[], checked = 0): SwitchedConnection | undefined {
    if (!this.canSwitch || this.#given !== undefined || this.gone) return undefined
    const given = headOf(101, reason, headers, checked)
    const switched = this.#port.switchTo(this, switchingHead(given))
    if (switched === undefined) return undefined
    this.#given = given
    this.#framing = 'none'
    this.#ended = true
    this.#onGone = undefined
    return switched
  }

  abort(): void {
    if (this.#aborted || this.#gone) return
    this.#aborted = true
    this.#port.abort()
  }

  watch(onGone: () => void): void {
    if (this.gone) {
      queueMicrotask(onGone)
      return
    }
    this.#onGone = onGone
  }

  unwatch(): void {
    this.#onGone = undefined
    if (!this.#ended && !this.gone) this.#port.abandoned(this)
  }

  // --- the connection's side ----------------------------------------------------------------------

  /** Makes this response the one on the wire: what it buffered goes out now. */
  activate(): void {
    this.#active = true
    const out = this.#out
    this.#out = undefined
    this.#outBytes = 0
    const room = out === undefined || this.gone ? true : this.#port.send(out)
    if (room && this.#drainWaiter !== undefined) this.drained()
  }

  /** The socket has room again (or this response just became active with room). */
  drained(): void {
    const fn = this.#drainWaiter
    this.#drainWaiter = undefined
    fn?.()
  }

  /** The client can no longer be answered: told once, to the watcher if any. */
  goneNow(): void {
    if (this.#gone) return
    this.#gone = true
    this.#out = undefined
    const body = this.#body
    if (body !== undefined && !this.#bodyComplete && !body.destroyed) body.destroy(aborted())
    const fn = this.#onGone
    this.#onGone = undefined
    fn?.()
  }

  #finishHead(wholeBody: number, trailers: boolean): Buffer {
    const given = this.#given as GivenHead
    const end = finishHead(
      given,
      this,
      wholeBody,
      trailers,
      this.closeAfter || this.#port.draining,
      this.#port.keepAliveHint,
    )
    this.#framing = end.framing
    this.#remaining = end.length
    this.#last = end.last
    return end.head
  }

  #emit(pieces: Piece[]): boolean {
    if (this.#active) return this.#port.send(pieces)
    const out = this.#out
    if (out === undefined) this.#out = pieces
    else for (const p of pieces) out.push(p)
    for (const p of pieces) this.#outBytes += p.length
    return this.#outBytes < QUEUED_RESPONSE_BYTES
  }
}
