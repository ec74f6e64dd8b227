/** Collects a pino logger's lines in memory, parsed, for tests that assert on logs. */
import { Writable } from 'node:stream'
import { type Level, pino } from 'pino'

export function memoryLogger(level: Level = 'info') {
  const lines: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: pino({ level }, stream), lines }
}
