/**
 * One connection to an upstream server (native engine): a socket, its llhttp response parser, one
 * Deadline for all its timeouts, and the call it carries, if any. It carries one request at a time.
 *
 * States: `connecting` → `free` (connected, or its response read whole: the agent decides) → `busy`
 * (carrying a request) or `idle` (in the agent's idle pool) → ... → `closed`. Whatever happens on the socket
 * while no call holds it (bytes, a close) ends it: an idle connection that receives bytes is never
 * reused, so they can never become part of another response.
 *
 * One Deadline times, in turn, the connect (`connectMs`) and the call's headers and body timeouts;
 * another the idle keep-alive (two, so that neither makes the other's Node timer move on every request). `close` is the one place where the connection ends, whatever ended it; the agent
 * and the call learn it there, once.
 */
import { connect, type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { ERROR_CODES, SwitchyardError } from '../core/errors.js'
import { connectWithPrefix } from '../upstream/send-proxy.js'
import { type SessionCache, tlsConnectOptions, tlsError, type UpstreamTls } from '../upstream/tls.js'
import { Deadline } from './deadline.js'
import { BODY_NONE, type BodyMode, Http1Parser, type ParsedHead } from './parser.js'

/** What the connection tells the agent that owns it. */
export interface ConnectionOwner {
  /** Connected: it may take a request. */
  connected(conn: UpstreamConnection): void
  /** It never connected (refused, unreachable, `connectMs` passed): `err` says which. */
  connectFailed(conn: UpstreamConnection, err: SwitchyardError): void
  /**
   * The response of its request was read whole. `keepMs` > 0: it may carry another request, and may
   * stay idle that long (ms); 0: it is closed.
   */
  released(conn: UpstreamConnection, keepMs: number): void
  /** It closed, after it had connected. */
  closed(conn: UpstreamConnection): void
}

/** What the connection tells the call it carries (the parser's events included). */
export interface ConnectionUser {
  onMessageBegin(): void
  onHead(head: ParsedHead): BodyMode
  onBody(chunk: Buffer): void
  onComplete(trailers: string[]): void
  onData(chunk: Buffer): void
  /** The server ended its side (FIN). */
  onEnd(): void
  /** The socket closed or broke under the call: `err` is the SWY_UPSTREAM_RESET (or the owner's) error. */
  onLost(err: SwitchyardError): void
  /** The socket's write buffer drained. */
  onDrain(): void
  /** The deadline armed with `arm()` is due. */
  onDeadline(): void
}

type State = 'connecting' | 'free' | 'idle' | 'busy' | 'closed'

export interface ConnectTarget {
  readonly host: string
  readonly port: number
  /** 0: no connect timeout (which covers the TLS handshake too). */
  readonly connectMs: number
  /** TLS to the server (an `https://` one), with the session cache its connections share. */
  readonly tls?: { readonly material: UpstreamTls; readonly sessions: SessionCache } | undefined
  /** Bytes the connection opens with, before TLS (a PROXY protocol header); undefined: none. */
  readonly prefix?: Buffer | undefined
}

/** TCP keep-alive probes on idle upstream connections start after this long (undici's value). */
const TCP_KEEPALIVE_DELAY_MS = 60_000

export class UpstreamConnection {
  readonly socket: Socket
  readonly parser: Http1Parser
  /** Requests written to it so far. */
  uses = 0
  readonly #owner: ConnectionOwner
  readonly #connectMs: number
  #state: State = 'connecting'
  #user: ConnectionUser | undefined
  readonly #deadline = new Deadline(() => this.#onDue())
  readonly #idleDeadline = new Deadline(() => {
    // Kept as long as it may be: retired before the server closes it.
    if (this.#state === 'idle') this.destroy()
  })
  #connectTimedOut = false
  /** TLS: the TCP connection is up (a failure now is the handshake's). */
  #tcpUp = false
  readonly #tls: boolean
  /** The socket's first error: what the call still on it is told when it closes. */
  #error: Error | undefined

  constructor(owner: ConnectionOwner, target: ConnectTarget) {
    this.#owner = owner
    this.#connectMs = target.connectMs
    this.parser = new Http1Parser('response', {
      onMessageBegin: () => this.#user?.onMessageBegin(),
      onHead: (head) => this.#user?.onHead(head) ?? BODY_NONE,
      onBody: (chunk) => this.#user?.onBody(chunk),
      onComplete: (trailers) => this.#user?.onComplete(trailers),
    })
    const tls = target.tls
    this.#tls = tls !== undefined
    const tcp = { noDelay: true, keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_DELAY_MS }
    let socket: Socket
    const prefix = target.prefix
    if (tls === undefined) {
      socket = connect({ host: target.host, port: target.port, ...tcp })
      if (prefix !== undefined) socket.write(prefix)
    } else if (prefix === undefined) {
      // tls.connect leaves the TCP options to the socket: set here.
      socket = tlsConnect(tlsConnectOptions(tls.material, target.host, target.port, tls.sessions))
      socket.setNoDelay(true)
      socket.setKeepAlive(true, TCP_KEEPALIVE_DELAY_MS)
    } else
      socket = connectWithPrefix(
        { host: target.host, port: target.port, ...tcp },
        prefix,
        tlsConnectOptions(tls.material, target.host, target.port, tls.sessions),
        () => {
          this.#tcpUp = true
        },
      )
    this.socket = socket
    if (target.connectMs > 0) this.#deadline.set(target.connectMs)
    if (tls !== undefined) {
      socket.once('connect', () => {
        this.#tcpUp = true
      })
      socket.on('session', (session: Buffer) => {
        tls.sessions.session = session
      })
    }
    socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
      this.#deadline.clear()
      this.#state = 'free'
      this.#owner.connected(this)
    })
    socket.on('data', (chunk: Buffer) => {
      const user = this.#user
      if (user !== undefined) user.onData(chunk)
      // Bytes nobody asked for (an idle connection, or past a complete response): never reused.
      else this.destroy()
    })
    socket.on('end', () => {
      const user = this.#user
      if (user !== undefined) user.onEnd()
      else this.destroy()
    })
    socket.on('drain', () => this.#user?.onDrain())
    socket.on('error', (err: Error) => {
      this.#error ??= err
    })
    socket.once('close', () => this.#onClose())
  }

  get state(): State {
    return this.#state
  }

  /** Idle, and its socket still open: it may take a request. */
  get usable(): boolean {
    return this.#state === 'idle' && !this.socket.destroyed && this.socket.writable
  }

  /** A call takes the connection: its events go to `user` until `release()` or the end. */
  take(user: ConnectionUser): void {
    this.#state = 'busy'
    this.#user = user
    this.#idleDeadline.clear()
  }

  /** The call's headers or body timeout: `user.onDeadline()` in `ms`. */
  arm(ms: number): void {
    this.#deadline.set(ms)
  }

  disarm(): void {
    this.#deadline.clear()
  }

  /** The call read its response whole: see `ConnectionOwner.released`. */
  release(keepMs: number): void {
    if (this.#state !== 'busy') return
    this.#user = undefined
    this.#deadline.clear()
    this.#state = 'free'
    // Paused for the call's backpressure: an idle connection reads, to see a close or stray bytes.
    if (this.socket.isPaused()) this.socket.resume()
    this.#owner.released(this, keepMs)
  }

  /** Back in the idle pool for at most `keepMs` (> 0). */
  idle(keepMs: number): void {
    if (this.#state !== 'free') return
    this.#state = 'idle'
    this.#idleDeadline.set(keepMs)
  }

  /**
   * Closes the connection. A call still on it hears `err` (when given; a call that ends the connection
   * itself passes none and is not called back).
   */
  destroy(err?: SwitchyardError): void {
    const user = this.#user
    this.#user = undefined
    if (!this.socket.destroyed) this.socket.destroy()
    if (user !== undefined && err !== undefined) user.onLost(err)
  }

  #onDue(): void {
    switch (this.#state) {
      case 'connecting':
        this.#connectTimedOut = true
        this.socket.destroy()
        return
      case 'busy':
        this.#user?.onDeadline()
        return
      case 'idle':
      case 'free':
      case 'closed':
        return
      default: {
        const unknown: never = this.#state
        throw new Error(`unknown connection state ${String(unknown)}`)
      }
    }
  }

  #onClose(): void {
    const was = this.#state
    this.#state = 'closed'
    this.#deadline.dispose()
    this.#idleDeadline.dispose()
    this.parser.close()
    const user = this.#user
    this.#user = undefined
    if (was === 'connecting') return this.#owner.connectFailed(this, this.#connectError())
    if (user !== undefined) user.onLost(lostError(this.#error))
    this.#owner.closed(this)
  }

  #connectError(): SwitchyardError {
    return connectError(this.#error, {
      timedOut: this.#connectTimedOut,
      connectMs: this.#connectMs,
      tlsStarted: this.#tls && this.#tcpUp,
    })
  }
}

/**
 * The error of a connection to a server that failed before it was up, for every engine:
 * SWY_UPSTREAM_CONNECT_TIMEOUT after `connectMs`, SWY_UPSTREAM_TLS once TCP was up under TLS, else
 * SWY_UPSTREAM_CONNECT naming the socket's error. A SwitchyardError given is the answer itself.
 */
export function connectError(
  err: Error | undefined,
  how: { readonly timedOut: boolean; readonly connectMs: number; readonly tlsStarted: boolean },
): SwitchyardError {
  if (how.timedOut)
    return new SwitchyardError(
      'SWY_UPSTREAM_CONNECT_TIMEOUT',
      `${ERROR_CODES.SWY_UPSTREAM_CONNECT_TIMEOUT.text}: after ${how.connectMs} ms`,
    )
  if (err instanceof SwitchyardError) return err
  if (how.tlsStarted) return tlsError(err)
  const code = codeOf(err)
  return new SwitchyardError(
    'SWY_UPSTREAM_CONNECT',
    `${ERROR_CODES.SWY_UPSTREAM_CONNECT.text}: ${code || err?.message || 'closed while connecting'}`,
    err === undefined ? undefined : { cause: err },
  )
}

/** The error of a connection that closed under a request: SWY_UPSTREAM_RESET, naming the socket's error. */
export function lostError(err: Error | undefined, detail = 'closed by the server'): SwitchyardError {
  if (err instanceof SwitchyardError) return err
  const code = codeOf(err)
  return new SwitchyardError(
    'SWY_UPSTREAM_RESET',
    `${ERROR_CODES.SWY_UPSTREAM_RESET.text}: ${code || detail}`,
    err === undefined ? undefined : { cause: err },
  )
}

function codeOf(err: Error | undefined): string {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : ''
}
