/**
 * Request ids: random (version 4) UUIDs, as `crypto.randomUUID()` makes them, from a pool of random
 * bytes refilled 256 ids at a time. Each id is made as one flat string in a single step; Node's
 * randomUUID joins 20 pieces, which V8 keeps as a tree of string parts and flattens again each time
 * the id is written (in the upstream head, the response head and the access line).
 */
import { randomFillSync } from 'node:crypto'

const POOL_BYTES = 256 * 16
const pool = Buffer.allocUnsafe(POOL_BYTES)
let at = POOL_BYTES
const out = Buffer.allocUnsafe(36)
const HEX = Buffer.from('0123456789abcdef', 'latin1')

/** A new random UUID (RFC 9562 version 4), lower-case hex: `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`. */
export function newRequestId(): string {
  if (at === POOL_BYTES) {
    randomFillSync(pool)
    at = 0
  }
  let o = 0
  for (let i = 0; i < 16; i++) {
    let v = pool[at + i] as number
    if (i === 6) v = (v & 0x0f) | 0x40
    else if (i === 8) v = (v & 0x3f) | 0x80
    out[o++] = HEX[v >> 4] as number
    out[o++] = HEX[v & 15] as number
    if (i === 3 || i === 5 || i === 7 || i === 9) out[o++] = 0x2d
  }
  at += 16
  return out.toString('latin1', 0, 36)
}
