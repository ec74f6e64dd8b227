/**
 * Tracing for one config generation (built by the control plane, held by the listener snapshots): each
 * HTTP request joins the W3C trace its client sent, or starts one, and gets a span of Switchyard's own.
 * The upstream is sent a `traceparent` that names that span as its parent; the access log gets the
 * trace and span ids; with OTLP export on (otlp.ts), sampled requests' spans are exported.
 *
 * The forwarded head carries Switchyard's `traceparent` in place of the incoming one (its value
 * replaced where it was, or added after the client's fields), so every try sends it. The incoming
 * `tracestate` passes through untouched when the `traceparent` was valid, and is dropped when not: the trace restarts, and the state of another trace means
 * nothing in it (W3C Trace Context §3.3: tracestate is not read when traceparent is invalid). Several
 * `traceparent` fields make it invalid.
 *
 * When tracing is off, nothing here runs: the snapshot has no Tracing (one branch per request), and
 * both headers pass through as any other.
 */
import type { TracingSettings } from '../config/index.js'
import { removeHeaders } from '../l7/head-draft.js'
import type { RequestHead } from '../l7/headers.js'
import { formatTraceparent, newTraceparent, type ParentContext, parseTraceparent } from './context.js'

/** What the request path tells an exported span when its request ends (l7/request-span.ts). */
export interface SpanFacts {
  readonly method: string
  /** The normalized path, without the query. */
  readonly path: string
  readonly scheme: 'http' | 'https'
  readonly protocol: 'http/1.0' | 'http/1.1' | 'h2'
  readonly clientIp: string
  /** The host the request named (Host or :authority), without its port; '' when none. */
  readonly host: string
  /** The listener's port. */
  readonly port: number
  readonly userAgent: string | undefined
  /** The status sent to the client (499: it went away first). */
  readonly status: number
  /** The SWY_* code of a failed request, and its message. */
  readonly code: string | undefined
  readonly error: string | undefined
  /** Tries after the first (retries and resends). */
  readonly retries: number
  readonly listener: string
  /** The route's name, or `#<index>` for a route without one; undefined when no route matched. */
  readonly route: string | undefined
  readonly pool: string | undefined
  /** The server of the last try: its name, and `host:port`. */
  readonly server: string | undefined
  readonly serverAddress: string | undefined
  readonly requestId: string
}

/** A span being recorded for export. */
export interface ExportedSpan {
  readonly traceId: string
  readonly spanId: string
  /** Ends it at `endTimeMs` (epoch milliseconds) with the request's facts. Once. */
  end(facts: SpanFacts, endTimeMs: number): void
}

/** The export of spans (otlp.ts), for as long as a config generation uses it. */
export interface SpanExport {
  /**
   * Starts the span of a sampled request at `startTimeMs` (epoch milliseconds), a child of `parent`,
   * or a trace's root span. `tracestate`: the incoming one, with a parent.
   */
  start(parent: ParentContext | undefined, tracestate: string | undefined, startTimeMs: number): ExportedSpan
  /** Exports every span ended so far. */
  flush(): Promise<void>
  /** Exports what is left, then stops; spans ended after it are dropped. */
  shutdown(): Promise<void>
}

/** One request's place in its trace. */
export interface RequestTrace {
  readonly traceId: string
  /** Switchyard's span for the request: the parent-id the upstream is sent. */
  readonly spanId: string
  readonly sampled: boolean
  /** The `traceparent` sent upstream. */
  readonly header: string
  /** The span being recorded, when the request is sampled and spans are exported. */
  readonly span: ExportedSpan | undefined
}

const TRACEPARENT = 'traceparent'
const TRACESTATE = 'tracestate'

export class Tracing {
  readonly #ratio: number
  readonly #export: SpanExport | undefined

  constructor(settings: TracingSettings, spans: SpanExport | undefined) {
    this.#ratio = settings.sampleRatio
    this.#export = spans
  }

  /** The span export this generation uses, if any. */
  get spans(): SpanExport | undefined {
    return this.#export
  }

  /**
   * The trace of a request whose head is `head`, whose forwarded headers get the request's
   * `traceparent` (and lose the `tracestate` of a broken trace); `startMs` is its `performance.now()`
   * start.
   */
  begin(head: RequestHead, startMs: number): RequestTrace {
    const headers = head.headers
    let at = -1
    let parents = 0
    let states = 0
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i] as string
      if (name.length === 11 && name.toLowerCase() === TRACEPARENT) {
        at = i
        parents++
      } else if (name.length === 10 && name.toLowerCase() === TRACESTATE) states++
    }
    const parent = parents === 1 ? parseTraceparent(headers[at + 1] as string) : undefined
    const trace = this.#trace(parent, states > 0 ? headers : undefined, startMs)
    if (parent !== undefined) headers[at + 1] = trace.header
    else {
      if (parents > 0) cut(head, TRACEPARENT)
      if (states > 0) cut(head, TRACESTATE)
      // Switchyard's own value is valid: when every entry before it is known valid, so is it.
      const checked = head.checked === headers.length
      headers.push(TRACEPARENT, trace.header)
      if (checked) head.checked = headers.length
    }
    return trace
  }

  /** The request's trace: a child of `parent`, or a new trace; `headers` holds the incoming tracestate. */
  #trace(parent: ParentContext | undefined, headers: readonly string[] | undefined, startMs: number): RequestTrace {
    const ratio = this.#ratio
    const sampled = parent !== undefined ? parent.sampled : ratio >= 1 || (ratio > 0 && Math.random() < ratio)
    const spans = this.#export
    if (sampled && spans !== undefined) {
      const state = parent !== undefined && headers !== undefined ? joined(headers, TRACESTATE) : undefined
      const span = spans.start(parent, state, performance.timeOrigin + startMs)
      return {
        traceId: span.traceId,
        spanId: span.spanId,
        sampled,
        header: formatTraceparent(span.traceId, span.spanId, sampled),
        span,
      }
    }
    const header = newTraceparent(parent?.traceId, sampled)
    return { traceId: header.slice(3, 35), spanId: header.slice(36, 52), sampled, header, span: undefined }
  }
}

/** Removes every `name` field from the forwarded head, keeping its count of checked entries right. */
function cut(head: RequestHead, name: string): void {
  const at = removeHeaders(head.headers, name)
  // The entries after `at` moved: only those before it are still the client's, as checked.
  if (at >= 0 && at < head.checked) head.checked = at
}

/** The values of every `name` field, joined by commas (a list header, RFC 9110 §5.3). */
function joined(flat: readonly string[], name: string): string {
  const values: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const n = flat[i] as string
    if (n.length === name.length && n.toLowerCase() === name) values.push(flat[i + 1] as string)
  }
  return values.join(',')
}
