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

/**
 * Largest single write: PIPE_BUF on Linux. Worker processes share stdout, and a write to a pipe of at
 * most this size is atomic, so lines of different workers never interleave mid-line.
 */
export const ATOMIC_WRITE_BYTES = 4096

export function createLogger(options: LoggerOptions = {}): Logger {
  const sync = options.sync ?? false
  // Async writes batch by themselves: lines logged while a write is in flight go out together after it.
  // The access log (l7/access-log.ts) gathers its lines before it writes.
  const destination = pino.destination({ dest: 1, sync, maxWrite: ATOMIC_WRITE_BYTES })
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
