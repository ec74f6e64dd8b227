/**
 * The access log: one line per request (JSON unless a text format is asked for), batched here and
 * handed to the logger's destination
 * (pino's SonicBoom from `createLogger`) in batches below the destination's largest write (4 KiB for
 * a pipe, so that workers sharing it never interleave lines; 16 KiB for a file), at least every 100 ms.
 * The line has the shape pino gives every other log line (level, time, the logger's bindings, then the
 * fields), but is built from a fixed template, encoded byte by byte into one reused buffer: no string is
 * built per line. A batch goes straight to the descriptor when the logger writes synchronously to one
 * (`syncDescriptorOf`: stdout to a file, the default for `--listen` runs); else it is handed to the
 * destination as one string. Measured: generic serialization of an object per request, and SonicBoom's
 * per-write cost (three passes over every string it is given: its UTF-8 length, the write, and a copy
 * for the bookkeeping after it), each cost more than a tenth of the proxy's throughput; building the
 * line as a string and handing it over cost 6 µs of a 41 µs request with the log to a file.
 *
 * Lines wait at most FLUSH_INTERVAL_MS, so an access line may land after a later non-access log line.
 * `flush()` (called by LoadBalancer.close) hands over whatever is pending.
 *
 * Besides JSON, a log writes NGINX's `combined` text format (access-combined.ts), and it may write to a
 * file of its own instead of the logger's destination (`AccessLog.on` an AccessFile, access-file.ts):
 * the server side's AccessLogs (server/access-logs.ts) picks the destination a config asks for.
 */
import { writeSync } from 'node:fs'
import { pino } from 'pino'
import { ERROR_CODES, type ErrorCode } from '../core/errors.js'
import { type Logger, syncDescriptorOf } from '../core/logger.js'
import { combinedLine, tcpLine, timeLocal } from './access-combined.js'
import { ascii, hundredths, integer, jsonString } from './log-bytes.js'

/**
 * How lines are written: `json` (the logger's line shape), `combined` (NGINX's and Apache's combined
 * format) or `combined-extended` (combined with timing, upstream, request id, code and trace id after it).
 */
export const ACCESS_FORMATS = ['json', 'combined', 'combined-extended'] as const
export type AccessFormat = (typeof ACCESS_FORMATS)[number]

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
  /** The W3C trace id and Switchyard's span id, when tracing is on. */
  readonly traceId?: string | undefined
  readonly spanId?: string | undefined
  /** Read from the request head for the text formats only (`AccessLog#needsHead`). */
  readonly referer?: string | undefined
  readonly userAgent?: string | undefined
  /** The user name of a Basic Authorization header (NGINX's `$remote_user`). */
  readonly user?: string | undefined
  /** An explained request's account, as JSON text (explain/render.ts, at most MAX_JSON_CHARS): written as is. */
  readonly explain?: string | undefined
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

/** Where a log's batches go: a logger's destination, or a file of its own (access-file.ts). */
export interface AccessSink {
  /** The descriptor batches are written to directly (synchronously); undefined: `write` takes them. */
  readonly fd: number | undefined
  write(text: string): unknown
  /** The largest single write, in bytes. Default: 4 KiB. */
  readonly maxWrite?: number | undefined
  /** Told after a batch went to `fd` whole (so a sink that reported a failure can say it is over). */
  written?(): void
}

interface Destination {
  write(line: string): unknown
  /** SonicBoom's largest single write, in bytes. */
  readonly maxWrite?: number
}

/** Share of the destination's largest write that a batch fills before it is written. */
const BATCH_SHARE = 0.75
/** Largest single write when the destination does not say. */
const DEFAULT_MAX_WRITE = 4096
/** Longest a line waits in the batch. */
const FLUSH_INTERVAL_MS = 100
/** A line's bytes besides its strings' (keys, numbers, the time), with room to spare. */
const FIXED_LINE_BYTES = 512
/** Most bytes one UTF-16 unit of a string can take in a JSON line: `\u001f`, six. */
const BYTES_PER_UNIT = 6
/** The same in a text line: a character of three UTF-8 bytes, each written `\xHH`. */
const TEXT_BYTES_PER_UNIT = 12

/**
 * Whether a successful request (or connection) is logged, with `share` of them logged (1: all). One
 * random draw when sampling; failures are always logged and never get here.
 */
export function sampledIn(share: number): boolean {
  return share >= 1 || Math.random() < share
}

/** pino's bindings of `logger` (`,"name":"switchyard"`, a child's fields), or ''. */
function bindingsOf(logger: Logger): string {
  return (logger as unknown as Record<symbol, string | undefined>)[pino.symbols.chindingsSym] ?? ''
}

const byLogger = new WeakMap<Logger, Map<AccessFormat, AccessLog>>()

export class AccessLog {
  readonly #sink: AccessSink
  readonly format: AccessFormat
  /** A text format: its lines need the Referer, User-Agent and Authorization of the request. */
  readonly needsHead: boolean
  readonly #bytesPerUnit: number
  /** `,"name":"switchyard"`-style bindings of the logger (pino's chindings), or ''. */
  readonly #bindings: string
  readonly #bindingsAscii: boolean
  /** The destination's largest single write: a batch that would pass it is written before the line. */
  readonly #maxWrite: number
  /** Bytes gathered before a write. */
  readonly #batchBytes: number
  /** The batch's bytes are `#buf[0, #len)`. */
  #buf: Buffer
  #len = 0
  #timer: NodeJS.Timeout | undefined
  /** `time` of the last line, and the millisecond it is for: the same for many lines under load. */
  #timeMs = 0
  #timeIso = ''
  /** `$time_local` of the last text line, and the second it is for. */
  #localS = -1
  #local = ''

  private constructor(sink: AccessSink, bindings: string, format: AccessFormat) {
    this.#sink = sink
    this.format = format
    this.needsHead = format !== 'json'
    this.#bytesPerUnit = format === 'json' ? BYTES_PER_UNIT : TEXT_BYTES_PER_UNIT
    this.#bindings = format === 'json' ? bindings : ''
    this.#bindingsAscii = /^[\x20-\x7e]*$/.test(bindings)
    this.#maxWrite = typeof sink.maxWrite === 'number' && sink.maxWrite > 0 ? sink.maxWrite : DEFAULT_MAX_WRITE
    this.#batchBytes = Math.floor(this.#maxWrite * BATCH_SHARE)
    this.#buf = Buffer.allocUnsafe(this.#maxWrite + FIXED_LINE_BYTES * 8)
  }

  /**
   * The access log in `format` on `logger`'s destination (one per logger and format, shared by every
   * snapshot), or undefined when the logger drops `warn` lines (the level of requests that failed on
   * the server side).
   */
  static of(logger: Logger, format: AccessFormat = 'json'): AccessLog | undefined {
    if (!logger.isLevelEnabled('warn')) return undefined
    let logs = byLogger.get(logger)
    const known = logs?.get(format)
    if (known) return known
    const dest = (logger as unknown as Record<symbol, Destination | undefined>)[pino.symbols.streamSym]
    if (dest === undefined || typeof dest.write !== 'function') return undefined
    const sink: AccessSink = { fd: syncDescriptorOf(dest), write: (text) => dest.write(text), maxWrite: dest.maxWrite }
    const log = new AccessLog(sink, bindingsOf(logger), format)
    if (logs === undefined) {
      logs = new Map()
      byLogger.set(logger, logs)
    }
    logs.set(format, log)
    return log
  }

  /** Flushes every access log on `logger`'s destination. */
  static flushAll(logger: Logger): void {
    for (const log of byLogger.get(logger)?.values() ?? []) log.flush()
  }

  /**
   * An access log in `format` on `sink` (a file of its own), its JSON lines with `logger`'s bindings
   * (`name`, and a worker's `worker` and `pid`). Written whatever the logger's level.
   */
  static on(sink: AccessSink, logger: Logger, format: AccessFormat): AccessLog {
    return new AccessLog(sink, bindingsOf(logger), format)
  }

  /** Hands the pending lines to the destination. */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
    const len = this.#len
    this.#len = 0
    if (len > 0) this.#out(len)
  }

  readonly #onTimer = (): void => {
    this.#timer = undefined
    this.flush()
  }

  /** One request's line: `info`, or `warn` for a request that failed on the server side (5xx errors). */
  write(e: AccessEntry, level: 'info' | 'warn' = 'info'): void {
    if (this.needsHead) return this.#writeText(e, level)
    const strings =
      e.requestId.length +
      e.listener.length +
      e.client.length +
      e.method.length +
      e.url.length +
      (e.pool?.length ?? 0) +
      (e.upstream?.length ?? 0) +
      (e.code?.length ?? 0) +
      (e.error?.length ?? 0) +
      e.protocol.length +
      (e.traceId?.length ?? 0) +
      (e.spanId?.length ?? 0) +
      (e.explain?.length ?? 0)
    const buf = this.#reserve(strings)
    const start = this.#len
    let p = this.#lineStart(buf, start, level, '"access","requestId":')
    p = jsonString(buf, p, e.requestId)
    p = ascii(buf, p, ',"listener":')
    p = jsonString(buf, p, e.listener)
    p = ascii(buf, p, ',"client":')
    p = jsonString(buf, p, e.client)
    p = ascii(buf, p, ',"method":')
    p = jsonString(buf, p, e.method)
    p = ascii(buf, p, ',"url":')
    p = jsonString(buf, p, e.url)
    p = ascii(buf, p, ',"status":')
    p = integer(buf, p, e.status)
    if (e.pool !== undefined) {
      p = ascii(buf, p, ',"pool":')
      p = jsonString(buf, p, e.pool)
    }
    p = outcome(buf, p, e, ',"ttfbMs":', e.ttfbMs)
    if (e.aborted) p = ascii(buf, p, ',"aborted":true')
    p = ascii(buf, p, ',"protocol":')
    p = jsonString(buf, p, e.protocol)
    if (e.traceId !== undefined) {
      p = ascii(buf, p, ',"traceId":')
      p = jsonString(buf, p, e.traceId)
      p = ascii(buf, p, ',"spanId":')
      p = jsonString(buf, p, e.spanId ?? '')
    }
    if (e.explain !== undefined) {
      p = ascii(buf, p, ',"explain":')
      p += buf.write(e.explain, p, 'utf8')
    }
    this.#lineEnd(buf, start, ascii(buf, p, '}\n'), level)
  }

  /** One request's line in a text format. */
  #writeText(e: AccessEntry, level: 'info' | 'warn'): void {
    const strings =
      e.requestId.length +
      e.client.length +
      e.method.length +
      e.url.length +
      (e.pool?.length ?? 0) +
      (e.upstream?.length ?? 0) +
      (e.code?.length ?? 0) +
      (e.traceId?.length ?? 0) +
      (e.referer?.length ?? 0) +
      (e.userAgent?.length ?? 0) +
      (e.user?.length ?? 0)
    const buf = this.#reserve(strings)
    const start = this.#len
    const end = combinedLine(buf, start, e, this.#timeLocal(), this.format === 'combined-extended')
    this.#lineEnd(buf, start, end, level)
  }

  /** One TCP connection's line: `info`, or `warn` when it failed on the server side. */
  writeTcp(e: TcpEntry, level: 'info' | 'warn' = 'info'): void {
    const strings =
      e.listener.length +
      e.client.length +
      e.pool.length +
      (e.upstream?.length ?? 0) +
      (e.code?.length ?? 0) +
      (e.error?.length ?? 0)
    const buf = this.#reserve(strings)
    const start = this.#len
    if (this.needsHead) {
      const status = e.code === undefined ? 200 : (ERROR_CODES[e.code as ErrorCode]?.status ?? 500)
      const end = tcpLine(buf, start, e, status, this.#timeLocal(), this.format === 'combined-extended')
      return this.#lineEnd(buf, start, end, level)
    }
    let p = this.#lineStart(buf, start, level, '"tcp","listener":')
    p = jsonString(buf, p, e.listener)
    p = ascii(buf, p, ',"client":')
    p = jsonString(buf, p, e.client)
    p = ascii(buf, p, ',"pool":')
    p = jsonString(buf, p, e.pool)
    p = outcome(buf, p, e, ',"connectMs":', e.connectMs)
    this.#lineEnd(buf, start, ascii(buf, p, '}\n'), level)
  }

  /** The buffer, with room after `#len` for a line whose strings hold `units` UTF-16 units in all. */
  #reserve(units: number): Buffer {
    const need = FIXED_LINE_BYTES + this.#bytesPerUnit * (units + this.#bindings.length)
    if (this.#len + need > this.#buf.length) {
      this.flush()
      if (need > this.#buf.length) this.#buf = Buffer.allocUnsafe(need)
    }
    return this.#buf
  }

  /** `{"level":…,"time":…` and the bindings, then `,"type":` and `rest`; the position after them. */
  #lineStart(buf: Buffer, p: number, level: string, rest: string): number {
    p = ascii(buf, p, '{"level":"')
    p = ascii(buf, p, level)
    p = ascii(buf, p, '","time":"')
    p = ascii(buf, p, this.#time())
    p = ascii(buf, p, '"')
    p = this.#bindingsAscii ? ascii(buf, p, this.#bindings) : p + buf.write(this.#bindings, p, 'utf8')
    p = ascii(buf, p, ',"type":')
    return ascii(buf, p, rest)
  }

  /**
   * The line in `buf[start, end)` is complete: a batch that it would push past the destination's
   * largest write is written first (so that a line never straddles two writes, and lines of processes
   * sharing a pipe never interleave); the batch is written once full, or within FLUSH_INTERVAL_MS.
   */
  #lineEnd(buf: Buffer, start: number, end: number, level: string): void {
    if (end > this.#maxWrite && start > 0) {
      this.#out(start)
      buf.copyWithin(0, start, end)
      end -= start
    }
    this.#len = end
    if (end >= this.#batchBytes || level !== 'info') this.flush()
    else if (this.#timer === undefined) {
      this.#timer = setTimeout(this.#onTimer, FLUSH_INTERVAL_MS)
      this.#timer.unref()
    }
  }

  /** Writes `#buf[0, len)`: to the descriptor, or as one string to the destination. */
  #out(len: number): void {
    const buf = this.#buf
    const fd = this.#sink.fd
    let done = 0
    if (fd !== undefined)
      try {
        while (done < len) done += writeSync(fd, buf, done, len - done)
        this.#sink.written?.()
        return
      } catch {
        // Left to the destination, which reports the error as it does for every other line (a
        // write cut short mid-character would garble that one character).
      }
    this.#sink.write(buf.toString('utf8', done, len))
  }

  /** `$time_local` of now, made once a second. */
  #timeLocal(): string {
    const nowMs = Date.now()
    const s = Math.floor(nowMs / 1000)
    if (s !== this.#localS) {
      this.#localS = s
      this.#local = timeLocal(nowMs)
    }
    return this.#local
  }

  #time(): string {
    const nowMs = Date.now()
    if (nowMs !== this.#timeMs) {
      this.#timeMs = nowMs
      this.#timeIso = new Date(nowMs).toISOString()
    }
    return this.#timeIso
  }
}

/** What a request's line and a connection's line share. */
interface Outcome {
  readonly upstream: string | undefined
  readonly bytesIn: number
  readonly bytesOut: number
  readonly durationMs: number
  readonly code: string | undefined
  readonly error: string | undefined
}

/**
 * The fields both lines end with, at `p`: upstream, the byte counts, `waitKey` with `waitMs` (the time
 * to the response head, or to the connection; left out when negative), the duration, code and error.
 */
function outcome(buf: Buffer, p: number, e: Outcome, waitKey: string, waitMs: number): number {
  if (e.upstream !== undefined) {
    p = ascii(buf, p, ',"upstream":')
    p = jsonString(buf, p, e.upstream)
  }
  p = ascii(buf, p, ',"bytesIn":')
  p = integer(buf, p, e.bytesIn)
  p = ascii(buf, p, ',"bytesOut":')
  p = integer(buf, p, e.bytesOut)
  if (waitMs >= 0) {
    p = ascii(buf, p, waitKey)
    p = hundredths(buf, p, waitMs)
  }
  p = ascii(buf, p, ',"durationMs":')
  p = hundredths(buf, p, e.durationMs)
  if (e.code !== undefined) {
    p = ascii(buf, p, ',"code":')
    p = jsonString(buf, p, e.code)
  }
  if (e.error !== undefined) {
    p = ascii(buf, p, ',"error":')
    p = jsonString(buf, p, e.error)
  }
  return p
}
