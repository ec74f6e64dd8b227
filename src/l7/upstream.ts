/**
 * The upstream side of an exchange, behind one small interface: send a request head (and body), and
 * receive the response head, body chunks, and its end with trailers, or an error; pause and resume the
 * body; abort. Two engines sit under it (`engine` on a pool): our own HTTP/1.1 engine on raw sockets
 * (http1/agent.ts), and undici's `dispatch` (http1/upstream-undici.ts). The exchange, retries and
 * logging see only this interface.
 *
 * Header arrays are flat `[name, value, ...]` strings both ways (latin1, as llhttp gives them).
 */
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'

export interface UpstreamRequest {
  readonly method: string
  /** Origin-form path and query. */
  readonly path: string
  /** `[name, value, ...]`. */
  readonly headers: readonly string[]
  /**
   * The first `checkedHeaders` entries of `headers` are known valid (token names, values without
   * controls: the client's, read by strict llhttp, and what was made from them), so an engine may skip
   * checking them. Default 0.
   */
  readonly checkedHeaders?: number
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
  /**
   * The response head (interim 1xx responses are not reported); false to pause the body until `resume()`.
   * `checked`: llhttp read it in strict mode (the native engine), so every name is a token and every value
   * holds only HTAB, SP, visible ASCII and obs-text: what a client-side head check would check again.
   */
  onUpstreamHead(status: number, rawHeaders: readonly string[], statusText: string, checked: boolean): boolean
  /** A body chunk; false to pause until `resume()`. */
  onUpstreamData(chunk: Buffer): boolean
  /** The response ended; `trailers` is `[name, value, ...]` (empty without trailers). */
  onUpstreamEnd(trailers: readonly string[]): void
  /** The try failed; `err` is the raw error (classified by the exchange), or a SwitchyardError given to `abort()`. */
  onUpstreamError(err: Error): void
  /** The socket the request was written to, and how many requests it carried before (0: a new connection). */
  onUpstreamSocket(socket: Socket, uses: number): void
  /**
   * The engine sent the request again by itself, before any response: HTTP/2, a stream the server
   * refused unprocessed (REFUSED_STREAM, or past a GOAWAY's last stream id). For the retry count.
   */
  onUpstreamResent?(): void
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
 * One try, made before it is sent: a handler that the engine calls back synchronously from `send()`
 * (a refused head, a closed pool) already knows its call. `send()` is called once.
 */
export interface UpstreamTry extends UpstreamCall {
  send(request: UpstreamRequest): void
}

/**
 * The connections to one server, with one settings set (connect timeout, connection cap, keep-alive),
 * whichever engine holds them. Shared by every snapshot that references the server
 * (upstream/connections.ts counts the references).
 */
export interface ServerConnections {
  /**
   * A new try to this server, reporting to `handler`. `client`: the client connection the request came
   * on, for connections private to it (a pool that sends the PROXY protocol); others ignore it.
   */
  call(handler: UpstreamHandler, client?: Socket): UpstreamTry
  /** Closes gracefully: new tries are refused, queued and in-flight ones finish first. */
  close(): Promise<void>
  /** Closes now: queued and in-flight tries fail (SWY_SHUTTING_DOWN). */
  destroy(): Promise<void>
}
