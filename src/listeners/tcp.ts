/**
 * A TCP (layer 4) listener: every accepted connection is piped to a server of the listener's pool
 * (l4/tcp-proxy.ts). `swap()` changes the snapshot for new connections only. `drain()` stops accepting,
 * gives open connections the grace period to end by themselves, then closes the rest.
 */
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net'
import { pipeConnection, type TcpRuntime } from '../l4/tcp-proxy.js'
import type { ListenerRuntime } from '../l7/proxy.js'
import { boundAddress, listenOn } from './bind.js'
import { IdleWait } from './idle-wait.js'
import type { Listener } from './types.js'

export class TcpListener implements Listener {
  readonly #server: Server
  #rt: ListenerRuntime
  #tcp: TcpRuntime
  readonly #open = new Set<Socket>()
  readonly #idle = new IdleWait()
  readonly #hooks = { end: (client: Socket) => this.#onEnd(client) }

  constructor(rt: ListenerRuntime) {
    this.#rt = rt
    this.#tcp = mustTcp(rt)
    this.#server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
      this.#open.add(client)
      pipeConnection(this.#rt, this.#tcp, client, this.#hooks)
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

  swap(rt: ListenerRuntime): void {
    this.#tcp = mustTcp(rt)
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

function mustTcp(rt: ListenerRuntime): TcpRuntime {
  if (!rt.tcp) throw new Error(`listener ${rt.config.name} has no TCP snapshot`)
  return rt.tcp
}
