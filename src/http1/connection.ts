/**
 * One client connection of the native HTTP/1.1 engine, on a net.Socket or a TLSSocket.
 *
 * The read side is a small state machine (`ReadState`):
 * - `head`: reading a request head, with llhttp in strict mode. Every head stops the parser
 *   (`BODY_SELF`), so that the bytes after it are handled here, not by llhttp. A head with a
 *   Transfer-Encoding is also run through llhttp's own framing check (`requestBodyFraming`), so that
 *   the engine refuses what node:http refuses; one with a Content-Length too is refused;
 * - `body`: a Content-Length body, framed here: slices of the socket's chunks go to the request's body
 *   stream with no copy, then the parser is reset for the next head in the same chunk;
 * - `chunked`: a chunked body, parsed (and copied) by llhttp, trailers collected; llhttp stops at its
 *   end, and the next head is parsed afresh;
 * - `stopped`: nothing more is read (after a request that closes the connection, a malformed one, or
 *   while closing). Requests that close the connection: see connection-rules.ts.
 * The write side is the queue of requests read and not yet answered: the first one's response goes
 * to the socket as it is written, those behind it buffer theirs (client-side.ts), and are put on the
 * wire in request order (pipelining). A request is handed to the listener once the requests ahead of
 * it allow (RFC 9112 §9.3.2: only requests with safe methods run side by side, see #mayStart).
 *
 * Limits and timers (plain `setTimeout`, one at a time per connection, so each fires on time):
 * - `timeouts.requestHeaders`: from the connection's start for its first head, else from a head's first
 *   byte, to the head's end (slowloris): 408, then close;
 * - `timeouts.idle`: from the end of the last response to the next head's first byte: closed quietly;
 * - at most MAX_PIPELINED requests are read ahead of their responses; beyond, the socket is not read;
 * - a full request body stream stops reading the socket until the stream is read (backpressure);
 * - `maxRequestsPerConnection`: the last one's response carries `Connection: close`.
 *
 * Ends: a response that closes the connection (or a malformed request's answer) is followed by a FIN,
 * after which the client's further bytes are read and dropped until it closes, for up to LINGER_MS
 * once the last bytes were handed to the kernel (so that the kernel does not reset the connection
 * under the response). As with node:http, a client that never reads keeps its connection until the
 * listener drains. A client that sends its FIN
 * gets no further answers (as with node:http): its requests in flight are gone, and a request cut short
 * is answered 400. Every way out ends in the socket's `close`, which tells each request still queued
 * that its client is gone, once.
 */
import type { Socket } from 'node:net'
import { bareIp } from '../core/address.js'
import type { SwitchedConnection } from '../l7/client.js'
import { peerAddress } from '../listeners/proxy-protocol.js'
import { badRequest, HEADERS_TIMEOUT_CODE } from './bad-request.js'
import { type ClientPort, NativeClient, type Piece } from './client-side.js'
import { endsConnection, isSafeMethod } from './connection-rules.js'
import { Deadline } from './deadline.js'
import { BODY_PARSE, BODY_SELF, Http1Parser, type ParsedHead, requestBodyFraming } from './parser.js'

/** Requests read ahead of their responses on one connection; beyond this the socket is not read. */
export const MAX_PIPELINED = 16

/** How long a closing connection waits for the client's FIN (reading and dropping its bytes). */
export const LINGER_MS = 5000

/** Output pieces up to this many bytes in all are copied into one buffer; larger ones go corked (writev). */
const COALESCE_BYTES = 16 * 1024

/**
 * Puts the parser in the body state of a chunked message, for a real head that stopped it. It closes
 * the connection, so that llhttp stops right after the body (HPE_CLOSED_CONNECTION at the next byte):
 * every head is then parsed from its first byte, in the `head` state.
 */
const CHUNKED_HEAD = Buffer.from('POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n', 'latin1')

const CONTINUE_EXPECTATION = /(?:^|\W)100-continue(?:$|\W)/i

const PAUSE_BODY = 1
const PAUSE_QUEUE = 2
/** An upgrade request was read: nothing more is, until its answer (a tunnel takes the socket, or it closes). */
const PAUSE_UPGRADE = 4

type ReadState = 'head' | 'body' | 'chunked' | 'stopped'
type TimerKind = 'head' | 'idle' | 'linger'

/** What a connection needs of its engine (server.ts). */
export interface ConnectionHost {
  readonly requestHeadersMs: number
  readonly idleMs: number
  readonly maxRequestsPerConnection: number
  readonly maxHeaderBytes: number
  readonly keepAliveHint: string
  readonly draining: boolean
  /** A request to handle; `expectContinue`: it asked for `100 Continue`. */
  request(client: NativeClient, expectContinue: boolean): void
  /** A malformed or too slow request was answered (`status`) and its connection closes. */
  malformed(status: number, code: string, peer: string | undefined): void
  /** A bug in the engine cost this connection (it was destroyed). */
  failed(err: unknown): void
  closed(connection: Http1Connection): void
}

/** A head just parsed, before its request is queued and handed over. */
interface Parsed {
  readonly client: NativeClient
  readonly chunked: boolean
  readonly contentLength: number
  readonly expect: string | undefined
}

const NO_TRAILERS: readonly string[] = []

/**
 * Where the message after a chunked body starts in `input`, from the position of llhttp's
 * HPE_CLOSED_CONNECTION: just after the byte that raised it, or at that byte (a CR or LF before it
 * tells which), so that the answer holds either way llhttp counts.
 */
function nextHeadAt(input: Buffer, errorAt: number): number {
  const before = input[errorAt - 1]
  return errorAt > 0 && before !== 13 && before !== 10 ? errorAt - 1 : errorAt
}

export class Http1Connection implements ClientPort {
  readonly #socket: Socket
  readonly #host: ConnectionHost
  readonly #parser: Http1Parser
  readonly #peer: string | undefined
  readonly #peerIp: string
  #read: ReadState = 'head'
  /** Requests read and not answered yet, in order; the first one's response is on the wire. */
  readonly #queue: NativeClient[] = []
  /** Requests read and not handed over yet, in order (#dispatch). */
  #waiting: Parsed[] = []
  #dispatching = false
  /** The request whose body is being read. */
  #reading: NativeClient | undefined
  /** `body` state: bytes of the body still to come. */
  #remaining = 0
  /** Heads read on this connection. */
  #requests = 0
  /** A head has begun (its first byte was read) and is not complete. */
  #headStarted = false
  /** Bytes of the head being read, from earlier chunks. */
  #headBytes = 0
  /** The head being read, as far as earlier chunks went (copies), when it spans chunks. */
  #headSoFar: Buffer[] | undefined
  /** The head the parser just stopped at. */
  #parsed: Parsed | undefined
  /** The parser will report a message end right after a head it stopped at: not a real one. */
  #selfHead = false
  /** The parser is being put in a chunked body's state (CHUNKED_HEAD): its callbacks are not a request. */
  #synthetic = false
  /** A head the parser accepted but Switchyard refuses: the parser code to answer with. */
  #badHead: string | undefined
  /** Why the socket is not read: PAUSE_BODY | PAUSE_QUEUE. */
  #paused = 0
  /** Unparsed bytes kept while the queue is full. */
  #backlog: Buffer | undefined
  /** Bytes after an upgrade request's head, for the tunnel that may take the connection. */
  #afterUpgrade: Buffer | undefined
  /** The answer to a malformed request, written once the responses ahead of it are. */
  #closeWith: string | undefined
  /** The head, idle and linger timeouts, one after another: re-aimed per request without a new Node timer. */
  readonly #timer = new Deadline(() => this.#guard(() => this.#timerFired()))
  #timerKind: TimerKind | undefined
  #advancing = false
  #closing = false
  #closed = false

  constructor(socket: Socket, host: ConnectionHost) {
    this.#socket = socket
    this.#host = host
    this.#peer = peerAddress(socket)
    this.#peerIp = bareIp(this.#peer)
    this.#parser = new Http1Parser(
      'request',
      {
        onMessageBegin: () => {
          if (!this.#synthetic && this.#read === 'head') this.#headStarted = true
        },
        onHead: (head) => this.#onHead(head),
        onBody: (chunk) => this.#onBody(chunk),
        onComplete: (trailers) => this.#onComplete(trailers),
      },
      host.maxHeaderBytes,
    )
    socket.on('data', this.#onData)
    socket.on('end', this.#onEnd)
    socket.on('drain', this.#onDrain)
    socket.on('error', this.#onError)
    socket.once('close', this.#onClose)
    this.#updateTimer()
  }

  // --- ClientPort -------------------------------------------------------------------------------

  get socket(): Socket {
    return this.#socket
  }

  get destroyed(): boolean {
    return this.#closed || this.#socket.destroyed
  }

  get keepAliveHint(): string {
    return this.#host.keepAliveHint
  }

  get draining(): boolean {
    return this.#host.draining
  }

  send(pieces: readonly Piece[]): boolean {
    const socket = this.#socket
    if (socket.destroyed || socket.writableEnded) return true
    if (pieces.length === 1) {
      const piece = pieces[0] as Piece
      return typeof piece === 'string' ? socket.write(piece, 'latin1') : socket.write(piece)
    }
    let total = 0
    for (const p of pieces) total += p.length
    if (total <= COALESCE_BYTES) {
      const out = Buffer.allocUnsafe(total)
      let at = 0
      for (const p of pieces) at += typeof p === 'string' ? out.write(p, at, 'latin1') : p.copy(out, at)
      return socket.write(out)
    }
    socket.cork()
    let room = true
    for (const p of pieces) room = typeof p === 'string' ? socket.write(p, 'latin1') : socket.write(p)
    socket.uncork()
    return room
  }

  ended(client: NativeClient): void {
    if (this.#queue[0] === client) this.#advance()
  }

  abort(): void {
    this.destroy()
  }

  bodyWanted(): void {
    this.#unpause(PAUSE_BODY)
  }

  switchTo(client: NativeClient, head: Buffer): SwitchedConnection | undefined {
    if (this.#queue[0] !== client || this.#queue.length > 1 || this.#closing || this.destroyed) return undefined
    const socket = this.#socket
    socket.removeListener('data', this.#onData)
    socket.removeListener('end', this.#onEnd)
    socket.removeListener('drain', this.#onDrain)
    socket.removeListener('error', this.#onError)
    socket.removeListener('close', this.#onClose)
    this.#closed = true
    this.#closing = true
    this.#timerKind = undefined
    this.#timer.dispose()
    this.#queue.length = 0
    this.#waiting = []
    this.#parser.close()
    this.#host.closed(this)
    socket.write(head)
    const rest = this.#afterUpgrade ?? Buffer.alloc(0)
    this.#afterUpgrade = undefined
    return { socket, head: rest }
  }

  abandoned(client: NativeClient): void {
    // Skipping its response would shift every later one onto the wrong request.
    if (this.#queue.includes(client)) this.destroy()
  }

  // --- for the engine ---------------------------------------------------------------------------

  /** The listener drains: an idle connection closes now, a busy one after its responses. */
  drainNow(): void {
    if (this.#closing) return
    if (this.#queue.length === 0) this.#close(undefined)
  }

  destroy(): void {
    this.#socket.destroy()
  }

  // --- reading ----------------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    if (this.#closing) return
    // Paused with bytes kept: a chunk read meanwhile goes after them.
    if (this.#backlog !== undefined) {
      this.#backlog = Buffer.concat([this.#backlog, chunk])
      return
    }
    this.#guard(() => this.#feed(chunk))
  }

  /** Runs `fn`; a bug in it costs this connection, never the process. */
  #guard(fn: () => void): void {
    try {
      fn()
    } catch (err) {
      this.destroy()
      this.#host.failed(err)
    }
  }

  /** Parses `chunk` (or the backlog), hands over the requests read, and sets the timer. */
  #feed(chunk: Buffer | undefined): void {
    let input = chunk
    if (input === undefined) {
      input = this.#backlog
      this.#backlog = undefined
      if (input === undefined || this.#closing) return
    }
    this.#parse(input)
    this.#dispatch()
    if (chunk === undefined && this.#backlog === undefined && this.#paused === 0 && !this.#closing)
      this.#socket.resume()
    this.#updateTimer()
  }

  #parse(chunk: Buffer): void {
    const length = chunk.length
    let offset = 0
    while (offset < length && !this.#closing) {
      switch (this.#read) {
        case 'stopped':
          return
        case 'body': {
          const reader = this.#reading as NativeClient
          const take = Math.min(this.#remaining, length - offset)
          const slice = offset === 0 && take === length ? chunk : chunk.subarray(offset, offset + take)
          offset += take
          this.#remaining -= take
          reader.countIn(take)
          if (!reader.pushBody(slice)) this.#pause(PAUSE_BODY)
          if (this.#remaining === 0) this.#bodyDone(reader, NO_TRAILERS)
          break
        }
        case 'head': {
          if (this.#queue.length >= MAX_PIPELINED) {
            this.#backlog = offset === 0 ? chunk : chunk.subarray(offset)
            this.#pause(PAUSE_QUEUE)
            return
          }
          const input = offset === 0 ? chunk : chunk.subarray(offset)
          const result = this.#parser.execute(input)
          if (typeof result !== 'number') return this.#fail(result.code)
          if (this.#badHead !== undefined) return this.#fail(this.#badHead)
          const parsed = this.#parsed
          if (parsed === undefined) {
            // The head goes on in the next chunk: its bytes so far are kept (a copy: at most the head
            // limit) for a Transfer-Encoding head's check.
            if (result < input.length) throw new Error('the parser stopped without a head')
            this.#headBytes += input.length
            if (this.#headSoFar === undefined) this.#headSoFar = [Buffer.from(input)]
            else this.#headSoFar.push(Buffer.from(input))
            offset = length
            break
          }
          this.#parsed = undefined
          const head = input.subarray(0, result)
          const soFar = this.#headSoFar
          this.#headSoFar = undefined
          if (parsed.chunked) {
            // llhttp's own check of the codings, which a BODY_SELF head skips (see requestBodyFraming).
            const framing = requestBodyFraming(soFar === undefined ? [head] : [...soFar, head])
            if (framing !== 'chunked') return this.#fail(framing === 'none' ? 'HPE_INVALID_TRANSFER_ENCODING' : framing)
          }
          parsed.client.countIn(this.#headBytes + result)
          this.#headBytes = 0
          offset += result
          this.#start(parsed)
          if (parsed.client.canSwitch) {
            // What follows an upgrade request belongs to the protocol it switches to, if it does.
            if (offset < length) this.#afterUpgrade = chunk.subarray(offset)
            this.#pause(PAUSE_UPGRADE)
            return
          }
          break
        }
        case 'chunked': {
          const input = offset === 0 ? chunk : chunk.subarray(offset)
          const result = this.#parser.execute(input)
          if (this.#read === 'chunked') {
            if (typeof result !== 'number') return this.#fail(result.code)
            offset = length
            break
          }
          // The body ended (#bodyDone). CHUNKED_HEAD says `Connection: close`, so llhttp skipped the CR
          // and LF bytes after it and stopped at the next byte, which it consumed (llhttp's `skipTo`):
          // the next head starts there.
          this.#parser.reset()
          if (typeof result === 'number') offset = length
          else if (result.code === 'HPE_CLOSED_CONNECTION' && result.bytesParsed !== undefined)
            offset += nextHeadAt(input, result.bytesParsed)
          else return this.#fail(result.code)
          break
        }
        default: {
          const unknown: never = this.#read
          throw new Error(`unknown read state ${String(unknown)}`)
        }
      }
    }
  }

  #onHead(head: ParsedHead): typeof BODY_PARSE | typeof BODY_SELF {
    if (this.#synthetic) return BODY_PARSE
    // The parser reports this message's end at once; the body, if any, is read here.
    this.#selfHead = true
    this.#headStarted = false
    const raw = head.rawHeaders
    let contentLength = 0
    let lengthGiven = false
    let chunked = false
    let expect: string | undefined
    // llhttp (strict) has refused repeated or bad lengths, a Content-Length with a Transfer-Encoding
    // that has a value, and chunked before another coding. Whether the last coding is chunked is asked
    // of llhttp once the head's end is known (#parse).
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i] as string
      if (name.length === 14 && name.toLowerCase() === 'content-length') {
        contentLength = Number(raw[i + 1])
        lengthGiven = true
        if (!Number.isSafeInteger(contentLength)) this.#badHead = 'HPE_INVALID_CONTENT_LENGTH'
      } else if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') chunked = true
      else if (name.length === 6 && name.toLowerCase() === 'expect') expect = raw[i + 1]
    }
    // An empty Transfer-Encoding is a Transfer-Encoding too (RFC 9112 §6.3): never framed by a length.
    if (chunked && lengthGiven) this.#badHead = 'HPE_UNEXPECTED_CONTENT_LENGTH'
    if (this.#badHead !== undefined) return BODY_SELF
    this.#requests++
    const max = this.#host.maxRequestsPerConnection
    const client = new NativeClient(this, {
      method: head.method,
      url: head.url,
      rawHeaders: raw,
      versionMajor: head.versionMajor,
      versionMinor: head.versionMinor,
      peerIp: this.#peerIp,
      hasBody: chunked || contentLength > 0,
      upgrade: head.upgrade,
      closeAfter:
        !head.keepAlive ||
        head.upgrade ||
        endsConnection(head.versionMajor, raw) ||
        (max > 0 && this.#requests >= max) ||
        this.#host.draining,
    })
    this.#parsed = { client, chunked, contentLength, expect }
    return BODY_SELF
  }

  #onBody(chunk: Buffer): void {
    const reader = this.#reading
    if (reader === undefined) return
    reader.countIn(chunk.length)
    if (!reader.pushBody(chunk)) this.#pause(PAUSE_BODY)
  }

  #onComplete(trailers: string[]): void {
    if (this.#selfHead) {
      this.#selfHead = false
      return
    }
    const reader = this.#reading
    if (this.#read === 'chunked' && reader !== undefined) this.#bodyDone(reader, trailers)
  }

  /** Queues a request whose head was just read, and sets up the reading of its body. */
  #start(parsed: Parsed): void {
    const client = parsed.client
    this.#parser.reset()
    this.#queue.push(client)
    if (this.#queue.length === 1) client.activate()
    this.#waiting.push(parsed)
    if (parsed.chunked) {
      this.#reading = client
      this.#read = 'chunked'
      this.#synthetic = true
      this.#parser.execute(CHUNKED_HEAD)
      this.#synthetic = false
    } else if (parsed.contentLength > 0) {
      this.#reading = client
      this.#remaining = parsed.contentLength
      this.#read = 'body'
    } else this.#read = client.closeAfter ? 'stopped' : 'head'
  }

  #bodyDone(client: NativeClient, trailers: readonly string[]): void {
    client.endBody(trailers)
    this.#reading = undefined
    this.#read = client.closeAfter ? 'stopped' : 'head'
    this.#unpause(PAUSE_BODY)
  }

  /**
   * Hands the requests read to the listener, in order, as far as RFC 9112 §9.3.2 lets them run:
   * see #mayStart. Called once a chunk is parsed and once a response ends.
   */
  #dispatch(): void {
    if (this.#dispatching) return
    this.#dispatching = true
    try {
      for (;;) {
        const next = this.#waiting[0]
        if (next === undefined || (!next.client.gone && !this.#mayStart(next.client))) return
        this.#waiting.shift()
        if (!next.client.gone && !this.#handOver(next)) return
      }
    } finally {
      this.#dispatching = false
    }
  }

  /**
   * A pipelined request runs beside the requests ahead of it whose responses are not complete only if
   * it and all of those have safe methods (RFC 9112 §9.3.2); else it waits for them. So a request
   * behind a POST reaches the upstream after it, and a GET behind GETs goes at once.
   */
  #mayStart(client: NativeClient): boolean {
    // An upgrade waits for every response ahead of it: its 101 must be the last thing on the wire.
    const safe = isSafeMethod(client.method) && !client.canSwitch
    for (const ahead of this.#queue) {
      if (ahead === client) return true
      if (!ahead.ended && !(safe && isSafeMethod(ahead.method))) return false
    }
    return true
  }

  /** One request to the listener; false when the connection ends with it. */
  #handOver({ client, expect }: Parsed): boolean {
    if (client.method === 'CONNECT') {
      // As node:http without a 'connect' listener: the connection is dropped.
      this.destroy()
      return false
    }
    // Upgrade requests are answered as plain requests, as node:http does without an 'upgrade'
    // listener (Upgrade and Connection are hop-by-hop, so the upstream sees a plain request), and the
    // connection closes after them (connection-rules.ts). A WebSocket tunnel would take
    // `client.upgrade` requests here.
    if (expect === undefined || client.http10) this.#host.request(client, false)
    else if (CONTINUE_EXPECTATION.test(expect)) this.#host.request(client, true)
    else {
      // As node:http: an expectation other than 100-continue cannot be met.
      client.writeHead(417, undefined, [])
      client.end()
    }
    return true
  }

  #pause(reason: number): void {
    if (this.#paused === 0) this.#socket.pause()
    this.#paused |= reason
  }

  #unpause(reason: number): void {
    if ((this.#paused & reason) === 0) return
    this.#paused &= ~reason
    if (this.#paused !== 0 || this.#closing) return
    // The bytes kept while the queue was full come first; the socket is read again after them.
    if (this.#backlog !== undefined) queueMicrotask(() => this.#guard(() => this.#feed(undefined)))
    else this.#socket.resume()
  }

  // --- writing ----------------------------------------------------------------------------------

  readonly #onDrain = (): void => {
    this.#queue[0]?.drained()
  }

  /** The first response ended (or was dropped): the next one goes on the wire, or the connection idles or closes. */
  #advance(): void {
    if (this.#advancing) return
    this.#advancing = true
    try {
      for (;;) {
        const first = this.#queue[0]
        if (first === undefined) break
        if (!first.active) {
          first.activate()
          continue
        }
        if (!first.ended) break
        this.#queue.shift()
        if (first.truncated) return this.destroy()
        if (first.last) return this.#close(undefined)
      }
    } finally {
      this.#advancing = false
    }
    // A request held behind the one that ended may run now.
    this.#dispatch()
    if (this.#queue.length === 0) {
      if (this.#closeWith !== undefined) return this.#close(this.#closeWith)
      if (this.#read === 'stopped' || this.#host.draining) return this.#close(undefined)
    }
    if (this.#queue.length < MAX_PIPELINED) this.#unpause(PAUSE_QUEUE)
    this.#updateTimer()
  }

  // --- timers -----------------------------------------------------------------------------------

  /** The one timer the read side needs now: a head's deadline, the idle deadline, or none. */
  #updateTimer(): void {
    if (this.#closing) return
    let want: TimerKind | undefined
    if (this.#read === 'head' && (this.#headStarted || this.#requests === 0)) want = 'head'
    else if (this.#read === 'head' && this.#queue.length === 0) want = 'idle'
    if (want === this.#timerKind) return
    this.#setTimer(want, want === 'head' ? this.#host.requestHeadersMs : this.#host.idleMs)
  }

  #setTimer(kind: TimerKind | undefined, ms: number): void {
    this.#timerKind = kind
    if (kind === undefined || ms <= 0) this.#timer.clear()
    else this.#timer.set(ms)
  }

  #timerFired(): void {
    const kind = this.#timerKind
    this.#timerKind = undefined
    switch (kind) {
      case 'head':
        return this.#fail(HEADERS_TIMEOUT_CODE)
      case 'idle':
        return this.#close(undefined)
      case 'linger':
        return this.destroy()
      case undefined:
        return
      default: {
        const unknown: never = kind
        throw new Error(`unknown timer ${String(unknown)}`)
      }
    }
  }

  // --- failures and ends ------------------------------------------------------------------------

  /** A malformed request, or a head too slow: answered (after the responses ahead of it), then closed. */
  #fail(code: string): void {
    if (this.#closing) return
    this.#badHead = undefined
    const bad = badRequest(code)
    this.#host.malformed(bad.status, code, this.#peer)
    this.#read = 'stopped'
    this.#headStarted = false
    this.#headSoFar = undefined
    this.#backlog = undefined
    this.#waiting = this.#waiting.filter((p) => p.client !== this.#reading)
    const reading = this.#reading
    this.#reading = undefined
    if (reading !== undefined) {
      // Its response is on the wire: no answer can follow it in order.
      if (reading.midResponse) return this.destroy()
      const at = this.#queue.indexOf(reading)
      if (at >= 0) this.#queue.splice(at, 1)
      reading.goneNow()
    }
    this.#closeWith = bad.text
    this.#advance()
  }

  /**
   * Closes after what was written: `text` last (a malformed request's answer), then a FIN. Requests
   * still queued are not answered.
   */
  #close(text: string | undefined): void {
    if (this.#closing) return
    // A response cut off midway must not end with a FIN, which a close-delimited body would take for its end.
    if (this.#queue[0]?.midResponse === true) return this.destroy()
    this.#closing = true
    this.#read = 'stopped'
    this.#backlog = undefined
    this.#paused = 0
    for (const client of this.#queue.splice(0)) client.goneNow()
    this.#setTimer(undefined, 0)
    const socket = this.#socket
    // The linger starts once everything written is handed to the kernel: a slow reader still gets it all.
    const linger = () => {
      if (!this.#closed) this.#setTimer('linger', LINGER_MS)
    }
    if (text === undefined) socket.end(linger)
    else socket.end(text, 'latin1', linger)
    socket.resume()
  }

  readonly #onEnd = (): void => this.#guard(() => this.#peerEnded())

  #peerEnded(): void {
    if (this.#closing) return
    // The client will send nothing more. As node:http: what it asked and was not answered yet is not
    // answered, and a request cut short gets a 400 if it can still read.
    const cutShort =
      this.#read === 'body' ||
      ((this.#read === 'chunked' || (this.#read === 'head' && this.#headStarted)) &&
        this.#parser.finish() !== undefined)
    let text: string | undefined
    if (cutShort) {
      const bad = badRequest('HPE_INVALID_EOF_STATE')
      this.#host.malformed(bad.status, 'HPE_INVALID_EOF_STATE', this.#peer)
      text = bad.text
    }
    this.#close(text)
  }

  readonly #onError = (): void => {
    this.#socket.destroy()
  }

  readonly #onClose = (): void => {
    this.#closed = true
    this.#closing = true
    this.#timerKind = undefined
    this.#timer.dispose()
    this.#backlog = undefined
    this.#waiting = []
    for (const client of this.#queue.splice(0)) client.goneNow()
    this.#reading?.goneNow()
    this.#reading = undefined
    this.#parser.close()
    this.#socket.removeListener('data', this.#onData)
    this.#host.closed(this)
  }
}
