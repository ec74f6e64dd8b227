/**
 * The end of a request's exported span (tracing with `otlp`, a sampled request): the facts of the
 * request handed to the span (tracing/otlp.ts turns them into attributes). Only sampled, exported
 * requests get here (request-end.ts).
 */
import { formatAddress } from '../core/address.js'
import type { SwitchyardError } from '../core/errors.js'
import type { ExportedSpan } from '../tracing/index.js'
import type { Inbound, UpstreamFacts } from './request.js'

export function endSpan(
  span: ExportedSpan,
  inbound: Inbound,
  status: number,
  err: SwitchyardError | undefined,
  up: UpstreamFacts,
): void {
  const rt = inbound.rt
  const view = inbound.target?.view
  const pool = inbound.poolTarget?.pool
  const server = up.server
  const backend = server === undefined ? undefined : pool?.backends.find((b) => b.id === server)
  span.end(
    {
      method: inbound.method,
      path: inbound.path,
      scheme: rt.proto,
      protocol: inbound.client.protocol,
      clientIp: inbound.clientIp,
      host: inbound.hostname,
      port: rt.config.port,
      userAgent: inbound.header('user-agent'),
      status,
      code: err?.code,
      error: err?.message,
      retries: up.retries ?? 0,
      listener: rt.config.name,
      route: view === undefined ? undefined : (view.name ?? `#${view.index}`),
      pool: pool?.name,
      server,
      serverAddress: backend === undefined ? undefined : formatAddress(backend.host, backend.port),
      requestId: inbound.requestId,
    },
    performance.timeOrigin + performance.now(),
  )
}
