/**
 * One node:http connection, as the `node` engine hands its requests to the listener. node:http hands
 * every pipelined request over as soon as its head is parsed, and writes a malformed request's answer
 * wherever the client's bytes broke off; this keeps the native engine's order (connection.ts):
 * - a pipelined request runs beside the requests ahead of it whose responses are not complete only if
 *   it and all of those have safe methods (RFC 9112 §9.3.2, connection-rules.ts); else it is held
 *   until they are;
 * - a request behind a response that ends the connection is held, and never handed over once that
 *   response ended it (node:http would have read it, and dropped its answer);
 * - the requests that end their connection whatever llhttp says (connection-rules.ts) get
 *   `shouldKeepAlive = false`, so that node:http closes after their response;
 * - a malformed request's answer (the `clientError` of node:http) goes after the responses ahead of it,
 *   then the connection closes; none when one of those ended the connection.
 *
 * One per socket (a WeakMap), made with its first request. A request is done at its response's
 * `finish` (node:http has handed all of it to the socket, and ended the socket after it if it was the
 * last) or `close`. Bounded as the native engine is: at most MAX_PIPELINED requests run at once, and
 * beyond that many not done the socket is not read (node:http finishes the read it is parsing) until
 * responses go out; node:http itself reads no further while its output backs up.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { MAX_PIPELINED } from './connection.js'
import { endsConnection, isSafeMethod } from './connection-rules.js'

/** What the connection needs of a request's client side (l7/client.ts Http1Client). */
export interface NodeRequest {
  /** Its response will end the connection, as far as is known now (its head may not be written yet). */
  readonly closing: boolean
  /** The request turned out malformed (its body broke off): it ends as if its client had gone. */
  abandon(): void
}

interface Entry {
  readonly safe: boolean
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly request: NodeRequest
  /** Hands it over; undefined once it was. */
  start: (() => void) | undefined
}

const connections = new WeakMap<Socket, NodeConnection>()

export class NodeConnection {
  readonly #socket: Socket
  /** Requests handed over or held, in order, until their response is done. */
  readonly #entries: Entry[] = []
  /** A malformed request's answer, written once no response is ahead of it. */
  #refusal: string | undefined
  #refused = false
  #pumping = false
  #again = false
  /** The socket was paused here: too many requests not done. */
  #paused = false
  /** Runs once no request is left (an upgrade waiting for the responses ahead of it). */
  #whenIdle: (() => void) | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
  }

  /** The connection of `socket`, made on first use. */
  static of(socket: Socket): NodeConnection {
    let c = connections.get(socket)
    if (c === undefined) {
      c = new NodeConnection(socket)
      connections.set(socket, c)
    }
    return c
  }

  /** The connection of `socket` if it has had a request. */
  static peek(socket: Socket): NodeConnection | undefined {
    return connections.get(socket)
  }

  /**
   * A request node:http read: `start` runs now, or once the requests ahead of it allow, or never (the
   * connection ended first).
   */
  offer(req: IncomingMessage, res: ServerResponse, request: NodeRequest, start: () => void): void {
    if (endsConnection(req.httpVersionMajor, req.rawHeaders)) res.shouldKeepAlive = false
    const entry: Entry = { safe: isSafeMethod(req.method ?? ''), req, res, request, start }
    this.#entries.push(entry)
    let done = false
    const onDone = () => {
      if (done) return
      done = true
      this.#done(entry)
    }
    res.once('finish', onDone)
    res.once('close', onDone)
    if (this.#entries.length > MAX_PIPELINED && !this.#paused) {
      this.#paused = true
      this.#socket.pause()
    }
    this.#pump()
  }

  /**
   * A malformed request: `text` (its whole answer) is written once the responses ahead of it are, then
   * the connection closes. A request whose body broke off is the malformed one: it is abandoned (no
   * answer), or, when its response has begun, the connection is destroyed (nothing can follow that
   * response in order), as in the native engine. False when no response is ahead of the answer (the
   * caller writes it now). node:http reports the same parse error again on every read after it: see
   * `refused`.
   */
  refuse(text: string): boolean {
    this.#refused = true
    const last = this.#entries.at(-1)
    if (last !== undefined && !last.req.complete) {
      if (last.res.headersSent) {
        this.#socket.destroy()
        return true
      }
      this.#entries.pop()
      last.request.abandon()
    }
    if (this.#entries.length === 0) return false
    this.#refusal = text
    return true
  }

  /** A malformed request was answered or is waiting to be. */
  get refused(): boolean {
    return this.#refused
  }

  /**
   * Runs `fn` once every response on the connection is done: now, or later. An upgrade request behind
   * pipelined ones waits so, since its 101 must follow their responses on the wire.
   */
  whenIdle(fn: () => void): void {
    if (this.#entries.length === 0) return fn()
    this.#whenIdle = fn
  }

  #done(entry: Entry): void {
    const at = this.#entries.indexOf(entry)
    if (at >= 0) this.#entries.splice(at, 1)
    if (this.#entries.length === 0 && this.#whenIdle !== undefined) {
      const fn = this.#whenIdle
      this.#whenIdle = undefined
      queueMicrotask(fn)
    }
    if (this.#paused && this.#entries.length <= MAX_PIPELINED) {
      this.#paused = false
      this.#socket.resume()
    }
    this.#pump()
  }

  /** Hands over every held request that may run now; writes the refusal once nothing is ahead of it. */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true
      return
    }
    this.#pumping = true
    try {
      do {
        this.#again = false
        this.#startHeld()
      } while (this.#again)
    } finally {
      this.#pumping = false
    }
    const refusal = this.#refusal
    if (refusal !== undefined && this.#entries.length === 0) {
      this.#refusal = undefined
      if (this.#socket.writable) {
        this.#socket.end(refusal)
        this.#socket.destroySoon()
      }
    }
  }

  #startHeld(): void {
    // node:http ended the socket after a last response (in its own `finish` listener, which runs
    // first; it may read on after it): nothing behind that response is handed over or answered.
    if (this.#socket.destroyed || !this.#socket.writable) {
      this.#entries.length = 0
      this.#refusal = undefined
      return
    }
    let allSafe = true
    for (let i = 0; i < this.#entries.length; i++) {
      const entry = this.#entries[i] as Entry
      const start = entry.start
      if (start !== undefined) {
        if (i >= MAX_PIPELINED || (i > 0 && !(allSafe && entry.safe))) return
        entry.start = undefined
        start()
      }
      // What comes after a response that ends the connection waits for it (then it is dropped).
      if (entry.request.closing) return
      if (!entry.safe) allSafe = false
    }
  }
}
