/**
 * An HTTP listener, plain or over TLS (`https`: node:https, the certificate and key read from the
 * configured files, replaced on reload without dropping connections): Node's strict HTTP/1.1 parser,
 * client-side timeouts from the config, and the listener snapshot that the request path reads. With
 * `http2` on, connections that speak HTTP/2 (ALPN `h2` over TLS, the connection preface in clear) go to
 * an `Http2Front` instead; both kinds of request take the same proxy path.
 *
 * `swap()` replaces the snapshot for new requests; requests already running keep the one they started
 * with. `drain()` stops accepting, lets in-flight requests finish (HTTP/1.1 responses carry
 * `Connection: close`, HTTP/2 sessions get a GOAWAY), and closes idle connections.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { SecureContextOptions, TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import { clientOf } from '../l7/client.js'
import { handleRequest, type RequestHooks } from '../l7/request.js'
import { boundAddress, listenOn } from './bind.js'
import { Http2Front, type Http2Options, sniffPreface } from './http2.js'
import { IdleWait } from './idle-wait.js'
import type { HttpSnapshot, ListenerSnapshot } from './snapshot.js'
import type { Listener } from './types.js'

/** Reads the certificate and key of an `https` listener. Throws SWY_TLS_CONFIG naming the file. */
export function tlsOptions(config: ListenerConfig): SecureContextOptions {
  const tls = config.tls
  if (!tls)
    throw new SwitchyardError('SWY_TLS_CONFIG', `listener ${config.name}: protocol https needs tls.cert and tls.key`)
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new SwitchyardError(
        'SWY_TLS_CONFIG',
        `listener ${config.name}: cannot read the TLS ${what} ${file}: ${(err as Error).message}`,
      )
    }
  }
  return { cert: read(tls.certFile, 'certificate'), key: read(tls.keyFile, 'key'), minVersion: tls.minVersion }
}

export class HttpListener implements RequestHooks, Listener {
  readonly #server: Server | HttpsServer
  #rt: HttpSnapshot
  /** The TLS material in use, to tell whether a reload changed it. */
  #tls: SecureContextOptions | undefined
  #inFlight = 0
  #draining = false
  readonly #idle = new IdleWait()
  readonly #inFlightGauge: { inc(): void; dec(): void }
  /** Created when HTTP/2 is first turned on; kept (and drained) if a reload turns it off. */
  #h2: Http2Front | undefined
  /** Plain connections whose first bytes are still awaited, to tell HTTP/2 from HTTP/1.1. */
  readonly #sniffing = new Set<Socket>()

  constructor(rt: HttpSnapshot) {
    this.#rt = rt
    this.#inFlightGauge = rt.metrics.inFlightOf(rt.config.name)
    const t = rt.config.timeouts
    const options: ServerOptions = {
      keepAliveTimeout: t.idleMs,
      headersTimeout: t.requestHeadersMs,
      // Whole-request limits are the `total` timeout's job; a long upload is not a slow client.
      requestTimeout: 0,
      connectionsCheckingInterval: 1000,
      // Checked on the request path instead, so that the 400 carries SWY_BAD_REQUEST.
      requireHostHeader: false,
      joinDuplicateHeaders: false,
      noDelay: true,
    }
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.#onRequest(req, res, false)
    this.#tls = rt.tls
    if (rt.tls) {
      const server = createTlsServer({ ...options, ...rt.tls, ALPNCallback: this.#chooseAlpn }, onRequest)
      // A failed handshake costs its connection only; nothing to answer in HTTP.
      server.on('tlsClientError', (_err, socket) => socket.destroy())
      // node:https hands each handshaken connection to node:http; those that chose h2 go to HTTP/2.
      const toH1 = takeListeners(server, 'secureConnection')
      server.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2' && this.#h2) this.#h2.accept(socket)
        else toH1(socket)
      })
      this.#server = server
    } else {
      const server = createServer(options, onRequest)
      const toH1 = takeListeners(server, 'connection')
      server.on('connection', (socket: Socket) => {
        if (this.#rt.config.http2 === undefined) return toH1(socket)
        this.#sniffing.add(socket)
        sniffPreface(socket, this.#rt.config.timeouts.requestHeadersMs, (s, h2) => {
          this.#sniffing.delete(s)
          if (h2 && this.#h2) this.#h2.accept(s)
          else toH1(s)
        })
        socket.once('close', () => this.#sniffing.delete(socket))
      })
      this.#server = server
    }
    this.#server.on('checkContinue', (req, res) => this.#onRequest(req, res, true))
    this.#server.on('clientError', (err, socket) => this.#onClientError(err, socket as Socket))
    this.#configureH2(rt)
  }

  /** ALPN: h2 when HTTP/2 is on and offered, else http/1.1; a client that offers neither is refused. */
  readonly #chooseAlpn = ({ protocols }: { protocols: string[] }): string | undefined => {
    if (this.#rt.config.http2 !== undefined && protocols.includes('h2')) return 'h2'
    return protocols.includes('http/1.1') ? 'http/1.1' : undefined
  }

  #configureH2(rt: HttpSnapshot): void {
    const h2 = rt.config.http2
    if (h2 === undefined) return
    const options: Http2Options = {
      maxConcurrentStreams: h2.maxConcurrentStreams,
      idleMs: rt.config.timeouts.idleMs,
      pingIntervalMs: h2.pingIntervalMs,
      pingTimeoutMs: h2.pingTimeoutMs,
    }
    if (this.#h2) this.#h2.configure(options)
    else
      this.#h2 = new Http2Front(options, rt.metrics.http2Of(rt.config.name), (req, res, expectContinue) =>
        this.#onRequest(req, res, expectContinue),
      )
  }

  get name(): string {
    return this.#rt.config.name
  }

  get draining(): boolean {
    return this.#draining
  }

  get inFlight(): number {
    return this.#inFlight
  }

  begin(): void {
    this.#inFlight++
    this.#inFlightGauge.inc()
  }

  end(): void {
    this.#inFlight--
    this.#inFlightGauge.dec()
    if (this.#inFlight === 0) this.#idle.notifyIdle()
  }

  /** Binds the configured address. Rejects with SWY_LISTEN_IN_USE / SWY_LISTEN_FAILED. */
  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#rt.config.host, this.#rt.config.port)
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.#server)
  }

  /** Installs a new snapshot for requests that start from now on. */
  swap(rt: ListenerSnapshot): void {
    if (rt.kind !== 'http') throw new Error(`listener ${rt.config.name}: a TCP snapshot for an HTTP listener`)
    // A renewed certificate (new file contents, same paths or not) applies to new handshakes; open
    // connections keep theirs.
    if (rt.tls && 'setSecureContext' in this.#server && !sameTls(rt.tls, this.#tls)) {
      this.#server.setSecureContext(rt.tls)
      this.#tls = rt.tls
    }
    this.#rt = rt
    this.#server.keepAliveTimeout = rt.config.timeouts.idleMs
    this.#server.headersTimeout = rt.config.timeouts.requestHeadersMs
    this.#configureH2(rt)
  }

  /**
   * Stops accepting, waits up to `graceMs` for in-flight requests, then closes every connection.
   * Idle keep-alive connections are closed at once; busy ones after their response.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeIdleConnections()
    for (const socket of this.#sniffing) socket.destroy()
    this.#h2?.drain()
    if (this.#inFlight > 0) {
      await this.#idle.until(graceMs)
    }
    this.#server.closeAllConnections()
    this.#h2?.destroyAll()
    await closed
  }

  #onRequest(
    req: IncomingMessage | Http2ServerRequest,
    res: ServerResponse | Http2ServerResponse,
    expectContinue: boolean,
  ): void {
    try {
      handleRequest(this.#rt, this, clientOf(req, res), expectContinue)
    } catch (err) {
      // A bug on the request path must cost one request, never the process.
      this.#rt.logger.error({ err, url: req.url }, 'internal error on the request path')
      if (!res.headersSent) {
        const body = JSON.stringify({ error: { code: 'SWY_INTERNAL', status: 500, message: 'internal error' } })
        if (req.httpVersionMajor === 2) res.writeHead(500, { 'content-type': 'application/json' }).end(body)
        else res.writeHead(500, { 'content-type': 'application/json', connection: 'close' }).end(body)
      } else res.destroy()
    }
  }

  /** Malformed requests: the right 4xx, then close. Never throws, never crashes the process. */
  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    const code = err.code ?? ''
    if (code === 'ECONNRESET' || !socket.writable) {
      socket.destroy()
      return
    }
    let status = 400
    let reason = 'Bad Request'
    if (code === 'HPE_HEADER_OVERFLOW') {
      status = 431
      reason = 'Request Header Fields Too Large'
    } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') {
      status = 408
      reason = 'Request Timeout'
    } else if (code === 'HPE_UNEXPECTED_CONTENT_LENGTH' || code === 'HPE_INVALID_TRANSFER_ENCODING') {
      status = 400
    }
    const body = JSON.stringify({ error: { code: 'SWY_BAD_REQUEST', status, message: reason, parser: code } })
    socket.end(
      `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
    )
    socket.destroySoon?.()
    this.#rt.logger.info(
      { type: 'client-error', status, parser: code, client: socket.remoteAddress },
      'malformed request',
    )
  }
}

/**
 * Removes the listeners node:http(s) installed for `event` and returns a function that runs them, so
 * that a connection can be offered to them or to HTTP/2.
 */
function takeListeners(server: Server | HttpsServer, event: string): (socket: Socket) => void {
  const listeners = server.listeners(event) as ((socket: Socket) => void)[]
  server.removeAllListeners(event)
  return (socket) => {
    for (const l of listeners) l.call(server, socket)
  }
}

function sameTls(a: SecureContextOptions, b: SecureContextOptions | undefined): boolean {
  const eq = (x: unknown, y: unknown) => (Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y)
  return b !== undefined && eq(a.cert, b.cert) && eq(a.key, b.key) && a.minVersion === b.minVersion
}
