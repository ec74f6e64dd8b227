/**
 * The access log: one JSON line per request, batched here and handed to the logger's destination
 * (pino's SonicBoom from `createLogger`) in batches below the destination's largest write (4 KiB for
 * a pipe, so that workers sharing it never interleave lines; 16 KiB for a file), at least every 100 ms.
 * The line has the shape pino gives every other log line (level, time, the logger's bindings, then the
 * fields), but is built from a fixed template. Measured: generic serialization of an object per request,
 * and SonicBoom's per-write cost (it measures the UTF-8 length of its whole pending buffer on every
 * write), each cost more than a tenth of the proxy's throughput.
 *
 * Lines wait at most FLUSH_INTERVAL_MS, so an access line may land after a later non-access log line.
 * `flush()` (called by LoadBalancer.close) hands over whatever is pending.
 */
import { pino } from 'pino'
import type { Logger } from '../core/logger.js'

/** One request's access-log fields. Optional ones are left out of the line when undefined. */
export interface AccessEntry {
  readonly requestId: string
  readonly listener: string
  readonly client: string
  readonly method: string
  readonly url: string
  readonly status: number
  readonly pool: string | undefined
  readonly upstream: string | undefined
  readonly bytesIn: number
  readonly bytesOut: number
  /** Milliseconds to the upstream response head, or -1 when there was none. */
  readonly ttfbMs: number
  readonly durationMs: number
  readonly code: string | undefined
  readonly error: string | undefined
  readonly aborted: boolean
  /** What the client spoke: `http/1.0`, `http/1.1` or `h2`. */
  readonly protocol: string
}

/** One TCP (layer 4) connection's log fields, written when it closes. */
export interface TcpEntry {
  readonly listener: string
  readonly client: string
  readonly pool: string
  readonly upstream: string | undefined
  /** Bytes from the client, and to it. */
  readonly bytesIn: number
  readonly bytesOut: number
  /** Milliseconds until the server connection was up, or -1 when it never was. */
  readonly connectMs: number
  readonly durationMs: number
  readonly code: string | undefined
  /** What went wrong, when it failed. */
  readonly error: string | undefined
}

interface Destination {
  write(line: string): unknown
  /** SonicBoom's largest single write, in bytes. */
  readonly maxWrite?: number
}

/** Share of the destination's largest write that a batch fills before it is written. */
const BATCH_SHARE = 0.75
/** Batch size when the destination does not say its largest write. */
const DEFAULT_BATCH_CHARS = 3 * 1024
/** Longest a line waits in the batch. */
const FLUSH_INTERVAL_MS = 100

const byLogger = new WeakMap<Logger, AccessLog>()

export class AccessLog {
  readonly #dest: Destination
  /** `,"name":"switchyard"`-style bindings of the logger (pino's chindings), or ''. */
  readonly #bindings: string
  /** Characters gathered before a write. */
  readonly #batchChars: number
  #batch = ''
  #timer: NodeJS.Timeout | undefined
  /** `time` of the last line, and the millisecond it is for: the same for many lines under load. */
  #timeMs = 0
  #timeIso = ''

  private constructor(dest: Destination, bindings: string) {
    this.#dest = dest
    this.#bindings = bindings
    this.#batchChars =
      typeof dest.maxWrite === 'number' && dest.maxWrite > 0
        ? Math.floor(dest.maxWrite * BATCH_SHARE)
        : DEFAULT_BATCH_CHARS
  }

  /**
   * The access log on `logger`'s destination (one per logger, shared by every snapshot), or undefined
   * when the logger drops `warn` lines (the level of requests that failed on the server side).
   */
  static of(logger: Logger): AccessLog | undefined {
    if (!logger.isLevelEnabled('warn')) return undefined
    let log = byLogger.get(logger)
    if (log) return log
    const dest = (logger as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym]
    if (dest === undefined || typeof dest.write !== 'function') return undefined
    const bindings = (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? ''
    log = new AccessLog(dest, bindings)
    byLogger.set(logger, log)
    return log
  }

  /** Hands the pending lines to the destination. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#batch === '') return
    const batch = this.#batch
    this.#batch = ''
    this.#dest.write(batch)
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.flush()
  }

  /** One request's line: `info`, or `warn` for a request that failed on the server side (5xx errors). */
  write(e: AccessEntry, level: 'info' | 'warn' = 'info'): void {
    let line = `{"level":"${level}","time":"${this.#time()}"${this.#bindings},"type":"access","requestId":${str(e.requestId)},"listener":${str(e.listener)},"client":"${e.client}","method":${str(e.method)},"url":${str(e.url)},"status":${e.status}`
    if (e.pool !== undefined) line += `,"pool":${str(e.pool)}`
    if (e.upstream !== undefined) line += `,"upstream":${str(e.upstream)}`
    line += `,"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut}`
    if (e.ttfbMs >= 0) line += `,"ttfbMs":${round(e.ttfbMs)}`
    line += `,"durationMs":${round(e.durationMs)}`
    if (e.code !== undefined) line += `,"code":"${e.code}"`
    if (e.error !== undefined) line += `,"error":${str(e.error)}`
    if (e.aborted) line += ',"aborted":true'
    line += `,"protocol":"${e.protocol}"`
    this.#append(`${line}}\n`)
    if (level !== 'info') this.flush()
  }

  /** One TCP connection's line: `info`, or `warn` when it failed on the server side. */
  writeTcp(e: TcpEntry, level: 'info' | 'warn' = 'info'): void {
    let line = `{"level":"${level}","time":"${this.#time()}"${this.#bindings},"type":"tcp","listener":${str(e.listener)},"client":"${e.client}","pool":${str(e.pool)}`
    if (e.upstream !== undefined) line += `,"upstream":${str(e.upstream)}`
    line += `,"bytesIn":${e.bytesIn},"bytesOut":${e.bytesOut}`
    if (e.connectMs >= 0) line += `,"connectMs":${round(e.connectMs)}`
    line += `,"durationMs":${round(e.durationMs)}`
    if (e.code !== undefined) line += `,"code":"${e.code}"`
    if (e.error !== undefined) line += `,"error":${str(e.error)}`
    this.#append(`${line}}\n`)
    if (level !== 'info') this.flush()
  }

  #time(): string {
    const nowMs = Date.now()
    if (nowMs !== this.#timeMs) {
      this.#timeMs = nowMs
      this.#timeIso = new Date(nowMs).toISOString()
    }
    return this.#timeIso
  }

  #append(line: string): void {
    this.#batch += line
    if (this.#batch.length >= this.#batchChars) this.flush()
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onTimer, FLUSH_INTERVAL_MS)
      this.#timer.unref()
    }
  }
}

/** Anything but printable ASCII without `"` and `\`: what JSON must escape, and non-ASCII (left to JSON.stringify). */
const NEEDS_ESCAPE = /[^ !#-[\]-~]/

/** A JSON string literal: a plain quote when nothing needs escaping, the common case. */
function str(value: string): string {
  return NEEDS_ESCAPE.test(value) ? JSON.stringify(value) : `"${value}"`
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100
}
