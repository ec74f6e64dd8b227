/** What the server lifecycle needs of a listener, whatever protocol it speaks. */
import type { AddressInfo } from 'node:net'
import type { ListenerSnapshot } from './snapshot.js'

export interface Listener {
  readonly name: string
  /** Requests (HTTP) or connections (TCP) being handled now. */
  readonly inFlight: number
  /** Client connections open now (admitted by the connection gate, not yet closed). */
  readonly connections: number
  /** Binds the configured address. Rejects with SWY_LISTEN_IN_USE / SWY_LISTEN_FAILED. */
  listen(): Promise<AddressInfo>
  address(): AddressInfo | undefined
  /** Installs a new snapshot for requests or connections that start from now on. */
  swap(rt: ListenerSnapshot): void
  /** Stops accepting, lets in-flight work finish for up to `graceMs`, then closes every connection. */
  drain(graceMs: number): Promise<void>
}
