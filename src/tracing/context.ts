/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header read and made.
 * `00-<trace-id: 32 hex>-<parent-id: 16 hex>-<trace-flags: 2 hex>`, lower-case hex. Ids are random, from
 * a pool of random bytes refilled 4 KiB at a time (as request ids are, l7/request-id.ts).
 */
import { randomFillSync } from 'node:crypto'

/** What a valid incoming `traceparent` says. */
export interface ParentContext {
  readonly traceId: string
  /** The caller's span id: the parent of Switchyard's span. */
  readonly parentId: string
  /** The sampled flag (bit 0 of trace-flags). */
  readonly sampled: boolean
}

/** Length of a version 00 traceparent. */
const LENGTH_00 = 55

/** The value of hex digit `c` (lower case only, as the spec requires), or -1. */
function hexDigit(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x61 && c <= 0x66) return c - 0x57
  return -1
}

/** True when `value[from, to)` is lower-case hex, not all zeros. */
function validId(value: string, from: number, to: number): boolean {
  let nonZero = false
  for (let i = from; i < to; i++) {
    const d = hexDigit(value.charCodeAt(i))
    if (d < 0) return false
    if (d !== 0) nonZero = true
  }
  return nonZero
}

/**
 * An incoming `traceparent`, or undefined when it is invalid (the spec then has the trace restarted):
 * a version other than two hex digits or `ff`; for version 00, anything but exactly 55 characters;
 * for a later version, fewer than 55, or more without a `-` after the 55th (its own fields are then
 * ignored, as the spec says); upper-case hex; an all-zero trace id or parent id.
 */
export function parseTraceparent(value: string): ParentContext | undefined {
  if (value.length < LENGTH_00) return undefined
  const v1 = hexDigit(value.charCodeAt(0))
  const v2 = hexDigit(value.charCodeAt(1))
  if (v1 < 0 || v2 < 0) return undefined
  const version = v1 * 16 + v2
  if (version === 0xff) return undefined
  if (version === 0 ? value.length !== LENGTH_00 : value.length > LENGTH_00 && value.charCodeAt(LENGTH_00) !== 0x2d)
    return undefined
  if (value.charCodeAt(2) !== 0x2d || value.charCodeAt(35) !== 0x2d || value.charCodeAt(52) !== 0x2d) return undefined
  if (!validId(value, 3, 35) || !validId(value, 36, 52)) return undefined
  const f1 = hexDigit(value.charCodeAt(53))
  const f2 = hexDigit(value.charCodeAt(54))
  if (f1 < 0 || f2 < 0) return undefined
  return { traceId: value.slice(3, 35), parentId: value.slice(36, 52), sampled: (f2 & 1) === 1 }
}

/** The version 00 `traceparent` naming span `spanId` of trace `traceId`; only the sampled flag is set. */
export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`
}

const POOL_BYTES = 4096
const pool = Buffer.allocUnsafe(POOL_BYTES)
let at = POOL_BYTES
const HEX = Buffer.from('0123456789abcdef', 'latin1')
/** The traceparent being made: `00-`, the trace id, `-`, the span id, `-`, the flags. */
const line = Buffer.from(`00-${'0'.repeat(32)}-${'0'.repeat(16)}-00`, 'latin1')

/** `bytes` random bytes from the pool, none all zero, as hex into `line` at `p`. */
function randomHexAt(p: number, bytes: number): void {
  for (;;) {
    if (at + bytes > POOL_BYTES) {
      randomFillSync(pool)
      at = 0
    }
    const from = at
    at += bytes
    let nonZero = false
    for (let i = from, o = p; i < at; i++) {
      const v = pool[i] as number
      if (v !== 0) nonZero = true
      line[o++] = HEX[v >> 4] as number
      line[o++] = HEX[v & 15] as number
    }
    if (nonZero) return
  }
}

/**
 * A version 00 `traceparent` for a new span of trace `traceId` (lower-case hex, as parseTraceparent
 * gives it), or of a new trace when undefined: the span id, and a new trace id, are random. Made in one
 * buffer and read out as one string: `slice(3, 35)` is its trace id, `slice(36, 52)` its span id.
 */
export function newTraceparent(traceId: string | undefined, sampled: boolean): string {
  if (traceId === undefined) randomHexAt(3, 16)
  else for (let i = 0; i < 32; i++) line[3 + i] = traceId.charCodeAt(i)
  randomHexAt(36, 8)
  line[54] = sampled ? 0x31 : 0x30
  return line.toString('latin1')
}
