/**
 * An HTTP listener, plain or over TLS (`https`: the certificate and key read from the configured
 * files, replaced on reload without dropping connections), with the listener snapshot that the
 * request path reads. HTTP/1.1 is served by one of two engines (`engine` in the config):
 * - `node`: node:http(s), its strict parser and its client-side timeouts;
 * - `native`: our own (http1/), llhttp on the sockets of a plain `net`/`tls` server. Used when the
 *   running Node passes `nativeParser()`'s self-test; otherwise one warning is logged (once per
 *   process) and node:http serves. The engine is chosen when the listener is built: a reload that
 *   changes it applies on restart (the listener keeps its socket, and a second one cannot bind the
 *   same address), and says so in the log.
 * With `http2` on, connections that speak HTTP/2 (ALPN `h2` over TLS, the connection preface in clear)
 * go to an `Http2Front` instead, whatever the engine; every kind of request takes the same proxy path.
 *
 * `swap()` replaces the snapshot for new requests; requests already running keep the one they started
 * with. `drain()` stops accepting, lets in-flight requests finish (HTTP/1.1 responses carry
 * `Connection: close`, HTTP/2 sessions get a GOAWAY), and closes idle connections.
 */

import { readFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { type AddressInfo, createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net'
import {
  createSecureContext,
  createServer as createTlsServer,
  type SecureContext,
  TLSSocket,
  type Server as TlsServer,
} from 'node:tls'
import { ACME_TLS_ALPN, alpnChallengeFile } from '../acme/index.js'
import type { Engine } from '../config/schema.js'
import { bareIp } from '../core/address.js'
import { atAccept } from '../filters/access.js'
import { badRequest } from '../http1/bad-request.js'
import type { NativeClient } from '../http1/client-side.js'
import { NodeConnection } from '../http1/node-connection.js'
import { nativeParser } from '../http1/parser.js'
import { type Http1Options, Http1Server } from '../http1/server.js'
import { upgradeClient } from '../http1/upgrade-port.js'
import { type HelloResult, MAX_HELLO_BYTES, readClientHello } from '../l4/client-hello.js'
import { type ClientSide, Http1Client, Http2Client } from '../l7/client.js'
import { handleRequest, type RequestHooks } from '../l7/request.js'
import { CLOSE_WAIT_MS, TunnelSet } from '../tunnel/index.js'
import { boundAddress, listenOn } from './bind.js'
import { contextFor, type ListenerTls } from './certificates.js'
import { ConnectionGate } from './gate.js'
import { Http2Front, type Http2Options, sniffPreface } from './http2.js'
import { IdleWait } from './idle-wait.js'
import { acceptProxied, peerAddress } from './proxy-protocol.js'
import type { HttpSnapshot, ListenerSnapshot } from './snapshot.js'
import type { Listener } from './types.js'

const INTERNAL_ERROR_BODY = JSON.stringify({ error: { code: 'SWY_INTERNAL', status: 500, message: 'internal error' } })

/** The engine a listener's HTTP/1.1 connections get, and the socket server that feeds it. */
type Front =
  | { readonly engine: 'node'; readonly server: Server | HttpsServer }
  | { readonly engine: 'native'; readonly server: NetServer | TlsServer; readonly http1: Http1Server }

/** The native engine was asked for and could not be used: logged once per process. */
let nativeFallbackLogged = false

/** The engine to run for `wanted`: `native` only when the parser's self-test passes. */
function effectiveEngine(wanted: Engine, rt: HttpSnapshot): Engine {
  if (wanted !== 'native') return 'node'
  const check = nativeParser()
  if (check.ok) return 'native'
  if (!nativeFallbackLogged) {
    nativeFallbackLogged = true
    rt.logger.warn(
      { listener: rt.config.name, reason: check.reason },
      `engine native is not available on Node ${process.version} (${check.reason}): using node:http`,
    )
  }
  return 'node'
}

/**
 * node:http keeps the first `maxHeadersCount` header fields and silently drops the rest: one more than
 * the limit lets the request path see that it was crossed and answer 431.
 */
function headersCountOf(rt: HttpSnapshot): number {
  return rt.config.limits.maxHeaderCount + 1
}

function http1Options(rt: HttpSnapshot): Http1Options {
  const c = rt.config
  return {
    requestHeadersMs: c.timeouts.requestHeadersMs,
    idleMs: c.timeouts.idleMs,
    maxRequestsPerConnection: c.maxRequestsPerConnection,
    maxHeaderBytes: c.limits.maxHeaderBytes,
  }
}

export class HttpListener implements RequestHooks, Listener {
  readonly #front: Front
  #rt: HttpSnapshot
  /** The TLS material in use, to tell whether a reload changed it. */
  #tls: ListenerTls | undefined
  #inFlight = 0
  #draining = false
  readonly #idle = new IdleWait()
  readonly tunnels = new TunnelSet()
  readonly #inFlightGauge: { inc(): void; dec(): void }
  /** Created when HTTP/2 is first turned on; kept (and drained) if a reload turns it off. */
  #h2: Http2Front | undefined
  /** Plain connections whose first bytes are still awaited, to tell HTTP/2 from HTTP/1.1. */
  readonly #sniffing = new Set<Socket>()
  /**
   * Every TCP connection, whatever holds it. A drain ends, after its grace period, those that no
   * engine ended: a TLS handshake under way or stalled (node:tls would wait 120 s for it), a PROXY
   * header or preface being read, or an HTTP/2 session whose socket outlived its destroy (Node 24
   * leaves one after a CONNECT stream).
   */
  readonly #raw = new Set<Socket>()
  /** Connection limits and a listener's `access` with `action: close`. */
  readonly #gate: ConnectionGate

  constructor(rt: HttpSnapshot) {
    this.#rt = rt
    this.#inFlightGauge = rt.metrics.inFlightOf(rt.config.name)
    this.#tls = rt.tls
    this.#front = effectiveEngine(rt.config.engine, rt) === 'native' ? this.#nativeFront(rt) : this.#nodeFront(rt)
    const refused = rt.metrics.connectionsRefused
    this.#gate = new ConnectionGate(rt.config.limits, atAccept(rt.config.rules.access), (reason) =>
      refused.labels(this.#rt.config.name, reason).inc(),
    )
    // Every connection is counted and gated first (behind a PROXY header, once its address is known).
    const next = takeListeners(this.#front.server, 'connection')
    this.#front.server.on('connection', (socket: Socket) => {
      this.#raw.add(socket)
      socket.once('close', () => this.#raw.delete(socket))
      if (!this.#rt.config.proxyProtocol && !this.#gate.admit(socket, bareIp(socket.remoteAddress))) return
      next(socket)
    })
    this.#configureH2(rt)
  }

  /** node:http(s) for HTTP/1.1. */
  #nodeFront(rt: HttpSnapshot): Front {
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
      maxHeaderSize: rt.config.limits.maxHeaderBytes,
    }
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.#onNodeRequest(req, res, false)
    let server: Server | HttpsServer
    if (rt.tls) {
      const tlsServer = createHttpsServer(
        { ...options, ...rt.tls.options, ALPNCallback: this.#chooseAlpn, SNICallback: this.#chooseCertificate },
        onRequest,
      )
      // A failed handshake costs its connection only; nothing to answer in HTTP.
      tlsServer.on('tlsClientError', (_err, socket) => socket.destroy())
      this.#alpnChallenges(tlsServer)
      // After the ACME peek, so that it runs before it: the PROXY header comes first on the wire.
      this.#proxiedTls(tlsServer)
      // node:https hands each handshaken connection to node:http; those that chose h2 go to HTTP/2.
      const toH1 = takeListeners(tlsServer, 'secureConnection')
      tlsServer.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2' && this.#h2) this.#h2.accept(socket)
        else toH1(socket)
      })
      server = tlsServer
    } else {
      const plain = createServer(options, onRequest)
      const toH1 = takeListeners(plain, 'connection')
      plain.on('connection', (socket: Socket) => this.#accepted(socket, (s) => this.#sniffOr(s, toH1)))
      server = plain
    }
    server.maxRequestsPerSocket = rt.config.maxRequestsPerConnection
    server.maxHeadersCount = headersCountOf(rt)
    server.on('checkContinue', (req, res) => this.#onNodeRequest(req, res, true))
    server.on('clientError', (err, socket) => this.#onClientError(err, socket as Socket))
    server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#onNodeUpgrade(req, socket, head))
    return { engine: 'node', server }
  }

  /** A plain `net`/`tls` server whose HTTP/1.1 connections go to the native engine. */
  #nativeFront(rt: HttpSnapshot): Front {
    const http1 = new Http1Server(rt.config.name, http1Options(rt), {
      request: (client, expectContinue) => this.#onNativeRequest(client, expectContinue),
      malformed: (status, code, peer) => this.#logMalformed(status, code, peer),
      failed: (err) =>
        this.#rt.logger.error({ err }, 'internal error in the native HTTP/1.1 engine: connection closed'),
    })
    let server: NetServer | TlsServer
    // allowHalfOpen: a client's FIN is handled by the engine (what it sent is answered or refused).
    if (rt.tls) {
      const tlsServer = createTlsServer({
        ...rt.tls.options,
        ALPNCallback: this.#chooseAlpn,
        SNICallback: this.#chooseCertificate,
        noDelay: true,
        allowHalfOpen: true,
      })
      tlsServer.on('tlsClientError', (_err, socket) => socket.destroy())
      this.#alpnChallenges(tlsServer)
      // After the ACME peek, so that it runs before it: the PROXY header comes first on the wire.
      this.#proxiedTls(tlsServer)
      tlsServer.on('secureConnection', (socket: TLSSocket) => {
        if (socket.alpnProtocol === 'h2' && this.#h2) this.#h2.accept(socket)
        else http1.accept(socket)
      })
      server = tlsServer
    } else {
      const plain = createNetServer({ noDelay: true, allowHalfOpen: true })
      plain.on('connection', (socket: Socket) =>
        this.#accepted(socket, (s) => this.#sniffOr(s, (h1) => http1.accept(h1))),
      )
      server = plain
    }
    return { engine: 'native', server, http1 }
  }

  /**
   * ACME tls-alpn-01 (`tls.acme.challenge`): each connection's ClientHello is read before the TLS
   * server takes it. One that offers only `acme-tls/1` (a CA validating, RFC 8737 §3) gets the
   * challenge certificate the ACME manager made for its server name, and is closed after the
   * handshake; every other one goes to the TLS server as it came (node:tls reads the bytes left in the
   * socket's buffer). The cost: one read of the ClientHello per connection, on this listener only.
   */
  #alpnChallenges(server: NetServer): void {
    const acme = this.#rt.config.tls?.acme
    if (acme?.challenge !== 'tls-alpn-01') return
    const toTls = takeListeners(server, 'connection')
    server.on('connection', (socket: Socket) =>
      peekClientHello(socket, this.#rt.config.timeouts.requestHeadersMs, (hello) => {
        if (hello?.kind === 'hello' && hello.alpn.length === 1 && hello.alpn[0] === ACME_TLS_ALPN)
          return answerAlpnChallenge(socket, acme.storageDir, hello.serverName)
        toTls(socket)
      }),
    )
  }

  /**
   * `proxyProtocol` on an `https` listener: each TCP connection gives its PROXY header before the TLS
   * server sees it. The bytes after the header stay in the socket's buffer, unread: node:tls takes
   * them from there when it wraps the socket (so the socket is not resumed here).
   */
  #proxiedTls(server: NetServer): void {
    if (!this.#rt.config.proxyProtocol) return
    const toTls = takeListeners(server, 'connection')
    server.on('connection', (socket: Socket) => this.#accepted(socket, toTls, false))
  }

  /**
   * A plain connection, past its PROXY protocol header when the listener has `proxyProtocol` on.
   * `resume`: the reader after us reads from the stream (false: from the buffer, as node:tls does).
   */
  #accepted(socket: Socket, next: (socket: Socket) => void, resume = true): void {
    const rt = this.#rt
    if (!rt.config.proxyProtocol) return next(socket)
    this.#sniffing.add(socket)
    acceptProxied(
      socket,
      rt.config.timeouts.requestHeadersMs,
      (s) => {
        this.#sniffing.delete(s)
        if (this.#gate.admit(s, bareIp(peerAddress(s)))) next(s)
      },
      (reason) => {
        this.#sniffing.delete(socket)
        this.#rt.logger.info(
          { type: 'client-error', client: socket.remoteAddress, reason },
          'PROXY protocol header refused',
        )
      },
      resume,
    )
    socket.once('close', () => this.#sniffing.delete(socket))
  }

  /** A plain connection: HTTP/1.1, or HTTP/2 with prior knowledge when `http2` is on (sniffed). */
  #sniffOr(socket: Socket, toH1: (socket: Socket) => void): void {
    if (this.#rt.config.http2 === undefined) return toH1(socket)
    this.#sniffing.add(socket)
    sniffPreface(socket, this.#rt.config.timeouts.requestHeadersMs, (s, h2) => {
      this.#sniffing.delete(s)
      if (h2 && this.#h2) this.#h2.accept(s)
      else toH1(s)
    })
    socket.once('close', () => this.#sniffing.delete(socket))
  }

  /** SNI: the certificate that names the host the client asks for, else the default (the first). */
  readonly #chooseCertificate = (servername: string, cb: (err: Error | null, ctx?: SecureContext) => void): void => {
    const tls = this.#rt.tls
    cb(null, tls === undefined ? undefined : contextFor(tls, servername))
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
      maxHeaderListBytes: rt.config.limits.maxHeaderBytes,
      maxHeaderCount: rt.config.limits.maxHeaderCount,
    }
    if (this.#h2) this.#h2.configure(options)
    else
      this.#h2 = new Http2Front(options, rt.metrics.http2Of(rt.config.name), (req, res, expectContinue) =>
        this.#onH2Request(req, res, expectContinue),
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

  get connections(): number {
    return this.#gate.open
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

  /** The HTTP/1.1 engine in use. */
  get engine(): Engine {
    return this.#front.engine
  }

  /** Binds the configured address. Rejects with SWY_LISTEN_IN_USE / SWY_LISTEN_FAILED. */
  listen(): Promise<AddressInfo> {
    return listenOn(this.#front.server, this.#rt.config.host, this.#rt.config.port)
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.#front.server)
  }

  /** Installs a new snapshot for requests that start from now on. */
  swap(rt: ListenerSnapshot): void {
    if (rt.kind !== 'http') throw new Error(`listener ${rt.config.name}: a TCP snapshot for an HTTP listener`)
    const front = this.#front
    // A renewed certificate (new file contents, same paths or not) applies to new handshakes; open
    // connections keep theirs.
    if (rt.tls && 'setSecureContext' in front.server && rt.tls.fingerprint !== this.#tls?.fingerprint) {
      front.server.setSecureContext(rt.tls.options)
      this.#tls = rt.tls
    }
    if (rt.config.engine !== this.#rt.config.engine)
      rt.logger.warn(
        { listener: rt.config.name, engine: rt.config.engine, running: front.engine },
        `listener ${rt.config.name}: engine ${rt.config.engine} applies on restart; ${front.engine} keeps serving`,
      )
    this.#rt = rt
    this.#gate.configure(rt.config.limits, atAccept(rt.config.rules.access))
    switch (front.engine) {
      case 'node':
        front.server.keepAliveTimeout = rt.config.timeouts.idleMs
        front.server.headersTimeout = rt.config.timeouts.requestHeadersMs
        front.server.maxRequestsPerSocket = rt.config.maxRequestsPerConnection
        front.server.maxHeadersCount = headersCountOf(rt)
        // Read by node:http as each connection is accepted (the option sets it at construction).
        ;(front.server as { maxHeaderSize?: number }).maxHeaderSize = rt.config.limits.maxHeaderBytes
        break
      case 'native':
        front.http1.configure(http1Options(rt))
        break
      default: {
        const unknown: never = front
        throw new Error(`unknown engine ${JSON.stringify(unknown)}`)
      }
    }
    this.#configureH2(rt)
  }

  /**
   * Stops accepting, waits up to `graceMs` for in-flight requests, then closes every connection.
   * Idle keep-alive connections are closed at once; busy ones after their response.
   */
  async drain(graceMs: number): Promise<void> {
    this.#draining = true
    const front = this.#front
    const closed = new Promise<void>((resolve) => front.server.close(() => resolve()))
    switch (front.engine) {
      case 'node':
        front.server.closeIdleConnections()
        break
      case 'native':
        front.http1.drain()
        break
      default: {
        const unknown: never = front
        throw new Error(`unknown engine ${JSON.stringify(unknown)}`)
      }
    }
    for (const socket of this.#sniffing) socket.destroy()
    this.#h2?.drain()
    // Tunnels close at random times over the window, early enough in the grace period for their close
    // handshakes to end within it.
    const windowMs = Math.min(this.#rt.config.tunnelCloseWindowMs, Math.max(0, graceMs - 2 * CLOSE_WAIT_MS))
    this.tunnels.closeGradually(windowMs)
    if (this.#inFlight > 0) {
      await this.#idle.until(graceMs)
    }
    if (front.engine === 'node') front.server.closeAllConnections()
    else front.http1.destroyAll()
    this.#h2?.destroyAll()
    this.tunnels.destroyAll()
    for (const socket of this.#raw) socket.destroy()
    await closed
  }

  /**
   * A node:http request (HTTP/1.x, whatever version its request line names), handed to the request
   * path when the requests ahead of it on its connection allow (http1/node-connection.ts).
   */
  #onNodeRequest(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void {
    const client = new Http1Client(req, res)
    NodeConnection.of(req.socket).offer(req, res, client, () =>
      this.#handle(client, expectContinue, () =>
        res.writeHead(500, { 'content-type': 'application/json', connection: 'close' }).end(INTERNAL_ERROR_BODY),
      ),
    )
  }

  /**
   * An upgrade request on node:http, which stops parsing at its head and hands over the socket. A
   * Content-Length body is read by the upgrade port (http1/upgrade-port.ts); a chunked one is refused
   * (400, closed), since node:http left it unparsed. The native engine reads either.
   */
  #onNodeUpgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (req.headers['transfer-encoding'] !== undefined) {
      this.#logMalformed(400, 'UPGRADE_WITH_CHUNKED_BODY', socket.remoteAddress)
      socket.end(badRequest('UPGRADE_WITH_CHUNKED_BODY').text)
      socket.destroySoon?.()
      return
    }
    const length = Number(req.headers['content-length'] ?? 0)
    const start = () => {
      if (socket.destroyed) return
      const client = upgradeClient(socket, head, {
        method: req.method ?? 'GET',
        url: req.url ?? '/',
        rawHeaders: req.rawHeaders,
        versionMajor: req.httpVersionMajor,
        versionMinor: req.httpVersionMinor,
        bodyLength: Number.isSafeInteger(length) && length > 0 ? length : 0,
      })
      this.#onNativeRequest(client, false)
    }
    // Behind pipelined requests, it waits for their responses (as on the native engine).
    const connection = NodeConnection.peek(socket)
    if (connection === undefined) start()
    else connection.whenIdle(start)
  }

  /** A request on an HTTP/2 connection (node:http2's compatibility API). */
  #onH2Request(req: Http2ServerRequest, res: Http2ServerResponse, expectContinue: boolean): void {
    this.#handle(new Http2Client(req, res), expectContinue, () =>
      res.writeHead(500, { 'content-type': 'application/json' }).end(INTERNAL_ERROR_BODY),
    )
  }

  #onNativeRequest(client: NativeClient, expectContinue: boolean): void {
    this.#handle(client, expectContinue, () => {
      client.writeHead(500, undefined, ['content-type', 'application/json', 'connection', 'close'])
      client.end(INTERNAL_ERROR_BODY)
    })
  }

  /** Runs the request path; a bug there costs one request (`internalError`, or an abort), never the process. */
  #handle(client: ClientSide, expectContinue: boolean, internalError: () => void): void {
    try {
      handleRequest(this.#rt, this, client, expectContinue)
    } catch (err) {
      this.#rt.logger.error({ err, url: client.url }, 'internal error on the request path')
      if (!client.headersSent) internalError()
      else client.abort()
    }
  }

  /**
   * Malformed requests (node:http): the right 4xx after the responses still due on the connection,
   * then close (http1/node-connection.ts). Never throws, never crashes the process.
   */
  #onClientError(err: Error & { code?: string }, socket: Socket): void {
    const code = err.code ?? ''
    if (code === 'ECONNRESET') {
      socket.destroy()
      return
    }
    const connection = NodeConnection.peek(socket)
    // node:http reports the same parse error on every read after it: answered once.
    if (connection?.refused === true) return
    if (!socket.writable) {
      socket.destroy()
      return
    }
    const bad = badRequest(code)
    this.#logMalformed(bad.status, code, socket.remoteAddress)
    // After the client's FIN (a request cut short), as in the native engine: answered now, and what it
    // asked and was not answered yet is not.
    if (!socket.readableEnded && connection?.refuse(bad.text) === true) return
    socket.end(bad.text)
    socket.destroySoon?.()
  }

  #logMalformed(status: number, code: string, client: string | undefined): void {
    this.#rt.logger.info({ type: 'client-error', status, parser: code, client }, 'malformed request')
  }
}

/**
 * Removes the listeners node:http(s) installed for `event` and returns a function that runs them, so
 * that a connection can be offered to them or to HTTP/2.
 */
function takeListeners(server: NetServer, event: string): (socket: Socket) => void {
  const listeners = server.listeners(event) as ((socket: Socket) => void)[]
  server.removeAllListeners(event)
  return (socket) => {
    for (const l of listeners) l.call(server, socket)
  }
}

/**
 * Reads the first bytes of `socket` until they hold a whole ClientHello (or are not one, or
 * `timeoutMs` passed, or the socket ended), gives them back to its buffer, and calls `next` with what
 * they said (undefined: nothing readable came). The socket is left paused.
 */
function peekClientHello(socket: Socket, timeoutMs: number, next: (hello: HelloResult | undefined) => void): void {
  let buffered: Buffer = Buffer.alloc(0)
  let done = false
  const finish = (hello: HelloResult | undefined) => {
    if (done) return
    done = true
    clearTimeout(timer)
    socket.removeListener('data', onData)
    socket.removeListener('end', onEnd)
    socket.pause()
    if (buffered.length > 0) socket.unshift(buffered)
    next(hello)
  }
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const hello = readClientHello(buffered)
    if (hello.kind !== 'incomplete' || buffered.length >= MAX_HELLO_BYTES) finish(hello)
  }
  const onEnd = () => finish(undefined)
  const timer = setTimeout(() => finish(undefined), timeoutMs > 0 ? timeoutMs : 10_000)
  socket.on('data', onData)
  socket.once('end', onEnd)
  socket.on('error', () => socket.destroy())
  // Behind a PROXY header the socket was left paused: a 'data' listener alone does not resume it.
  socket.resume()
}

/** Completes a tls-alpn-01 validation handshake with the challenge certificate for `name`, then closes. */
function answerAlpnChallenge(socket: Socket, storageDir: string, name: string | undefined): void {
  let pem: string
  try {
    pem = readFileSync(alpnChallengeFile(storageDir, name ?? ''), 'utf8')
  } catch {
    socket.destroy() // no validation under way for that name
    return
  }
  const tls = new TLSSocket(socket, {
    isServer: true,
    secureContext: createSecureContext({ key: pem, cert: pem }),
    ALPNProtocols: [ACME_TLS_ALPN],
  })
  tls.on('error', () => tls.destroy())
  tls.once('secure', () => tls.end())
}
