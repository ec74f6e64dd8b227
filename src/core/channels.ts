/**
 * Request-path events on named diagnostics channels, as undici does. Publishing is skipped when nobody
 * subscribes, so the channels cost nothing until used.
 *
 * - `switchyard:request:end`    { requestId, listener, pool, server, status, code, durationMs }
 * - `switchyard:upstream:error` { requestId, pool, server, code, error }
 * - `switchyard:health:change`  { pool, server, state: 'up' | 'down', reason } (control plane)
 * - `switchyard:keepalive:race` { requestId, pool, server }: a request resent after a reused idle
 *   connection was closed under it
 * - `switchyard:http1:connection` { listener, socket }: a client connection taken by the native
 *   HTTP/1.1 engine (`engine: native`), once per connection
 */
import diagnostics from 'node:diagnostics_channel'

export const channels = {
  requestEnd: diagnostics.channel('switchyard:request:end'),
  upstreamError: diagnostics.channel('switchyard:upstream:error'),
  healthChange: diagnostics.channel('switchyard:health:change'),
  keepAliveRace: diagnostics.channel('switchyard:keepalive:race'),
  http1Connection: diagnostics.channel('switchyard:http1:connection'),
} as const
