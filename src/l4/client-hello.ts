/**
 * The server name (SNI, RFC 6066 §3) and ALPN protocols of a TLS ClientHello, read from the first
 * bytes of a connection without decrypting anything: for TLS passthrough (a `tcp` listener routes by
 * the name and pipes the bytes on untouched), and to tell an ACME tls-alpn-01 validation apart. Only the first TLS record is read (a ClientHello fits in one: at most
 * 16 KiB, and browsers send under 2 KiB).
 */

/** The largest first record a passthrough listener waits for: a 5-byte header and 16 KiB. */
export const MAX_HELLO_BYTES = 5 + 16 * 1024

/** What the first bytes say. */
export type HelloResult =
  /** More bytes are needed. */
  | { readonly kind: 'incomplete' }
  /**
   * A ClientHello, with its server name (lower-case), or undefined when it sends none, and the
   * protocols its ALPN extension offers (RFC 7301), in its order; empty without one.
   */
  | { readonly kind: 'hello'; readonly serverName: string | undefined; readonly alpn: readonly string[] }
  /** Not a TLS ClientHello. */
  | { readonly kind: 'not-tls' }

const INCOMPLETE: HelloResult = { kind: 'incomplete' }
const NOT_TLS: HelloResult = { kind: 'not-tls' }

export function readClientHello(buf: Buffer): HelloResult {
  if (buf.length < 5) return buf.length > 0 && buf[0] !== 0x16 ? NOT_TLS : INCOMPLETE
  // A handshake record, TLS 1.0 to 1.3 on the record layer (3,1 .. 3,4).
  if (buf[0] !== 0x16 || buf[1] !== 3) return NOT_TLS
  const recordLength = buf.readUInt16BE(3)
  if (recordLength > 16 * 1024 || recordLength < 4) return NOT_TLS
  if (buf.length < 5 + recordLength) return INCOMPLETE
  const rec = buf.subarray(5, 5 + recordLength)
  if (rec[0] !== 0x01) return NOT_TLS // ClientHello
  const helloLength = (rec[1] as number) * 65536 + rec.readUInt16BE(2)
  // A ClientHello longer than its record goes on in the next one; its extensions may be there.
  const end = Math.min(rec.length, 4 + helloLength)
  let p = 4 + 2 + 32 // version, random
  if (p >= end) return NOT_TLS
  p += 1 + (rec[p] as number) // session id
  if (p + 2 > end) return NOT_TLS
  p += 2 + rec.readUInt16BE(p) // cipher suites
  if (p + 1 > end) return NOT_TLS
  p += 1 + (rec[p] as number) // compression methods
  if (p + 2 > end) return { kind: 'hello', serverName: undefined, alpn: NONE } // no extensions
  const extEnd = Math.min(end, p + 2 + rec.readUInt16BE(p))
  p += 2
  let serverName: string | undefined
  let alpn: readonly string[] = NONE
  while (p + 4 <= extEnd) {
    const type = rec.readUInt16BE(p)
    const length = rec.readUInt16BE(p + 2)
    p += 4
    if (p + length > extEnd) return NOT_TLS
    if (type === 0) serverName = serverNameOf(rec.subarray(p, p + length))
    else if (type === 16) alpn = protocolsOf(rec.subarray(p, p + length))
    p += length
  }
  return { kind: 'hello', serverName, alpn }
}

const NONE: readonly string[] = []

/** The protocol names of an ALPN extension's body (a 2-byte list length, then 1-byte-length names). */
function protocolsOf(ext: Buffer): string[] {
  const out: string[] = []
  if (ext.length < 2) return out
  const listEnd = Math.min(ext.length, 2 + ext.readUInt16BE(0))
  let p = 2
  while (p < listEnd) {
    const length = ext[p] as number
    p += 1
    if (p + length > listEnd) break
    out.push(ext.toString('latin1', p, p + length))
    p += length
  }
  return out
}

/** The host_name entry of a server_name extension's body. */
function serverNameOf(ext: Buffer): string | undefined {
  if (ext.length < 2) return undefined
  const listEnd = Math.min(ext.length, 2 + ext.readUInt16BE(0))
  let p = 2
  while (p + 3 <= listEnd) {
    const nameType = ext[p] as number
    const length = ext.readUInt16BE(p + 1)
    p += 3
    if (p + length > listEnd) return undefined
    if (nameType === 0) return ext.toString('latin1', p, p + length).toLowerCase()
    p += length
  }
  return undefined
}

/** True when `name` is one of `names`, exactly or by a `*.` wildcard one label deep. */
export function sniMatches(names: readonly string[], name: string): boolean {
  for (const n of names) {
    if (n === name) return true
    if (n.startsWith('*.')) {
      const dot = name.indexOf('.')
      if (dot > 0 && name.slice(dot) === n.slice(1)) return true
    }
  }
  return false
}
