/** HTTP/2 frames written by hand (RFC 9113 §4.1), for tests that play a peer node:http2 would not be. */

/** One frame: the 9-byte header (length, type, flags, stream id), then the payload. */
export function h2Frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(streamId, 5)
  return Buffer.concat([head, payload])
}

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
export const DATA = 0x0
export const HEADERS = 0x1
export const RST_STREAM = 0x3
export const SETTINGS = 0x4
export const PING = 0x6
export const GOAWAY = 0x7
export const END_STREAM = 0x1
export const END_HEADERS = 0x4
export const PADDED = 0x8
export const ACK = 0x1

/** HPACK "literal with incremental indexing, indexed name" (RFC 7541 §6.2.1), no Huffman; short values only. */
export function literal(nameIndex: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'latin1')
  if (bytes.length >= 127) throw new Error('literal: a short value only')
  return Buffer.concat([Buffer.from([0x40 | nameIndex, bytes.length]), bytes])
}
