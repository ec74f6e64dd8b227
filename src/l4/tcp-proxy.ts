/**
 * Layer 4: one client connection piped to one server of the pool, both directions streamed with
 * backpressure (stream.pipe), half-close carried through (a FIN from one side ends the write side of
 * the other; the connection closes when both are done).
 *
 * Failure contract: if no server is available or the connection to it fails or times out, the client
 * connection is reset (there is no protocol to answer in). A reset from either side resets the other.
 * An idle connection (no bytes either way for the listener's idle timeout) is closed. Each connection
 * is logged once, when it closes, with a SWY_* code when it failed.
 */
import { connect, type Socket } from 'node:net'
import { bareIp } from '../core/address.js'
import { classifyUpstreamError, SwitchyardError } from '../core/errors.js'
import { sampledIn } from '../l7/access-log.js'
import { peerAddress } from '../listeners/proxy-protocol.js'
import type { TcpRoute, TcpSnapshot } from '../listeners/snapshot.js'
import { clientProxyHeader } from '../upstream/send-proxy.js'

/** Where the listener learns that a connection ended. */
export interface ConnectionHooks {
  end(client: Socket): void
}

/** Pipes `client` to a server of `route`'s pool (the listener's only route, or the one its SNI chose). */
export function pipeConnection(rt: TcpSnapshot, route: TcpRoute, client: Socket, hooks: ConnectionHooks): void {
  const startMs = performance.now()
  const m = route.tcp
  m.active.value++
  const clientIp = bareIp(peerAddress(client))
  const pool = route.pool
  // Sticky pools bind TCP clients by address (`client-ip`); the HTTP modes find nothing here and balance.
  // A connection that finds every server full (circuit breaking) is refused: TCP has no queue.
  const admission = pool.admit({
    ctx: { clientIp },
    keySource: pool.sticky === undefined ? undefined : { clientIp, rawHeaders: [], url: '' },
  })
  const lease = admission.kind === 'go' ? admission.lease : undefined
  const selection = lease?.first
  const tryLease = lease?.begin(lease.first, false)
  let upstream: Socket | undefined
  let connectMs = -1
  let failure: SwitchyardError | undefined
  let timer: NodeJS.Timeout | undefined

  const fail = (err: SwitchyardError) => {
    failure ??= err
    if (!client.destroyed) client.resetAndDestroy()
    if (upstream && !upstream.destroyed) upstream.resetAndDestroy()
  }

  let closed = 0
  const onClose = () => {
    // Both sockets (or the client alone, when no upstream was opened) have closed.
    if (++closed < (upstream ? 2 : 1)) return
    if (timer) clearTimeout(timer)
    m.active.value--
    m.bytesIn.value += client.bytesRead
    m.bytesOut.value += client.bytesWritten
    if (failure || connectMs < 0) m.error.value++
    else m.ok.value++
    if (tryLease !== undefined) {
      const connectFailed =
        failure?.code === 'SWY_UPSTREAM_CONNECT' || failure?.code === 'SWY_UPSTREAM_CONNECT_TIMEOUT' || connectMs < 0
      const failed = failure !== undefined ? failure.source === 'upstream' : connectMs < 0
      tryLease.end(
        connectFailed && failed ? 'connect-failure' : failed ? 'failure' : 'success',
        connectMs >= 0 ? connectMs : performance.now() - startMs,
      )
    }
    lease?.end()
    hooks.end(client)
    log(failure)
  }

  /**
   * One line per connection, of the access-log schema: `warn` when it failed on the server side.
   * Successful connections are sampled as requests are (`logging.accessLog.sample`).
   */
  const log = (err: SwitchyardError | undefined) => {
    const serverSide = err !== undefined && err.source !== 'downstream'
    if (rt.accessLog === undefined) return
    if (!(serverSide || (rt.accessInfo && (err !== undefined || sampledIn(rt.accessSample))))) return
    rt.accessLog.writeTcp(
      {
        listener: rt.config.name,
        client: clientIp,
        pool: pool.name,
        upstream: selection?.backend.id,
        bytesIn: client.bytesRead,
        bytesOut: client.bytesWritten,
        connectMs,
        durationMs: performance.now() - startMs,
        code: err?.code,
        error: err?.message,
      },
      serverSide ? 'warn' : 'info',
    )
  }

  client.on('error', () => fail(new SwitchyardError('SWY_CLIENT_ABORTED')))
  client.once('close', onClose)
  if (selection === undefined) {
    failure = new SwitchyardError(admission.kind === 'reject' ? admission.code : 'SWY_OVERLOADED')
    client.resetAndDestroy()
    return
  }
  const backend = selection.backend
  upstream = connect({ host: backend.host, port: backend.port, noDelay: true, allowHalfOpen: true })
  // The PROXY header goes first, before any byte of the client's (written once connected).
  const proxyVersion = pool.config.sendProxyProtocol
  if (proxyVersion !== undefined) upstream.write(clientProxyHeader(proxyVersion, client))
  upstream.once('close', onClose)
  upstream.on('error', (err) => fail(classifyUpstreamError(err)))
  const connectTimeoutMs = pool.config.timeouts.connectMs
  timer = setTimeout(() => {
    timer = undefined
    fail(new SwitchyardError('SWY_UPSTREAM_CONNECT_TIMEOUT'))
  }, connectTimeoutMs)
  upstream.once('connect', () => {
    if (timer) clearTimeout(timer)
    timer = undefined
    connectMs = performance.now() - startMs
  })
  // Bytes the client sends before the server connection is up wait in the upstream socket's buffer.
  client.pipe(upstream)
  upstream.pipe(client)
  const idleMs = rt.config.timeouts.idleMs
  if (idleMs > 0) {
    // Any byte either way is a write or a read on the client socket, so its timer covers both.
    client.setTimeout(idleMs, () => {
      client.destroy()
      upstream?.destroy()
    })
  }
}
