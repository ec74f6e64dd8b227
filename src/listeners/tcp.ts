/**
 * A TCP (layer 4) listener: every accepted connection is piped to a server of the listener's pool
 * (l4/tcp-proxy.ts). `swap()` changes the snapshot for new connections only. `drain()` stops accepting,
 * gives open connections the grace period to end by themselves, then closes the rest.
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { pipeConnection } from '../l4/tcp-proxy.js'
import { boundAddress, listenOn } from './bind.js'
import { IdleWait } from './idle-wait.js'
import type { ListenerSnapshot, TcpSnapshot } from './snapshot.js'
import type { Listener } from './types.js'

export class TcpListener implements Listener {
  readonly #server: Server
  #rt: TcpSnapshot
  readonly #open = new Set<Socket>()
  readonly #idle = new IdleWait()
  readonly #hooks = { end: (client: Socket) => this.#onEnd(client) }

  constructor(rt: TcpSnapshot) {
    this.#rt = rt
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      this.#open.add(client)
      pipeConnection(this.#rt, client, this.#hooks)
    })
  }

  get name(): string {
    return this.#rt.config.name
  }

  get inFlight(): number {
    return this.#open.size
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
