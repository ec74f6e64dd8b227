/**
 * A TCP (layer 4) listener: every accepted connection is piped to a server of the listener's pool
 * (l4/tcp-proxy.ts). `swap()` changes the snapshot for new connections only. `drain()` stops accepting,
 * gives open connections the grace period to end by themselves, then closes the rest.
 *
 * TLS passthrough: when routes match by SNI, each connection's first TLS record is read (never
 * decrypted: l4/client-hello.ts) and its server name picks the route, in order; a route without
 * `match` takes the rest, and connections that do not speak TLS. The bytes read go on to the server
 * first, untouched. A connection that sends nothing within HELLO_TIMEOUT_MS, or that no route takes,
 * is closed; nothing reaches a server.
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { bareIp } from '../core/address.js'
import { accessList } from '../filters/access.js'
import { MAX_HELLO_BYTES, readClientHello, sniMatches } from '../l4/client-hello.js'
import { pipeConnection } from '../l4/tcp-proxy.js'
import { boundAddress, listenOn } from './bind.js'
import { ConnectionGate } from './gate.js'
import { IdleWait } from './idle-wait.js'
import { acceptProxied, peerAddress } from './proxy-protocol.js'
import type { ListenerSnapshot, TcpRoute, TcpSnapshot } from './snapshot.js'
import type { Listener } from './types.js'

/** How long a passthrough listener waits for a connection's ClientHello. */
export const HELLO_TIMEOUT_MS = 10_000

export class TcpListener implements Listener {
  readonly #server: Server
  #rt: TcpSnapshot
  readonly #open = new Set<Socket>()
  readonly #idle = new IdleWait()
  readonly #hooks = { end: (client: Socket) => this.#onEnd(client) }
  /** Connection limits and the listener's `access` list. */
  readonly #gate: ConnectionGate

  constructor(rt: TcpSnapshot) {
    this.#rt = rt
    const refused = rt.metrics.connectionsRefused
    this.#gate = new ConnectionGate(rt.config.limits, accessOf(rt), (reason) =>
      refused.labels(this.#rt.config.name, reason).inc(),
    )
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      const rt = this.#rt
      if (!rt.config.proxyProtocol) {
        if (!this.#gate.admit(client, bareIp(client.remoteAddress))) return
        this.#open.add(client)
        return this.#route(rt, client)
      }
      this.#open.add(client)
      const onClose = () => this.#onEnd(client)
      client.once('close', onClose)
      acceptProxied(
        client,
        rt.config.timeouts.requestHeadersMs,
        (s) => {
          client.removeListener('close', onClose)
          if (!this.#gate.admit(s, bareIp(peerAddress(s)))) return this.#onEnd(s)
          this.#route(rt, s)
        },
        (reason) =>
          rt.logger.info(
            { type: 'client-error', client: client.remoteAddress, reason },
            'PROXY protocol header refused',
          ),
      )
    })
  }

  #route(rt: TcpSnapshot, client: Socket): void {
    if (!rt.bySni) return pipeConnection(rt, rt.routes[0] as TcpRoute, client, this.#hooks)
    this.#byServerName(rt, client)
  }

  /** Reads the ClientHello, then pipes to the route its server name picks. */
  #byServerName(rt: TcpSnapshot, client: Socket): void {
    let buffered: Buffer = Buffer.alloc(0)
    const give = () => {
      clearTimeout(timer)
      client.removeListener('data', onData)
      client.removeListener('end', refuse)
      client.removeListener('close', onClose)
    }
    const refuse = () => {
      give()
      client.destroy()
      this.#onEnd(client)
    }
    const onClose = () => {
      give()
      this.#onEnd(client)
    }
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
      const hello = readClientHello(buffered)
      if (hello.kind === 'incomplete' && buffered.length < MAX_HELLO_BYTES) return
      // Not TLS (or a ClientHello past the limit): only a catch-all route takes it.
      const name = hello.kind === 'hello' ? hello.serverName : undefined
      const route = rt.routes.find((r) => r.sni === undefined || (name !== undefined && sniMatches(r.sni, name)))
      if (route === undefined) return refuse()
      give()
      client.pause()
      // The ClientHello goes on to the server first, as it came.
      client.unshift(buffered)
      pipeConnection(rt, route, client, this.#hooks)
    }
    const timer = setTimeout(refuse, HELLO_TIMEOUT_MS)
    client.on('data', onData)
    client.once('end', refuse)
    client.once('close', onClose)
    client.on('error', () => client.destroy())
  }

  get name(): string {
    return this.#rt.config.name
  }

  get inFlight(): number {
    return this.#open.size
  }

  get connections(): number {
    return this.#gate.open
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#rt.config.host, this.#rt.config.port)
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.#server)
  }

  swap(rt: ListenerSnapshot): void {
    if (rt.kind !== 'tcp') throw new Error(`listener ${rt.config.name}: an HTTP snapshot for a TCP listener`)
    this.#rt = rt
    this.#gate.configure(rt.config.limits, accessOf(rt))
  }

  async drain(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    if (this.#open.size > 0) {
      await this.#idle.until(graceMs)
    }
    for (const s of this.#open) s.destroy()
    await closed
  }

  #onEnd(client: Socket): void {
    this.#open.delete(client)
    if (this.#open.size === 0) this.#idle.notifyIdle()
  }
}

/** A TCP listener's `access`: every denied connection is closed as it is accepted, whatever its `action`. */
function accessOf(rt: TcpSnapshot) {
  const options = rt.config.rules.access
  return options === undefined ? undefined : accessList(options)
}
