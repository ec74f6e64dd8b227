/**
 * The `node` engine's connections to a server: one undici `Pool` (LIFO socket reuse, a connection cap
 * and a queue of its own), and each try through its `dispatch` with raw header arrays. undici's raw
 * headers are Buffers: they are converted to latin1 strings here, so that the interface (and the
 * native engine under it) deals in strings. The socket a try went out on is learnt from undici's
 * diagnostics channel (upstream/socket-reuse.ts).
 */
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { type buildConnector, type Dispatcher, errors, Pool } from 'undici'
import type { ServerConnections, UpstreamCall, UpstreamHandler, UpstreamRequest, UpstreamTry } from '../l7/upstream.js'
import { connectWithPrefix } from '../upstream/send-proxy.js'
import { expectSocket, type SocketObserver } from '../upstream/socket-reuse.js'
import { tlsConnectOptions, type UpstreamTls } from '../upstream/tls.js'

/** The TLS options undici connects with (it caches sessions itself). */
function undiciTls(settings: UndiciSettings): Record<string, unknown> {
  if (settings.tls === undefined) return {}
  const url = new URL(settings.origin)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const { host: _h, port: _p, ...options } = tlsConnectOptions(settings.tls, host, Number(url.port))
  return options
}

export interface UndiciSettings {
  /** `http://host:port`. */
  readonly origin: string
  readonly maxConnections: number
  /** 0: every request closes its connection (the exchange asks with `closeAfter`). */
  readonly keepAliveMs: number
  readonly connectMs: number
  /** Requests a connection carries before it is closed; 0: no limit. */
  readonly maxRequestsPerConnection: number
  /** TLS to an `https://` origin; undefined: plain TCP. */
  readonly tls?: UpstreamTls | undefined
  /** Bytes each connection opens with, before TLS (a PROXY protocol header); undefined: none. */
  readonly prefix?: Buffer | undefined
}

/**
 * undici's connector, for connections that open with a prefix: undici's own would do the TLS handshake
 * before anything could be written. Connect timeouts are undici's error, which the exchange classifies.
 */
function prefixConnector(settings: UndiciSettings, prefix: Buffer): buildConnector.connector {
  const url = new URL(settings.origin)
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const port = Number(url.port)
  const tls = settings.tls === undefined ? undefined : tlsConnectOptions(settings.tls, host, port)
  return (_options, callback) => {
    const socket = connectWithPrefix({ host, port, noDelay: true }, prefix, tls)
    let done = false
    const finish = (err: Error | null) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.removeListener('error', finish)
      if (err === null) callback(null, socket)
      else {
        socket.destroy()
        callback(err, null)
      }
    }
    // 0: no connect timeout, as the pool's `timeouts.connect` says.
    const timer =
      settings.connectMs > 0
        ? setTimeout(() => finish(new errors.ConnectTimeoutError()), settings.connectMs)
        : undefined
    socket.once('error', finish)
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => finish(null))
  }
}

export class UndiciConnections implements ServerConnections {
  readonly #pool: Pool
  /** `maxRequestsPerConnection: 1`: every request closes its connection. */
  readonly #closeEach: boolean

  constructor(settings: UndiciSettings) {
    const max = settings.maxRequestsPerConnection
    this.#closeEach = max === 1
    this.#pool = new Pool(settings.origin, {
      connections: settings.maxConnections,
      pipelining: 1,
      // keepAlive 0: every request closes its connection (see the exchange); undici needs a positive value.
      keepAliveTimeout: Math.max(settings.keepAliveMs, 1),
      // Also the longest a server's Keep-Alive hint may keep an idle connection: never past ours.
      keepAliveMaxTimeout: Math.max(settings.keepAliveMs, 1),
      connect:
        settings.prefix === undefined
          ? { timeout: settings.connectMs, noDelay: true, ...undiciTls(settings) }
          : prefixConnector(settings, settings.prefix),
      strictContentLength: true,
      // undici closes a connection after maxRequestsPerClient + 1 requests (it counts the ones before);
      // and 0 is no limit, hence `#closeEach` for 1.
      ...(max > 1 ? { maxRequestsPerClient: max - 1 } : {}),
    })
  }

  call(handler: UpstreamHandler): UpstreamTry {
    return new UndiciCall(this.#pool, handler, this.#closeEach)
  }

  close(): Promise<void> {
    return this.#pool.close()
  }

  destroy(): Promise<void> {
    return this.#pool.destroy()
  }
}

/** undici's (raw-header) dispatch handler, forwarding to an UpstreamHandler. */
class UndiciCall implements Dispatcher.DispatchHandler, UpstreamCall, SocketObserver {
  readonly #dispatcher: Dispatcher
  readonly #handler: UpstreamHandler
  readonly #closeEach: boolean
  #abort: ((err: Error) => void) | undefined
  /** An abort asked for before undici connected the request. */
  #pendingAbort: Error | undefined
  #resume: (() => void) | undefined
  #done = false

  constructor(dispatcher: Dispatcher, handler: UpstreamHandler, closeEach: boolean) {
    this.#dispatcher = dispatcher
    this.#handler = handler
    this.#closeEach = closeEach
  }

  send(request: UpstreamRequest): void {
    this.#dispatcher.dispatch(
      {
        path: request.path,
        method: request.method,
        headers: request.headers as string[],
        // undici's dispatch takes async iterables as bodies (core/request.js) although its types omit them.
        body: request.body as Buffer | Readable | null,
        headersTimeout: request.headersTimeoutMs,
        bodyTimeout: request.bodyTimeoutMs,
        reset: request.closeAfter || this.#closeEach,
      },
      this,
    )
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
    return this.#handler.onUpstreamHead(statusCode, latin1(rawHeaders), statusText, false)
  }

  onData(chunk: Buffer): boolean {
    return this.#handler.onUpstreamData(chunk)
  }

  onComplete(trailers: string[] | Buffer[] | null): void {
    this.#done = true
    this.#handler.onUpstreamEnd(trailers === null || trailers.length === 0 ? EMPTY : latin1(trailers))
  }

  onError(err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#handler.onUpstreamError(err)
  }
}

const EMPTY: readonly string[] = []

function latin1(raw: readonly (string | Buffer)[]): string[] {
  const out = new Array<string>(raw.length)
  for (let i = 0; i < raw.length; i++) {
    const v = raw[i] as string | Buffer
    out[i] = typeof v === 'string' ? v : v.toString('latin1')
  }
  return out
}
