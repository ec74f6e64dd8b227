/**
 * The end-of-request bookkeeping, done once per request (see Inbound#finish): the metric cells, the
 * `switchyard:request:end` channel, the `onLog` phase, the request's span (tracing with export on) and
 * the access-log line (one schema, `warn` for failures on the server side, written even when the access
 * log is off; successes sampled by `logging.accessLog.sample`, failures always kept).
 */
import { channels } from '../core/channels.js'
import type { SwitchyardError } from '../core/errors.js'
import type { Filter, FilterContext, LogRecord } from '../filters/types.js'
import type { HttpSnapshot } from '../listeners/snapshot.js'
import type { RouteMetrics } from '../metrics/index.js'
import { headFields } from './access-combined.js'
import { type AccessEntry, sampledIn } from './access-log.js'
import type { Inbound, UpstreamFacts } from './request.js'
import { endSpan } from './request-span.js'

/** `aborted`: the response was cut off after its head. */
export function recordEnd(
  inbound: Inbound,
  status: number,
  err: SwitchyardError | undefined,
  up: UpstreamFacts,
  aborted: boolean,
): void {
  const durationMs = performance.now() - inbound.startMs
  const rt = inbound.rt
  const metrics: RouteMetrics = inbound.poolTarget?.metrics ?? inbound.target?.metrics ?? rt.unrouted
  const cls = (status / 100) | 0
  if (cls >= 1 && cls <= 5) (metrics.byClass[cls - 1] as { value: number }).value++
  metrics.duration.observe(durationMs / 1000)
  const poolName = inbound.poolTarget?.pool.name
  if (err) rt.metrics.errors.labels(poolName ?? '', err.code).inc()
  if (channels.requestEnd.hasSubscribers)
    channels.requestEnd.publish({
      requestId: inbound.requestId,
      listener: rt.config.name,
      pool: poolName,
      server: up.server,
      status,
      code: err?.code,
      durationMs,
    })
  const bytesIn = up.bytesIn ?? inbound.client.bytesIn()
  const onLog = inbound.target?.pipeline.onLog
  if (onLog !== undefined && onLog.length > 0) {
    const record: LogRecord = {
      status,
      code: err?.code,
      durationMs,
      pool: poolName,
      server: up.server,
      bytesIn,
      bytesOut: up.bytesOut,
    }
    runLog(onLog, inbound.context(), record, rt)
  }
  const trace = inbound.trace
  if (trace?.span !== undefined) endSpan(trace.span, inbound, status, err, up)
  const serverError = err !== undefined && err.status >= 500
  const log = rt.accessLog
  if (log === undefined) return
  // Sampling keeps every failure, and every request that asked for its explanation.
  const kept = err !== undefined || status >= 400 || inbound.explain !== undefined || sampledIn(rt.accessSample)
  if (!(serverError || (rt.accessInfo && kept))) return
  const head = log.needsHead ? headFields(inbound.client.rawHeaders) : undefined
  const entry: AccessEntry = {
    requestId: inbound.requestId,
    listener: rt.config.name,
    client: inbound.clientIp,
    method: inbound.method,
    url: inbound.client.url,
    status,
    pool: poolName,
    upstream: up.server,
    bytesIn,
    bytesOut: up.bytesOut,
    ttfbMs: up.ttfbMs,
    durationMs,
    code: err?.code,
    error: err?.message,
    aborted,
    protocol: inbound.client.protocol,
    explain: inbound.explain?.json(inbound, err?.code),
    traceId: trace?.traceId,
    spanId: trace?.spanId,
    referer: head?.referer,
    userAgent: head?.userAgent,
    user: head?.user,
  }
  log.write(entry, serverError ? 'warn' : 'info')
}

/** `onLog` hooks: a failure there is logged, and costs nothing else (the request has ended). */
function runLog(filters: readonly Filter[], ctx: FilterContext, record: LogRecord, rt: HttpSnapshot): void {
  for (const f of filters) {
    try {
      f.onLog?.(ctx, record)
    } catch (err) {
      rt.logger.warn({ err, filter: f.name }, `filter ${f.name} failed in onLog`)
    }
  }
}
