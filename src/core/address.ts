/** Parsing of `host:port` listen addresses, human durations, sizes and rates. */
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

/** An address without the `::ffff:` of an IPv4-mapped IPv6 address; '' for undefined (no address). */
export function bareIp(ip: string | undefined): string {
  if (ip === undefined) return ''
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip
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

const SIZE_RE = /^(\d+(?:\.\d+)?)(b|kb|mb|gb)$/i
const UNIT_BYTES = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 } as const

/** A size in the config: a number of bytes, or a string with a 1024-based unit. */
export const sizeSchema = z
  .union([
    z.number().int().min(0),
    z.string().regex(SIZE_RE, { error: 'expected a size such as 512b, 16kb, 10mb or 1gb' }),
  ])
  .describe('A size: a number of bytes, or a string with a 1024-based unit (`512b`, `16kb`, `10mb`, `1gb`).')

/** A size in config (`16kb`, `10mb`, or bytes as a number) in bytes. */
export function sizeToBytes(value: number | string): number {
  if (typeof value === 'number') return value
  const m = SIZE_RE.exec(value)
  if (!m) throw new Error(`invalid size ${value}`)
  return Math.floor(Number(m[1]) * UNIT_BYTES[(m[2] as string).toLowerCase() as keyof typeof UNIT_BYTES])
}

const RATE_RE = /^(\d+(?:\.\d+)?)\/(ms|s|m|h)$/

/** A rate in the config: `100/s`, `20/m`, `1000/h`. */
export const rateSchema = z
  .string()
  .regex(RATE_RE, { error: 'expected a rate such as 100/s, 20/m or 1000/h' })
  .refine((v) => Number.parseFloat(v) > 0, { error: 'expected a rate above 0' })
  .describe('A rate: a count per unit of time (`100/s`, `20/m`, `1000/h`).')

/** A rate (`100/s`) as a count and the period it is counted over, in milliseconds. */
export function parseRate(value: string): { count: number; perMs: number } {
  const m = RATE_RE.exec(value)
  if (!m) throw new Error(`invalid rate ${value}`)
  return { count: Number(m[1]), perMs: UNIT_MS[m[2] as keyof typeof UNIT_MS] }
}
