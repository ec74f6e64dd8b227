/**
 * An HTTP/1.1 listener, plain or over TLS (`https`: node:https, the certificate and key read from the
 * configured files, replaced on reload without dropping connections): Node's strict parser, client-side
 * timeouts from the config, and the listener snapshot that the request path reads. `swap()` replaces the snapshot for new
 * requests; requests already running keep the one they started with. `drain()` stops accepting, lets
 * in-flight requests finish (their responses carry `Connection: close`), and closes idle connections.
 */
import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import { createServer as createTlsServer, type Server as HttpsServer } from 'node:https'
import type { AddressInfo, Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import type { ListenerConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import { type ListenerRuntime, proxyRequest, type RequestHooks } from '../l7/proxy.js'
import { boundAddress, listenOn } from './bind.js'
import { IdleWait } from './idle-wait.js'
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
  #rt: ListenerRuntime
  /** The TLS material in use, to tell whether a reload changed it. */
  #tls: SecureContextOptions | undefined
  #inFlight = 0
  #draining = false
  readonly #idle = new IdleWait()
  readonly #inFlightGauge: { inc(): void; dec(): void }

  constructor(rt: ListenerRuntime) {
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
      const server = createTlsServer({ ...options, ...rt.tls, ALPNProtocols: ['http/1.1'] }, onRequest)
      // A failed handshake costs its connection only; nothing to answer in HTTP.
      server.on('tlsClientError', (_err, socket) => socket.destroy())
      this.#server = server
    } else this.#server = createServer(options, onRequest)
    this.#server.on('checkContinue', (req, res) => this.#onRequest(req, res, true))
    this.#server.on('clientError', (err, socket) => this.#onClientError(err, socket as Socket))
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
  swap(rt: ListenerRuntime): void {
    // A renewed certificate (new file contents, same paths or not) applies to new handshakes; open
    // connections keep theirs.
    if (rt.tls && 'setSecureContext' in this.#server && !sameTls(rt.tls, this.#tls)) {
      this.#server.setSecureContext(rt.tls)
      this.#tls = rt.tls
    }
    this.#rt = rt
    this.#server.keepAliveTimeout = rt.config.timeouts.idleMs
    this.#server.headersTimeout = rt.config.timeouts.requestHeadersMs
  }

  /**
   * Stops accepting, waits up to `graceMs` for in-flight requests, then closes every connection.
   * Idle keep-alive connections are closed at once; busy ones after their response.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    this.#server.closeIdleConnections()
    if (this.#inFlight > 0) {
      await this.#idle.until(graceMs)
    }
    this.#server.closeAllConnections()
    await closed
  }

  #onRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    try {
      proxyRequest(this.#rt, this, req, res, expectContinue)
    } catch (err) {
      // A bug on the request path must cost one request, never the process.
      this.#rt.logger.error({ err, url: req.url }, 'internal error on the request path')
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' })
        res.end(JSON.stringify({ error: { code: 'SWY_INTERNAL', status: 500, message: 'internal error' } }))
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

function sameTls(a: SecureContextOptions, b: SecureContextOptions | undefined): boolean {
  const eq = (x: unknown, y: unknown) => (Buffer.isBuffer(x) && Buffer.isBuffer(y) ? x.equals(y) : x === y)
  return b !== undefined && eq(a.cert, b.cert) && eq(a.key, b.key) && a.minVersion === b.minVersion
}
