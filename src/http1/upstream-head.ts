/**
 * The head of an upstream HTTP/1.1 request, built in one pass over the exchange's header array
 * (`[name, value, ...]`, already filtered: no hop-by-hop headers). Nothing is added but the framing:
 * - `Host` (the server's `host:port`) only when the array has none (an HTTP/1.0 client's request);
 * - a Buffer body: `content-length` with its length (a Content-Length in the array must agree);
 * - a streamed body: the array's Content-Length, forwarded with the bytes raw, or else
 *   `transfer-encoding: chunked`;
 * - no body: `content-length: 0` for methods that expect one (POST, PUT, PATCH, ...), else nothing.
 * The array's own Content-Length and Connection are consumed (a `Connection: close` in it closes the
 * connection after the request); `Connection: close` itself is added by the caller, which knows
 * whether the connection retires.
 *
 * Validation is undici's (core/request.js), so that both engines refuse the same heads: the method and
 * header names must be tokens, values and the path free of control characters (no CR, LF or NUL: no
 * header can be smuggled in), at most one Host and one Content-Length, and none of Transfer-Encoding,
 * Keep-Alive, Upgrade or Expect, which only the engine may send.
 */
import { SwitchyardError } from '../core/errors.js'
import { putField, putLatin1 } from './latin1.js'

/** What `requestHead` is told about the body. `buffer`: its length in bytes. */
export type BodyShape =
  | { readonly kind: 'none' }
  | { readonly kind: 'buffer'; readonly length: number }
  | { readonly kind: 'stream' }

export interface RequestHead {
  /**
   * The request line and the header lines, each ending in CRLF, in `bytes[0, headBytes)`; after them,
   * room for what `requestBytes` adds (the ending, and a small Buffer body).
   */
  readonly bytes: Buffer
  readonly headBytes: number
  /** A Buffer body of this many bytes goes in `bytes` after the head (0: none, or too large to copy). */
  readonly bodyRoom: number
  /** Body bytes the head announces: -1 for chunked, 0 for none. */
  readonly length: number
  /**
   * The connection must not carry another request after this one: the headers asked for
   * `Connection: close`, or a body went with a method that does not expect one (undici's caution:
   * such a body may leave a server's parser in an unknown state).
   */
  readonly close: boolean
}

/** Largest Buffer body copied into the head's buffer (one write); a larger one is written after it, corked. */
const INLINE_BODY_BYTES = 16 * 1024
const CLOSE_ENDING = 'connection: close\r\n\r\n'

/** RFC 9110 token characters (`tchar`), by char code below 128. */
const TCHAR = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1

function isToken(s: string): boolean {
  if (s.length === 0) return false
  for (let i = 0; i < s.length; i++) if (TCHAR[s.charCodeAt(i)] !== 1) return false
  return true
}

/** A field value holds only HTAB, visible ASCII, SP and obs-text (Node's and undici's check). */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/
/** The request target: visible ASCII and obs-text, no space (undici's check). */
const INVALID_PATH = /[^\u0021-\u00ff]/
const DIGITS = /^\d+$/

/** Methods whose requests carry a body by definition: an empty one is announced as `content-length: 0`. */
function expectsPayload(method: string): boolean {
  return (
    method === 'POST' ||
    method === 'PUT' ||
    method === 'PATCH' ||
    method === 'QUERY' ||
    method === 'PROPFIND' ||
    method === 'PROPPATCH'
  )
}

/** `name` equals `lower` ignoring ASCII case (`lower` holds `a-z` and `-` only, and `name` is a token). */
function is(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

function invalid(what: string): SwitchyardError {
  // undici's InvalidArgumentError classifies as SWY_INTERNAL: not the server's doing.
  return new SwitchyardError('SWY_INTERNAL', `invalid upstream request: ${what}`)
}

/**
 * The head for `method path` with `headers`, or the error that refuses it. `hostHeader` is the
 * server's `host:port`, sent when the array has no Host. The first `checked` entries are known valid
 * (UpstreamRequest.checkedHeaders): their names and values are not checked again; which names may be
 * sent still is.
 */
export function requestHead(
  method: string,
  path: string,
  headers: readonly string[],
  hostHeader: string,
  body: BodyShape,
  checked = 0,
): RequestHead | SwitchyardError {
  if (!isToken(method)) return invalid('method')
  if (path.length === 0 || INVALID_PATH.test(path)) return invalid('path')
  // `METHOD SP path SP HTTP/1.1 CRLF`
  let bytes = method.length + path.length + 12
  let host = false
  let declared = -1
  let close = false
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    const value = headers[i + 1] as string
    if (i >= checked) {
      if (!isToken(name)) return invalid('header name')
      if (INVALID_VALUE.test(value)) return invalid(`${name} header`)
    }
    switch (name.length) {
      case 4:
        if (is(name, 'host')) {
          if (host) return invalid('duplicate host header')
          host = true
        }
        break
      case 6:
        if (is(name, 'expect')) return invalid('expect header')
        break
      case 7:
        if (is(name, 'upgrade')) return invalid('upgrade header')
        break
      case 10:
        if (is(name, 'connection')) {
          for (const token of value.toLowerCase().split(',')) {
            const t = token.trim()
            if (!isToken(t)) return invalid('connection header')
            if (t === 'close') close = true
          }
          continue
        }
        if (is(name, 'keep-alive')) return invalid('keep-alive header')
        break
      case 14:
        if (is(name, 'content-length')) {
          if (declared >= 0) return invalid('duplicate content-length header')
          if (!DIGITS.test(value)) return invalid('content-length header')
          declared = Number(value)
          continue
        }
        break
      case 17:
        if (is(name, 'transfer-encoding')) return invalid('transfer-encoding header')
        break
    }
    bytes += name.length + value.length + 4
  }
  let framing: string
  let length: number
  let bodyRoom = 0
  switch (body.kind) {
    case 'none':
      framing = expectsPayload(method) ? 'content-length: 0\r\n' : ''
      length = 0
      break
    case 'buffer':
      if (declared >= 0 && declared !== body.length)
        return new SwitchyardError(
          'SWY_CLIENT_ABORTED',
          `the request body (${body.length} bytes) does not match its Content-Length (${declared})`,
        )
      framing = `content-length: ${body.length}\r\n`
      length = body.length
      if (body.length <= INLINE_BODY_BYTES) bodyRoom = body.length
      close ||= !expectsPayload(method)
      break
    case 'stream':
      framing = declared >= 0 ? `content-length: ${declared}\r\n` : 'transfer-encoding: chunked\r\n'
      length = declared
      close ||= !expectsPayload(method)
      break
    default: {
      const unknown: never = body
      throw new Error(`unknown body shape ${JSON.stringify(unknown)}`)
    }
  }
  if (!host) bytes += hostHeader.length + 8
  bytes += framing.length
  const out = Buffer.allocUnsafe(bytes + CLOSE_ENDING.length + bodyRoom)
  let p = putLatin1(out, 0, method)
  out[p++] = 0x20
  p = putLatin1(out, p, path)
  p = putLatin1(out, p, ' HTTP/1.1\r\n')
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i] as string
    if ((name.length === 10 && is(name, 'connection')) || (name.length === 14 && is(name, 'content-length'))) continue
    p = putField(out, p, name, headers[i + 1] as string)
  }
  if (!host) p = putField(out, p, 'host', hostHeader)
  putLatin1(out, p, framing)
  return { bytes: out, headBytes: bytes, bodyRoom, length, close }
}

/**
 * The head as it goes on the wire: its lines, `connection: close` when `close`, the empty line, and
 * `body` after them when the head has room for it (`head.bodyRoom` is its length).
 */
export function requestBytes(head: RequestHead, close: boolean, body: Buffer | undefined): Buffer {
  const out = head.bytes
  let p = head.headBytes
  if (close) p = putLatin1(out, p, CLOSE_ENDING)
  else {
    out[p++] = 0x0d
    out[p++] = 0x0a
  }
  if (body !== undefined && head.bodyRoom > 0 && body.length === head.bodyRoom) p += body.copy(out, p)
  return out.subarray(0, p)
}
