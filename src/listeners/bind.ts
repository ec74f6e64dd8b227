/** Binding a server socket, with failures turned into SwitchyardErrors that name the address. */
import type { AddressInfo, Server } from 'node:net'
import { formatAddress } from '../core/address.js'
import { SwitchyardError } from '../core/errors.js'

/**
 * Listens on host:port. Rejects with SWY_LISTEN_IN_USE (`cannot listen on 127.0.0.1:8080: address already
 * in use`) or SWY_LISTEN_FAILED. `label` is added after the address, e.g. `(admin)`.
 */
export function listenOn(server: Server, host: string, port: number, label = ''): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const where = `${formatAddress(host, port)}${label ? ` ${label}` : ''}`
      if (err.code === 'EADDRINUSE')
        reject(
          new SwitchyardError('SWY_LISTEN_IN_USE', `cannot listen on ${where}: address already in use`, { cause: err }),
        )
      else reject(new SwitchyardError('SWY_LISTEN_FAILED', `cannot listen on ${where}: ${err.message}`, { cause: err }))
    }
    server.once('error', onError)
    server.listen({ host, port, backlog: 1024 }, () => {
      server.off('error', onError)
      resolve(server.address() as AddressInfo)
    })
  })
}

/** The bound address, or undefined before listen() or after close(). */
export function boundAddress(server: Server): AddressInfo | undefined {
  const a = server.address()
  return a && typeof a === 'object' ? a : undefined
}
