/**
 * The upstream side of an exchange, behind one small interface: send a request head (and body), and
 * receive the response head, body chunks, and its end with trailers, or an error; pause and resume the
 * body; abort. Today undici's `dispatch` sits under it (raw header arrays both ways, LIFO socket reuse
 * by undici's Pool); the exchange, retries and logging see only this interface.
 */
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import type { Dispatcher } from 'undici'
import { expectSocket, type SocketObserver } from '../upstream/socket-reuse.js'

export interface UpstreamRequest {
  readonly method: string
  /** Origin-form path and query. */
  readonly path: string
  /** `[name, value, ...]`. */
  readonly headers: readonly string[]
  /** undefined/null: no body; a Buffer, or a stream read as it goes. */
  readonly body: Buffer | Readable | AsyncIterable<Buffer> | null
  /** Time to the response head; 0: none. */
  readonly headersTimeoutMs: number
  /** Longest silence between two body chunks; 0: none. */
  readonly bodyTimeoutMs: number
  /** Close the connection after this request (`Connection: close`) instead of keeping it for reuse. */
  readonly closeAfter: boolean
}

/** What the upstream side reports to the exchange. */
export interface UpstreamHandler {
  /** The response head (interim 1xx responses are not reported); false to pause the body until `resume()`. */
  onUpstreamHead(status: number, rawHeaders: readonly Buffer[], statusText: string): boolean
  /** A body chunk; false to pause until `resume()`. */
  onUpstreamData(chunk: Buffer): boolean
  onUpstreamEnd(trailers: readonly Buffer[]): void
  /** The try failed; `err` is the raw error (classified by the exchange), or a SwitchyardError given to `abort()`. */
  onUpstreamError(err: Error): void
  /** The socket the request was written to, and how many requests it carried before (0: a new connection). */
  onUpstreamSocket(socket: Socket, uses: number): void
}

export interface UpstreamCall {
  /** The try has not ended yet (no end, no error). */
  readonly active: boolean
  /** Ends the try; the handler's `onUpstreamError` gets `err`. */
  abort(err: Error): void
  /** Resumes a body paused by `onUpstreamData` returning false. */
  resume(): void
}

/**
 * One try through an undici dispatcher. The call is made before it is sent, so that a handler that
 * undici calls back synchronously (a dispatcher already closed) already knows it.
 */
export function upstreamCall(
  handler: UpstreamHandler,
): UpstreamCall & { send(d: Dispatcher, r: UpstreamRequest): void } {
  return new UndiciCall(handler)
}

function dispatch(dispatcher: Dispatcher, request: UpstreamRequest, call: UndiciCall): void {
  dispatcher.dispatch(
    {
      path: request.path,
      method: request.method,
      headers: request.headers as string[],
      // undici's dispatch takes async iterables as bodies (core/request.js) although its types omit them.
      body: request.body as Buffer | Readable | null,
      headersTimeout: request.headersTimeoutMs,
      bodyTimeout: request.bodyTimeoutMs,
      reset: request.closeAfter,
    },
    call,
  )
}

/** undici's (raw-header) dispatch handler, forwarding to an UpstreamHandler. */
class UndiciCall implements Dispatcher.DispatchHandler, UpstreamCall, SocketObserver {
  readonly #handler: UpstreamHandler
  #abort: ((err: Error) => void) | undefined
  /** An abort asked for before undici connected the request. */
  #pendingAbort: Error | undefined
  #resume: (() => void) | undefined
  #done = false

  constructor(handler: UpstreamHandler) {
    this.#handler = handler
  }

  send(dispatcher: Dispatcher, request: UpstreamRequest): void {
    dispatch(dispatcher, request, this)
  }

  get active(): boolean {
    return !this.#done
  }

  abort(err: Error): void {
    if (this.#done) return
    if (this.#abort) this.#abort(err)
    else this.#pendingAbort = err
  }

  resume(): void {
    this.#resume?.()
  }

  onSocket(socket: Socket, uses: number): void {
    this.#handler.onUpstreamSocket(socket, uses)
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort
    if (this.#pendingAbort !== undefined) abort(this.#pendingAbort)
    else expectSocket(this)
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void, statusText: string): boolean {
    if (statusCode < 200) return true // interim responses are not relayed
    this.#resume = resume
    return this.#handler.onUpstreamHead(statusCode, rawHeaders, statusText)
  }

  onData(chunk: Buffer): boolean {
    return this.#handler.onUpstreamData(chunk)
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#done = true
    this.#handler.onUpstreamEnd((trailers ?? EMPTY) as Buffer[])
  }

  onError(err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#handler.onUpstreamError(err)
  }
}

const EMPTY: readonly Buffer[] = []
