/**
 * The native HTTP/1.1 engine, client side: it takes accepted sockets (plain or TLS, from the
 * listener's own socket server) and serves HTTP/1.1 on each (connection.ts), handing every request
 * to the listener as a `NativeClient` (client-side.ts). It replaces node:http when a listener says
 * `engine: native` and `nativeParser()` passes its self-test.
 *
 * `configure()` takes new limits; connections apply them to timers they start from then on. `drain()`
 * closes idle connections at once and lets busy ones close after their responses (which carry
 * `Connection: close`); `destroyAll()` ends what is left.
 */
import type { Socket } from 'node:net'
import { channels } from '../core/channels.js'
import type { NativeClient } from './client-side.js'
import { type ConnectionHost, Http1Connection } from './connection.js'

export interface Http1Options {
  /** Time a request head may take; the first from the connection's start, later ones from their first byte. 0: none. */
  readonly requestHeadersMs: number
  /** How long a connection may wait for its next request after a response. 0: forever. */
  readonly idleMs: number
  /** Requests per connection; the last response carries `Connection: close`. 0: no limit. */
  readonly maxRequestsPerConnection: number
  /** The largest request head (and trailer section) accepted, in bytes: 431 beyond. 0: Node's default (16 KiB). */
  readonly maxHeaderBytes: number
}

export interface Http1Events {
  /** A request to handle; `expectContinue`: the client waits for `100 Continue` before its body. */
  request(client: NativeClient, expectContinue: boolean): void
  /** A malformed or too slow request was answered with `status` (400, 408, 431) and its connection closes. */
  malformed(status: number, code: string, peer: string | undefined): void
  /** A bug in the engine cost one connection (destroyed); the process carries on. */
  failed(err: unknown): void
}

export class Http1Server implements ConnectionHost {
  readonly #events: Http1Events
  readonly #connections = new Set<Http1Connection>()
  /** The listener's name, for the connection channel. */
  readonly #listener: string
  #options: Http1Options
  #keepAliveHint = ''
  #draining = false

  constructor(listener: string, options: Http1Options, events: Http1Events) {
    this.#listener = listener
    this.#events = events
    this.#options = options
    this.configure(options)
  }

  /** Open connections. */
  get connections(): number {
    return this.#connections.size
  }

  /** Serves HTTP/1.1 on an accepted socket (after TLS, ALPN or the HTTP/2 preface sniff, if any). */
  accept(socket: Socket): void {
    if (this.#draining || socket.destroyed) {
      socket.destroy()
      return
    }
    this.#connections.add(new Http1Connection(socket, this))
    if (channels.http1Connection.hasSubscribers) channels.http1Connection.publish({ listener: this.#listener, socket })
  }

  configure(options: Http1Options): void {
    this.#options = options
    // node:http's hint, which clients use to retire idle connections before the server closes them.
    this.#keepAliveHint = options.idleMs > 0 ? `timeout=${Math.floor(options.idleMs / 1000)}` : ''
  }

  drain(): void {
    this.#draining = true
    for (const c of this.#connections) c.drainNow()
  }

  destroyAll(): void {
    for (const c of this.#connections) c.destroy()
  }

  // --- ConnectionHost ---------------------------------------------------------------------------

  get requestHeadersMs(): number {
    return this.#options.requestHeadersMs
  }

  get idleMs(): number {
    return this.#options.idleMs
  }

  get maxRequestsPerConnection(): number {
    return this.#options.maxRequestsPerConnection
  }

  get maxHeaderBytes(): number {
    return this.#options.maxHeaderBytes
  }

  get keepAliveHint(): string {
    return this.#keepAliveHint
  }

  get draining(): boolean {
    return this.#draining
  }

  request(client: NativeClient, expectContinue: boolean): void {
    this.#events.request(client, expectContinue)
  }

  malformed(status: number, code: string, peer: string | undefined): void {
    this.#events.malformed(status, code, peer)
  }

  failed(err: unknown): void {
    this.#events.failed(err)
  }

  closed(connection: Http1Connection): void {
    this.#connections.delete(connection)
  }
}
