/**
 * The upstream side of an upgrade request (a WebSocket handshake, or any `Upgrade`): one try on a
 * connection of its own, never taken from or given back to a keep-alive pool, since after a `101` it
 * carries another protocol, and after any other answer it is closed. Either pool engine gets the same
 * behaviour; node:http's client reads the server's head (it has the public `upgrade` event this needs).
 *
 * Outcomes, reported to the exchange's handler:
 * - `101 Switching Protocols`: `onUpstreamUpgrade` with the server's head, its connection and any bytes
 *   it sent after the head (the exchange then builds a tunnel);
 * - any other final response: relayed as a normal response (`onUpstreamHead`, `onUpstreamData`,
 *   `onUpstreamEnd`), with backpressure; interim 1xx responses are skipped;
 * - a failure: `onUpstreamError` with the raw error (classified by the exchange), or a SwitchyardError
 *   for the timeouts: SWY_UPSTREAM_CONNECT_TIMEOUT (`connectMs` to connect),
 *   SWY_UPSTREAM_TIMEOUT (`headersTimeoutMs` from the request to the head), SWY_UPSTREAM_BODY_TIMEOUT
 *   (`bodyTimeoutMs` of silence in a relayed body).
 * The handler hears exactly one of `onUpstreamUpgrade`, `onUpstreamEnd` and `onUpstreamError`.
 */
import { type ClientRequest, type IncomingMessage, request } from 'node:http'
import { connect, type Socket } from 'node:net'
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls'
import { SwitchyardError } from '../core/errors.js'
import type { UpstreamHandler, UpstreamRequest, UpstreamTry } from '../l7/upstream.js'
import { connectWithPrefix } from '../upstream/send-proxy.js'
import { tlsConnectOptions, type UpstreamTls } from '../upstream/tls.js'

/** What an upgrade try reports beyond a normal try. */
export interface UpgradeHandler extends UpstreamHandler {
  /**
   * The server switched protocols. `socket` is its connection, paused, with no listener of
   * node:http's left on it; `head` holds the bytes the server sent after its 101 head.
   */
  onUpstreamUpgrade(rawHeaders: readonly string[], statusText: string, socket: Socket, head: Buffer): void
}

/** Where an upgrade try connects. */
export interface UpgradeTarget {
  readonly host: string
  readonly port: number
  readonly connectMs: number
  /** TLS to an `https://` server; undefined: plain TCP. */
  readonly tls?: UpstreamTls | undefined
  /** Bytes the connection opens with, before TLS (a PROXY protocol header); undefined: none. */
  readonly prefix?: Buffer | undefined
}

export function upgradeTry(target: UpgradeTarget, handler: UpgradeHandler): UpstreamTry {
  return new UpgradeCall(target, handler)
}

class UpgradeCall implements UpstreamTry {
  readonly #target: UpgradeTarget
  readonly #handler: UpgradeHandler
  #req: ClientRequest | undefined
  #res: IncomingMessage | undefined
  #timer: NodeJS.Timeout | undefined
  #done = false

  constructor(target: UpgradeTarget, handler: UpgradeHandler) {
    this.#target = target
    this.#handler = handler
  }

  get active(): boolean {
    return !this.#done
  }

  send(r: UpstreamRequest): void {
    const { host, port, connectMs, tls, prefix } = this.#target
    const flat: string[] = []
    for (const h of r.headers) flat.push(h)
    let req: ClientRequest
    try {
      req = request({
        host,
        port,
        method: r.method,
        path: r.path,
        headers: flat,
        setHost: false,
        createConnection: () => openSocket(host, port, tls, prefix),
      })
    } catch (err) {
      // node:http refused a header: nothing was sent.
      return this.#fail(new SwitchyardError('SWY_INTERNAL', 'the upgrade request could not be sent', { cause: err }))
    }
    this.#req = req
    this.#arm(connectMs, () => new SwitchyardError('SWY_UPSTREAM_CONNECT_TIMEOUT'))
    req.once('socket', (socket: Socket) => {
      this.#handler.onUpstreamSocket(socket, 0)
      const connected = () => this.#arm(r.headersTimeoutMs, () => new SwitchyardError('SWY_UPSTREAM_TIMEOUT'))
      // Over TLS the connect timeout runs to the end of the handshake.
      // The socket was just made by createConnection: it is still connecting.
      socket.once(tls === undefined ? 'connect' : 'secureConnect', connected)
    })
    req.on('error', (err) => this.#fail(err))
    req.once('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
      if (this.#done) return socket.destroy()
      this.#done = true
      this.#disarm()
      socket.pause()
      this.#handler.onUpstreamUpgrade(res.rawHeaders, res.statusMessage ?? '', socket, head)
    })
    req.once('response', (res) => this.#response(res, r.bodyTimeoutMs))
    req.end()
  }

  #response(res: IncomingMessage, bodyTimeoutMs: number): void {
    if (this.#done) return
    this.#res = res
    this.#disarm()
    const timeout = () => new SwitchyardError('SWY_UPSTREAM_BODY_TIMEOUT')
    if (!this.#handler.onUpstreamHead(res.statusCode ?? 502, res.rawHeaders, res.statusMessage ?? '', false))
      res.pause()
    else this.#arm(bodyTimeoutMs, timeout)
    res.on('data', (chunk: Buffer) => {
      if (this.#done) return
      this.#arm(bodyTimeoutMs, timeout)
      if (!this.#handler.onUpstreamData(chunk)) {
        this.#disarm()
        res.pause()
      }
    })
    res.once('end', () => {
      if (this.#done) return
      this.#done = true
      this.#disarm()
      this.#handler.onUpstreamEnd(res.rawTrailers)
      // Never reused: the connection was opened for this request alone.
      res.socket?.destroy()
    })
    res.once('aborted', () => this.#fail(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })))
    res.once('error', (err) => this.#fail(err))
  }

  resume(): void {
    const res = this.#res
    if (res === undefined || this.#done) return
    res.resume()
  }

  abort(err: Error): void {
    this.#fail(err)
  }

  /** One timer at a time: connect, then the head, then each body silence. */
  #arm(ms: number, error: () => SwitchyardError): void {
    this.#disarm()
    if (ms > 0) this.#timer = setTimeout(() => this.#fail(error()), ms)
  }

  #disarm(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #fail(err: Error): void {
    if (this.#done) return
    this.#done = true
    this.#disarm()
    this.#req?.destroy()
    this.#handler.onUpstreamError(err)
  }
}

/** A connection to the server, half-open allowed (a tunnel carries each side's FIN): TLS for an `https://` one. */
function openSocket(host: string, port: number, tls: UpstreamTls | undefined, prefix: Buffer | undefined): Socket {
  if (prefix !== undefined) {
    const tlsOptions = tls === undefined ? undefined : { ...tlsConnectOptions(tls, host, port), allowHalfOpen: true }
    return connectWithPrefix({ host, port, noDelay: true, allowHalfOpen: true }, prefix, tlsOptions)
  }
  if (tls === undefined) return connect({ host, port, noDelay: true, allowHalfOpen: true })
  const socket = tlsConnect({ ...tlsConnectOptions(tls, host, port), allowHalfOpen: true } as ConnectionOptions)
  socket.setNoDelay(true)
  return socket
}
