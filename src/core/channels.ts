/**
 * Request-path events on named diagnostics channels, as undici does. Publishing is skipped when nobody
 * subscribes, so the channels cost nothing until used.
 *
 * - `switchyard:request:end`    { requestId, listener, pool, server, status, code, durationMs }
 * - `switchyard:upstream:error` { requestId, pool, server, code, error }
 * - `switchyard:health:change`  { pool, server, state: 'up' | 'down', reason } (control plane)
 */
import diagnostics from 'node:diagnostics_channel'

export const channels = {
  requestEnd: diagnostics.channel('switchyard:request:end'),
  upstreamError: diagnostics.channel('switchyard:upstream:error'),
  healthChange: diagnostics.channel('switchyard:health:change'),
} as const
