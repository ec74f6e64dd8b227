/** Parsing of `host:port` listen addresses and human durations. */
import { z } from 'zod'

export interface ListenAddress {
  /** Host to bind; `0.0.0.0` when the address was `:port`. */
  readonly host: string
  readonly port: number
}

const LISTEN_RE = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/

/** Parses `127.0.0.1:8080`, `[::1]:8080`, `:8080` or `localhost:0`. Returns undefined when invalid. */
export function parseListen(text: string): ListenAddress | undefined {
  const m = LISTEN_RE.exec(text)
  if (!m) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2])
  if (host === undefined) return undefined
  return { host, port }
}

/** Formats an address for logs and messages: `127.0.0.1:8080`, `[::1]:8080`. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}

const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const

/** A duration in config: a number of milliseconds, or a string such as `250ms`, `5s`, `2m`, `1h`. */
export function durationToMs(value: number | string): number {
  if (typeof value === 'number') return value
  const m = DURATION_RE.exec(value)
  if (!m) throw new Error(`invalid duration ${value}`)
  return Math.round(Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS])
}

/** A duration in the config: milliseconds as a number, or a string with a unit. */
export const durationSchema = z
  .union([
    z.number().int().min(0),
    z.string().regex(DURATION_RE, { error: 'expected a duration such as 500ms, 5s, 2m or 1h' }),
  ])
  .describe('A duration: milliseconds as a number, or a string with a unit (`500ms`, `5s`, `2m`, `1h`). 0 disables.')
