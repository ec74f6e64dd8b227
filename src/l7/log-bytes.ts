/**
 * Encoding access-log fields byte by byte into a reused buffer (l7/access-log.ts): no string is built
 * per line. Each function writes at `p` and returns the position after what it wrote; the caller has
 * reserved the room (at most 12 bytes per UTF-16 unit of a string, see `escaped`).
 */

/** `s` (printable ASCII) at `p`. */
export function ascii(buf: Buffer, p: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[p++] = s.charCodeAt(i)
  return p
}

/**
 * `value` as a JSON string literal at `p`. Printable ASCII without `"` and `\` (the common case) is
 * copied as it is; anything else takes JSON.stringify's escapes, UTF-8 encoded.
 */
export function jsonString(buf: Buffer, p: number, value: string): number {
  const start = p
  buf[p++] = 0x22
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return start + buf.write(JSON.stringify(value), start, 'utf8')
    buf[p++] = c
  }
  buf[p++] = 0x22
  return p
}

/** A non-negative integer's decimal digits at `p` (anything else as String gives it). */
export function integer(buf: Buffer, p: number, n: number): number {
  if (!(n >= 0 && n <= Number.MAX_SAFE_INTEGER && Number.isInteger(n))) return ascii(buf, p, String(n))
  let digits = 1
  for (let t = n; t >= 10; t = Math.floor(t / 10)) digits++
  let q = p + digits
  const end = q
  do {
    buf[--q] = 0x30 + (n % 10)
    n = Math.floor(n / 10)
  } while (n > 0)
  return end
}

/** Milliseconds rounded to hundredths, as `String(Math.round(ms * 100) / 100)` writes them. */
export function hundredths(buf: Buffer, p: number, ms: number): number {
  const v = Math.round(ms * 100)
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER)) return ascii(buf, p, String(v / 100))
  const frac = v % 100
  p = integer(buf, p, (v - frac) / 100)
  if (frac === 0) return p
  buf[p++] = 0x2e
  buf[p++] = 0x30 + Math.floor(frac / 10)
  if (frac % 10 !== 0) buf[p++] = 0x30 + (frac % 10)
  return p
}

/** Milliseconds as seconds with three decimals (`0.012`, `1.500`), as NGINX writes `$request_time`. */
export function seconds(buf: Buffer, p: number, ms: number): number {
  const v = Math.round(ms)
  if (!(v >= 0 && v <= Number.MAX_SAFE_INTEGER)) return ascii(buf, p, (ms / 1000).toFixed(3))
  const frac = v % 1000
  p = integer(buf, p, (v - frac) / 1000)
  buf[p++] = 0x2e
  buf[p++] = 0x30 + Math.floor(frac / 100)
  buf[p++] = 0x30 + (Math.floor(frac / 10) % 10)
  buf[p++] = 0x30 + (frac % 10)
  return p
}

const HEX = '0123456789ABCDEF'

/**
 * `value` as NGINX's `escape=default` writes a variable: `"`, `\`, control characters and bytes from
 * 0x7F up as `\xHH` (a character above 0xFF is written as its UTF-8 bytes, each escaped), everything
 * else as it is; `-` for an empty or absent value. At most 12 bytes per UTF-16 unit.
 */
export function escaped(buf: Buffer, p: number, value: string | undefined): number {
  if (value === undefined || value.length === 0) {
    buf[p++] = 0x2d
    return p
  }
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i)
    if (c >= 0x20 && c < 0x7f && c !== 0x22 && c !== 0x5c) {
      buf[p++] = c
      continue
    }
    if (c <= 0xff) {
      p = hexByte(buf, p, c)
      continue
    }
    const cp = value.codePointAt(i) as number
    if (cp > 0xffff) i++
    for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) p = hexByte(buf, p, b)
  }
  return p
}

function hexByte(buf: Buffer, p: number, b: number): number {
  buf[p++] = 0x5c
  buf[p++] = 0x78
  buf[p++] = HEX.charCodeAt(b >> 4)
  buf[p++] = HEX.charCodeAt(b & 15)
  return p
}
