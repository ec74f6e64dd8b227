/**
 * The span export across config generations, for one load balancer: a reload that keeps the same
 * `tracing.otlp` settings (and service name) keeps the same export, flushed at the reload; one that
 * changes them loads a new export, and the old one is flushed at once and shut down after the grace
 * period (requests of the old generation still end their spans on it). `close()` shuts everything
 * down, exporting what is left.
 */
import type { TracingSettings } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { loadOtlpExport } from './otlp.js'
import { type SpanExport, Tracing } from './tracer.js'

/** A generation's tracing, built before the generation is committed. */
export interface PreparedTracing {
  readonly tracing: Tracing | undefined
  /** The generation serves: the export it replaced (if any) is retired after `graceMs`. */
  commit(graceMs: number): void
  /** The generation was given up: an export loaded for it is shut down. */
  abort(): void
}

export class TraceExports {
  readonly #logger: Logger
  #current: { readonly key: string; readonly spans: SpanExport } | undefined
  readonly #retiring = new Set<SpanExport>()

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /**
   * The tracing of a generation with `settings`; loads the OpenTelemetry packages on first use. Rejects
   * with SWY_CONFIG_INVALID when they cannot be loaded.
   */
  async prepare(settings: TracingSettings | undefined): Promise<PreparedTracing> {
    const otlp = settings?.otlp
    const key = otlp === undefined ? undefined : JSON.stringify([settings?.serviceName, otlp])
    const current = this.#current
    if (settings === undefined || otlp === undefined || key === undefined)
      return {
        tracing: settings === undefined ? undefined : new Tracing(settings, undefined),
        commit: (graceMs) => this.#replace(undefined, graceMs),
        abort: () => {},
      }
    if (current?.key === key)
      return {
        tracing: new Tracing(settings, current.spans),
        commit: () => this.#flush(current.spans),
        abort: () => {},
      }
    let spans: SpanExport
    try {
      spans = await loadOtlpExport({ ...settings, otlp }, this.#logger)
    } catch (err) {
      throw new SwitchyardError(
        'SWY_CONFIG_INVALID',
        `tracing.otlp: cannot load the OpenTelemetry SDK: ${(err as Error).message}`,
        { cause: err },
      )
    }
    return {
      tracing: new Tracing(settings, spans),
      commit: (graceMs) => this.#replace({ key, spans }, graceMs),
      abort: () => void spans.shutdown().catch(() => {}),
    }
  }

  #replace(next: { readonly key: string; readonly spans: SpanExport } | undefined, graceMs: number): void {
    const old = this.#current
    this.#current = next
    if (old === undefined || old.spans === next?.spans) return
    this.#flush(old.spans)
    this.#retiring.add(old.spans)
    setTimeout(() => {
      if (this.#retiring.delete(old.spans)) this.#shutdown(old.spans)
    }, graceMs).unref()
  }

  #flush(spans: SpanExport): void {
    spans.flush().catch((err: unknown) => this.#logger.warn({ err }, 'flushing the span export failed'))
  }

  #shutdown(spans: SpanExport): Promise<void> {
    return spans.shutdown().catch((err: unknown) => this.#logger.warn({ err }, 'shutting down the span export failed'))
  }

  /** Exports what is left and stops every export. */
  async close(): Promise<void> {
    const all = [...this.#retiring, ...(this.#current === undefined ? [] : [this.#current.spans])]
    this.#retiring.clear()
    this.#current = undefined
    await Promise.all(all.map((s) => this.#shutdown(s)))
  }
}
