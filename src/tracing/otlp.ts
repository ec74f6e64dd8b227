/**
 * Span export over OTLP/HTTP (JSON) with the OpenTelemetry SDK: a tracer provider of Switchyard's own
 * (never registered as the global one, so an embedder's OpenTelemetry setup is left alone), a batch
 * span processor, and the OTLP/HTTP trace exporter. The packages are imported here, when a config
 * first asks for export (`tracing.otlp`): a load balancer that does not export never loads them.
 *
 * One span per request, kind SERVER, named `METHOD route` (or `METHOD` without a named route), with
 * the HTTP semantic-convention attributes of a server span (docs/observability.md lists them) and
 * Switchyard's own under `switchyard.*`: the listener, route, pool, the server that answered and its
 * address, the request id. Its status is an error for a status of 500 and up. A failed export is
 * logged once, when exports start failing, and once when they work again.
 */
import type { Span, SpanContext } from '@opentelemetry/api'
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base'
import type { OtlpSettings, TracingSettings } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import { redactUrl } from '../core/redact.js'
import { VERSION } from '../version.js'
import type { ParentContext } from './context.js'
import type { ExportedSpan, SpanExport, SpanFacts } from './tracer.js'

/** The methods OpenTelemetry names as they are; any other is `_OTHER` (with the original beside it). */
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE'])

/** `ExportResultCode.SUCCESS` of @opentelemetry/core. */
const EXPORT_SUCCESS = 0

/** Builds the export for `settings` (whose `otlp` is set). Rejects when the packages cannot be loaded. */
export async function loadOtlpExport(
  settings: TracingSettings & { readonly otlp: OtlpSettings },
  logger: Logger,
): Promise<SpanExport> {
  const [api, sdk, exporterModule, resources, semconv] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ])
  const o = settings.otlp
  const otlp = new exporterModule.OTLPTraceExporter({
    url: o.endpoint,
    headers: { ...o.headers },
    timeoutMillis: o.timeoutMs,
  })
  let failing = false
  // The exporter reports failures to nobody (OpenTelemetry's diag logger is global, and off): told here.
  const exporter: SpanExporter = {
    export(spans: ReadableSpan[], done) {
      otlp.export(spans, (result) => {
        if (result.code !== EXPORT_SUCCESS && !failing) {
          failing = true
          logger.warn(
            { err: result.error, endpoint: redactUrl(o.endpoint) },
            `OTLP span export to ${redactUrl(o.endpoint)} failed (${result.error?.message ?? 'unknown error'}); spans are dropped until it works again`,
          )
        } else if (result.code === EXPORT_SUCCESS && failing) {
          failing = false
          logger.info({ endpoint: redactUrl(o.endpoint) }, `OTLP span export to ${redactUrl(o.endpoint)} works again`)
        }
        done(result)
      })
    },
    shutdown: () => otlp.shutdown(),
    forceFlush: () => otlp.forceFlush(),
  }
  const processor = new sdk.BatchSpanProcessor(exporter, {
    maxQueueSize: o.maxQueueSize,
    maxExportBatchSize: o.maxBatchSize,
    scheduledDelayMillis: o.delayMs,
    exportTimeoutMillis: o.timeoutMs,
  })
  const provider = new sdk.BasicTracerProvider({
    resource: resources.resourceFromAttributes({
      [semconv.ATTR_SERVICE_NAME]: settings.serviceName,
      [semconv.ATTR_SERVICE_VERSION]: VERSION,
    }),
    // Switchyard decides which requests are sampled (tracer.ts) and starts spans only for those.
    sampler: new sdk.AlwaysOnSampler(),
    spanProcessors: [processor],
  })
  const tracer = provider.getTracer('switchyard', VERSION)
  const S = semconv

  class OtelSpan implements ExportedSpan {
    readonly traceId: string
    readonly spanId: string
    readonly #span: Span

    constructor(span: Span) {
      this.#span = span
      const c = span.spanContext()
      this.traceId = c.traceId
      this.spanId = c.spanId
    }

    end(f: SpanFacts, endTimeMs: number): void {
      const span = this.#span
      const known = KNOWN_METHODS.has(f.method)
      span.updateName(f.route === undefined || f.route.startsWith('#') ? f.method : `${f.method} ${f.route}`)
      span.setAttributes({
        [S.ATTR_HTTP_REQUEST_METHOD]: known ? f.method : S.HTTP_REQUEST_METHOD_VALUE_OTHER,
        [S.ATTR_URL_PATH]: f.path,
        [S.ATTR_URL_SCHEME]: f.scheme,
        [S.ATTR_NETWORK_PROTOCOL_NAME]: 'http',
        [S.ATTR_NETWORK_PROTOCOL_VERSION]: f.protocol === 'h2' ? '2' : f.protocol === 'http/1.0' ? '1.0' : '1.1',
        [S.ATTR_CLIENT_ADDRESS]: f.clientIp,
        [S.ATTR_SERVER_PORT]: f.port,
        [S.ATTR_HTTP_RESPONSE_STATUS_CODE]: f.status,
        'switchyard.listener': f.listener,
        'switchyard.request_id': f.requestId,
      })
      if (!known) span.setAttribute(S.ATTR_HTTP_REQUEST_METHOD_ORIGINAL, f.method)
      if (f.host !== '') span.setAttribute(S.ATTR_SERVER_ADDRESS, f.host)
      if (f.userAgent !== undefined) span.setAttribute(S.ATTR_USER_AGENT_ORIGINAL, f.userAgent)
      if (f.retries > 0) span.setAttribute(S.ATTR_HTTP_REQUEST_RESEND_COUNT, f.retries)
      if (f.route !== undefined) span.setAttribute('switchyard.route', f.route)
      if (f.pool !== undefined) span.setAttribute('switchyard.pool', f.pool)
      if (f.server !== undefined) span.setAttribute('switchyard.upstream.server', f.server)
      if (f.serverAddress !== undefined) span.setAttribute('switchyard.upstream.address', f.serverAddress)
      if (f.code !== undefined) span.setAttribute('switchyard.code', f.code)
      const errorType = f.code ?? (f.status >= 500 ? String(f.status) : undefined)
      if (errorType !== undefined) span.setAttribute(S.ATTR_ERROR_TYPE, errorType)
      // Server spans: a 4xx is the client's error, not the span's (HTTP semantic conventions).
      if (f.status >= 500) span.setStatus({ code: api.SpanStatusCode.ERROR, message: f.error ?? `status ${f.status}` })
      span.end(endTimeMs)
    }
  }

  return {
    start(parent: ParentContext | undefined, tracestate: string | undefined, startTimeMs: number): ExportedSpan {
      let ctx = api.ROOT_CONTEXT
      if (parent !== undefined) {
        const remote: SpanContext = {
          traceId: parent.traceId,
          spanId: parent.parentId,
          traceFlags: parent.sampled ? api.TraceFlags.SAMPLED : api.TraceFlags.NONE,
          isRemote: true,
        }
        if (tracestate !== undefined) remote.traceState = api.createTraceState(tracestate)
        ctx = api.trace.setSpanContext(ctx, remote)
      }
      return new OtelSpan(tracer.startSpan('HTTP', { kind: api.SpanKind.SERVER, startTime: startTimeMs }, ctx))
    },
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  }
}
