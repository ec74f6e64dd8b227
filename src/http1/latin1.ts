/**
 * Heads written as bytes: the engine builds each HTTP/1.1 head straight into one buffer, rather than
 * as a string of many pieces that V8 then flattens and encodes on write. Header names and values are
 * latin1 here (llhttp reads bytes as latin1, and the head checks refuse anything above 0xff).
 */

/** Longest string copied in JavaScript; longer ones go through Buffer#write (a native copy, worth its call). */
const SHORT = 64

/** Copies `s` (every char code below 256) into `buf` at `p`; the position after it. */
export function putLatin1(buf: Buffer, p: number, s: string): number {
  const n = s.length
  if (n > SHORT) return p + buf.write(s, p, n, 'latin1')
  for (let i = 0; i < n; i++) buf[p + i] = s.charCodeAt(i)
  return p + n
}

/** A header line, `name: value` and CRLF, at `p`; the position after it. */
export function putField(buf: Buffer, p: number, name: string, value: string): number {
  p = putLatin1(buf, p, name)
  buf[p++] = 0x3a
  buf[p++] = 0x20
  p = putLatin1(buf, p, value)
  buf[p++] = 0x0d
  buf[p++] = 0x0a
  return p
}
