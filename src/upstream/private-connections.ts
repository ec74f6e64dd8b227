/**
 * The connections to one server of a pool with `sendProxyProtocol`: one PROXY header names one client,
 * so a connection that opened with it may carry only that client's requests. Each client connection
 * gets connections of its own to the server (made by `open` with its header), reused by its later
 * requests, and closed gracefully when the client connection closes, as HAProxy does with its
 * "private" server connections. Requests with no client connection behind them share connections that
 * open with the LOCAL (v2) or UNKNOWN (v1) header.
 */
import type { Socket } from 'node:net'
import type { ServerConnections, UpstreamHandler, UpstreamTry } from '../l7/upstream.js'
import { clientProxyHeader, localProxyHeader, type ProxyVersion } from './send-proxy.js'

export class PrivateConnections implements ServerConnections {
  readonly #version: ProxyVersion
  readonly #open: (prefix: Buffer) => ServerConnections
  readonly #byClient = new Map<Socket, ServerConnections>()
  #local: ServerConnections | undefined
  /** Connections whose client went away, closing gracefully; `destroy()` still ends them. */
  readonly #retired = new Set<ServerConnections>()
  #closing = false

  constructor(version: ProxyVersion, open: (prefix: Buffer) => ServerConnections) {
    this.#version = version
    this.#open = open
  }

  /** Client connections with connections of their own now: for tests. */
  get clients(): number {
    return this.#byClient.size
  }

  call(handler: UpstreamHandler, client?: Socket): UpstreamTry {
    return this.#of(client).call(handler)
  }

  #of(client: Socket | undefined): ServerConnections {
    // Closing: the local connections (closed too, so they refuse the try with SWY_SHUTTING_DOWN).
    if (client === undefined || client.destroyed || this.#closing) {
      if (this.#local === undefined) {
        this.#local = this.#open(localProxyHeader(this.#version))
        if (this.#closing) this.#local.close().catch(() => {})
      }
      return this.#local
    }
    let own = this.#byClient.get(client)
    if (own === undefined) {
      const made = this.#open(clientProxyHeader(this.#version, client))
      own = made
      this.#byClient.set(client, made)
      client.once('close', () => {
        if (this.#byClient.get(client) !== made) return
        this.#byClient.delete(client)
        this.#retired.add(made)
        made.close().then(
          () => this.#retired.delete(made),
          () => this.#retired.delete(made),
        )
      })
    }
    return own
  }

  async close(): Promise<void> {
    this.#closing = true
    await Promise.all([...this.#all()].map((c) => c.close()))
  }

  async destroy(): Promise<void> {
    this.#closing = true
    await Promise.all([...this.#all(), ...this.#retired].map((c) => c.destroy()))
  }

  /** Every connection set still held (each stays listed until destroyed, so a destroy after close reaches it). */
  #all(): ServerConnections[] {
    const all = [...this.#byClient.values()]
    if (this.#local !== undefined) all.push(this.#local)
    return all
  }
}
