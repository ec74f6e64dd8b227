/**
 * The native engine's connections to one server: a pool of HTTP/1.1 connections on raw sockets
 * (upstream-connection.ts), each carrying one request at a time (upstream-call.ts).
 *
 * - Reuse is LIFO: a request takes the most recently used idle connection, so that the busiest few stay
 *   warm and the others age out.
 * - At most `maxConnections` connections are open or opening. A request that finds none idle opens one
 *   if it may; otherwise it waits in a FIFO queue, served as connections free up. (Admission, in
 *   upstream/pool.ts, bounds how many may wait: `maxPending`.) A waiting request that is aborted leaves
 *   the queue. A connect that fails fails the request that has waited longest.
 * - A connection whose response was read whole goes back to the idle pool on the next turn of the event
 *   loop (as undici does: a server that sent bytes past its response has had the chance to show it),
 *   for as long as `keepAliveMs`, or the server's `Keep-Alive: timeout=` less KEEP_ALIVE_HINT_MARGIN_MS
 *   if that is shorter; then it is closed. It is not kept at all when the server or the request asked
 *   for `Connection: close`, after `maxRequestsPerConnection` requests, after a HEAD request (undici's
 *   caution, against servers that send a body anyway), when the response came before the request body
 *   was sent whole, or when bytes followed the response.
 * - `close()`: new requests are refused; queued and in-flight ones finish, then every connection closes.
 *   `destroy()`: queued and in-flight requests fail with SWY_SHUTTING_DOWN, and every connection closes.
 */
import { ERROR_CODES, SwitchyardError } from '../core/errors.js'
import type { ServerConnections, UpstreamHandler, UpstreamTry } from '../l7/upstream.js'
import { SessionCache, type UpstreamTls } from '../upstream/tls.js'
import { type CallAgent, NativeCall } from './upstream-call.js'
import { type ConnectionOwner, type ConnectTarget, UpstreamConnection } from './upstream-connection.js'

export { KEEP_ALIVE_HINT_MARGIN_MS } from './upstream-call.js'

export interface AgentSettings {
  readonly host: string
  readonly port: number
  /** `host:port`, the Host header of a request that has none. */
  readonly hostHeader: string
  /** Connections open or opening at once, at most (≥ 1). */
  readonly maxConnections: number
  /** How long an idle connection is kept (ms); 0: every connection carries one request. */
  readonly keepAliveMs: number
  /** Time to connect (ms); 0: no limit. */
  readonly connectMs: number
  /** Requests one connection carries before it is closed; 0: no limit. */
  readonly maxRequestsPerConnection: number
  /** TLS to the server (an `https://` one); undefined: plain TCP. */
  readonly tls?: UpstreamTls | undefined
  /** Bytes each connection opens with, before TLS (a PROXY protocol header); undefined: none. */
  readonly prefix?: Buffer | undefined
}

export class Http1Agent implements ServerConnections, CallAgent, ConnectionOwner {
  readonly hostHeader: string
  readonly keepAliveMs: number
  readonly maxRequestsPerConnection: number
  readonly #target: ConnectTarget
  readonly #max: number
  /** Idle connections, the most recently used last. */
  readonly #idle: UpstreamConnection[] = []
  /** Every connection open or opening. */
  readonly #all = new Set<UpstreamConnection>()
  /** Requests waiting for a connection, in arrival order. */
  readonly #waiting = new Set<NativeCall>()
  #connecting = 0
  /** Connections whose response was read, coming back on the next turn of the event loop. */
  #returning = 0
  #pumping = false
  #closing = false
  #destroyed = false
  /** Resolved once closing and nothing is left (no connection, no waiting request). */
  #whenEmpty: Promise<void> | undefined
  #empty: (() => void) | undefined

  constructor(settings: AgentSettings) {
    this.hostHeader = settings.hostHeader
    this.keepAliveMs = settings.keepAliveMs
    this.maxRequestsPerConnection = settings.maxRequestsPerConnection
    this.#target = {
      host: settings.host,
      port: settings.port,
      connectMs: settings.connectMs,
      tls: settings.tls === undefined ? undefined : { material: settings.tls, sessions: new SessionCache() },
      prefix: settings.prefix,
    }
    this.#max = Math.max(1, settings.maxConnections)
  }

  call(handler: UpstreamHandler): UpstreamTry {
    return new NativeCall(this, handler)
  }

  /** Connections open or opening, idle ones, and requests waiting: for tests and tools. */
  get stats(): { readonly open: number; readonly idle: number; readonly waiting: number } {
    return { open: this.#all.size, idle: this.#idle.length, waiting: this.#waiting.size }
  }

  // --- requests ---------------------------------------------------------------------------------

  submit(call: NativeCall): void {
    if (this.#closing) {
      const code = this.#destroyed ? 'SWY_SHUTTING_DOWN' : 'SWY_UPSTREAM_RESET'
      return call.abort(new SwitchyardError(code, `${ERROR_CODES[code].text}: the connection pool is closed`))
    }
    if (this.#waiting.size === 0) {
      const conn = this.#takeIdle()
      if (conn !== undefined) return call.start(conn)
    }
    this.#waiting.add(call)
    this.#pump()
  }

  withdraw(call: NativeCall): void {
    this.#waiting.delete(call)
    this.#checkEmpty()
  }

  /** The most recently used idle connection that is still open. */
  #takeIdle(): UpstreamConnection | undefined {
    const idle = this.#idle
    for (let conn = idle.pop(); conn !== undefined; conn = idle.pop()) {
      if (conn.usable) return conn
      conn.destroy()
    }
    return undefined
  }

  /** Serves waiting requests: idle connections first, then new ones while the cap allows. */
  #pump(): void {
    if (this.#pumping) return
    this.#pumping = true
    try {
      const waiting = this.#waiting
      while (waiting.size > 0) {
        const conn = this.#takeIdle()
        if (conn !== undefined) {
          const call = waiting.values().next().value as NativeCall
          waiting.delete(call)
          call.start(conn)
          continue
        }
        // A connection about to come back serves a waiting request as well as a new one would.
        if (this.#destroyed || this.#all.size >= this.#max || this.#connecting + this.#returning >= waiting.size) break
        this.#connecting++
        this.#all.add(new UpstreamConnection(this, this.#target))
      }
    } finally {
      this.#pumping = false
    }
  }

  // --- connections ------------------------------------------------------------------------------

  connected(conn: UpstreamConnection): void {
    this.#connecting--
    if (this.#destroyed) return conn.destroy()
    this.#park(conn, this.keepAliveMs)
  }

  connectFailed(conn: UpstreamConnection, err: SwitchyardError): void {
    this.#connecting--
    this.#all.delete(conn)
    const first = this.#waiting.values().next()
    if (first.done !== true) {
      this.#waiting.delete(first.value)
      first.value.abort(err)
    }
    this.#pump()
    this.#checkEmpty()
  }

  /**
   * Connections handed back this turn, with their agent and keep time (flat triples), taken back
   * together on the next turn: one setImmediate for all of them, not one per response.
   */
  static readonly #handedBack: (Http1Agent | UpstreamConnection | number)[] = []

  static readonly #takeBackAll = (): void => {
    const batch = Http1Agent.#handedBack.splice(0)
    for (let i = 0; i < batch.length; i += 3)
      (batch[i] as Http1Agent).#takeBack(batch[i + 1] as UpstreamConnection, batch[i + 2] as number)
  }

  released(conn: UpstreamConnection, keepMs: number): void {
    if (keepMs <= 0 || this.#destroyed) return conn.destroy()
    // Taken back on the next turn: bytes a server sent past its response have had the time to arrive.
    this.#returning++
    if (Http1Agent.#handedBack.push(this, conn, keepMs) === 3) setImmediate(Http1Agent.#takeBackAll)
  }

  #takeBack(conn: UpstreamConnection, keepMs: number): void {
    this.#returning--
    if (conn.state === 'free') this.#park(conn, keepMs)
    // Closed meanwhile: a waiting request that counted on it needs another.
    else this.#pump()
  }

  closed(conn: UpstreamConnection): void {
    this.#all.delete(conn)
    const at = this.#idle.lastIndexOf(conn)
    if (at >= 0) this.#idle.splice(at, 1)
    this.#pump()
    this.#checkEmpty()
  }

  /** A free connection: to the first waiting request, or to the idle pool for `keepMs`. */
  #park(conn: UpstreamConnection, keepMs: number): void {
    const first = this.#waiting.values().next()
    if (first.done !== true) {
      this.#waiting.delete(first.value)
      return first.value.start(conn)
    }
    if (this.#closing || keepMs <= 0) return conn.destroy()
    conn.idle(keepMs)
    this.#idle.push(conn)
  }

  // --- the end ----------------------------------------------------------------------------------

  close(): Promise<void> {
    this.#closing = true
    for (const conn of this.#idle.splice(0)) conn.destroy()
    return this.#untilEmpty()
  }

  destroy(): Promise<void> {
    this.#closing = true
    this.#destroyed = true
    const err = new SwitchyardError(
      'SWY_SHUTTING_DOWN',
      `${ERROR_CODES.SWY_SHUTTING_DOWN.text}: upstream connections closed`,
    )
    for (const call of [...this.#waiting]) {
      this.#waiting.delete(call)
      call.abort(err)
    }
    this.#idle.length = 0
    for (const conn of [...this.#all]) conn.destroy(err)
    return this.#untilEmpty()
  }

  #untilEmpty(): Promise<void> {
    this.#whenEmpty ??= new Promise<void>((resolve) => {
      this.#empty = resolve
    })
    const done = this.#whenEmpty
    this.#checkEmpty()
    return done
  }

  #checkEmpty(): void {
    if (!this.#closing || this.#all.size > 0 || this.#waiting.size > 0) return
    this.#empty?.()
    this.#empty = undefined
  }
}
