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

export function createLogger(options: LoggerOptions = {}): Logger {
  // Async writes coalesce whatever is logged while a write is in flight; nothing waits for a buffer to fill.
  const destination = pino.destination({ dest: 1, sync: options.sync ?? false })
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
