/**
 * Logging: one pino logger for the process. Logs record state transitions and one access-log line per
 * request; never one line per packet.
 */
import { pino } from 'pino'

export type Logger = pino.Logger
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
export const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

export interface LoggerOptions {
  readonly level?: LogLevel
  /** Write synchronously (tests, short-lived commands). Default: async, batched writes to stdout. */
  readonly sync?: boolean
}

/** Bytes buffered before an async write (below SonicBoom's 16 KiB maxWrite); under load, many lines per syscall. */
const BATCH_BYTES = 8 * 1024
/** Longest a buffered line waits when traffic is light. */
const FLUSH_INTERVAL_MS = 250

export function createLogger(options: LoggerOptions = {}): Logger {
  const sync = options.sync ?? false
  const destination = pino.destination({ dest: 1, sync, minLength: sync ? 0 : BATCH_BYTES })
  if (!sync) {
    const timer = setInterval(() => destination.flush(), FLUSH_INTERVAL_MS)
    timer.unref()
  }
  return pino(
    {
      level: options.level ?? 'info',
      base: { name: 'switchyard' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  )
}

/** A logger that drops everything: the default for embedders who pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
