/**
 * HTTP/1.1 response heads as the native engine writes them (client side): the status line, the
 * caller's headers as given, `Date` (node:http sends one; cached per second, as it does), and the
 * framing and connection headers, which depend on the request and on how the body turns out.
 *
 * A head is checked and serialized in two steps: `headOf` when the caller writes it (it throws on an
 * invalid status, name or value before anything is written, like node:http's ERR_HTTP_INVALID_STATUS_CODE,
 * ERR_INVALID_HTTP_TOKEN and ERR_INVALID_CHAR), and `finishHead` when the first body bytes or the end
 * come, so that a body known whole at that point gets a Content-Length rather than chunked framing.
 */
import { STATUS_CODES } from 'node:http'
import { putField, putLatin1 } from './latin1.js'

/** How a response body goes on the wire. */
export type Framing =
  /** Not decided yet: the head is held until the first body bytes or the end. */
  | 'pending'
  /** No body may follow: a response to HEAD, a 1xx, 204 or 304. Body bytes given are dropped. */
  | 'none'
  /** Exactly Content-Length bytes. */
  | 'length'
  /** `Transfer-Encoding: chunked` (HTTP/1.1 clients), trailers allowed. */
  | 'chunked'
  /** Delimited by closing the connection (an HTTP/1.0 client and no Content-Length). */
  | 'close'

/**
 * A response head as given, checked; the framing and connection headers are added by `finishHead`,
 * which writes the whole head into one buffer (no string is built for it).
 */
export interface GivenHead {
  readonly status: number
  /** The reason phrase: the given one, or the standard one. */
  readonly phrase: string
  /** The given headers, `[name, value, ...]`, not copied: the caller leaves the array alone until the head is written. */
  readonly headers: readonly string[]
  /** `Date: …\r\n` when none was given (made when the head was given), else ''. */
  readonly date: string
  /** A given Transfer-Encoding, left out of the head. */
  readonly dropsTransferEncoding: boolean
  /** Bytes of the status line, the given header lines (a Transfer-Encoding left out) and `date`. */
  readonly bytes: number
  /** The given Content-Length; -1 without one. */
  readonly contentLength: number
  /** A given Connection header names `close`. */
  readonly connectionClose: boolean
  /** A Connection header was given (then none is added, except `close` when the connection must close). */
  readonly connectionGiven: boolean
}

/** A header check failed: node:http's codes, so that callers see the same errors on either engine. */
export class InvalidHeaderError extends TypeError {
  readonly code: 'ERR_INVALID_HTTP_TOKEN' | 'ERR_INVALID_CHAR' | 'ERR_HTTP_INVALID_STATUS_CODE'

  constructor(code: InvalidHeaderError['code'], message: string) {
    super(message)
    this.code = code
    this.name = 'TypeError'
  }
}

/** RFC 9110 §5.6.2 token characters, by char code below 128. */
const TOKEN = new Uint8Array(128)
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
  TOKEN[c.charCodeAt(0)] = 1

export function isToken(name: string): boolean {
  if (name.length === 0) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    if (c > 127 || TOKEN[c] === 0) return false
  }
  return true
}

/** What node:http refuses in a header value (and a reason phrase): controls but HTAB, DEL, above 0xff. */
const INVALID_VALUE = /[^\t\x20-\x7e\x80-\xff]/

export function isValidValue(value: string): boolean {
  return !INVALID_VALUE.test(value)
}

/** True when `name` equals `lower` (a-z and -) ignoring ASCII case; the lengths must be equal. */
function equalsLower(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

let dateSecond = -1
let dateLine = ''

/** `Date: <IMF-fixdate>\r\n`, made at most once per second. */
function dateHeader(): string {
  const now = Date.now()
  const second = Math.floor(now / 1000)
  if (second !== dateSecond) {
    dateSecond = second
    dateLine = `Date: ${new Date(now).toUTCString()}\r\n`
  }
  return dateLine
}

/**
 * Checks and serializes a head: `reason` or the standard phrase, `headers` as `[name, value, ...]`.
 * Throws InvalidHeaderError; a given Transfer-Encoding is dropped (the engine frames the body itself).
 * The first `checked` entries are known valid (strict llhttp read them) and are not checked again.
 */
export function headOf(status: number, reason: string | undefined, headers: readonly string[], checked = 0): GivenHead {
  if (!Number.isInteger(status) || status < 100 || status > 999)
    throw new InvalidHeaderError('ERR_HTTP_INVALID_STATUS_CODE', `Invalid status code: ${status}`)
  const phrase = reason ?? STATUS_CODES[status] ?? 'unknown'
  if (!isValidValue(phrase)) throw new InvalidHeaderError('ERR_INVALID_CHAR', 'Invalid character in statusMessage')
  // `HTTP/1.1 ` + 3 digits + SP + phrase + CRLF
  let bytes = 15 + phrase.length
  let contentLength = -1
  let connectionClose = false
  let connectionGiven = false
  let dropsTransferEncoding = false
  let dated = false
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string
    const value = headers[i + 1] as string
    if (i >= checked) {
      if (!isToken(name))
        throw new InvalidHeaderError('ERR_INVALID_HTTP_TOKEN', `Header name must be a valid HTTP token ["${name}"]`)
      if (!isValidValue(value))
        throw new InvalidHeaderError('ERR_INVALID_CHAR', `Invalid character in header content ["${name}"]`)
    }
    switch (name.length) {
      case 4:
        if (equalsLower(name, 'date')) dated = true
        break
      case 10:
        if (equalsLower(name, 'connection')) {
          connectionGiven = true
          if (/(?:^|,)\s*close\s*(?:,|$)/i.test(value)) connectionClose = true
        }
        break
      case 14:
        if (equalsLower(name, 'content-length')) {
          const n = /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN
          if (Number.isNaN(n) || (contentLength >= 0 && n !== contentLength))
            throw new InvalidHeaderError('ERR_INVALID_CHAR', `Invalid Content-Length ["${value}"]`)
          contentLength = n
        }
        break
      case 17:
        if (equalsLower(name, 'transfer-encoding')) {
          dropsTransferEncoding = true
          continue
        }
        break
    }
    bytes += name.length + value.length + 4
  }
  const date = dated ? '' : dateHeader()
  bytes += date.length
  return {
    status,
    phrase,
    headers,
    date,
    dropsTransferEncoding,
    bytes,
    contentLength,
    connectionClose,
    connectionGiven,
  }
}

/** Statuses whose responses never have a body (RFC 9110 §6.4.1, §15.3.5, §15.4.5). */
export function bodiless(status: number, headRequest: boolean): boolean {
  return headRequest || status < 200 || status === 204 || status === 304
}

/** What the head's end depends on. */
export interface HeadEnd {
  readonly framing: Exclude<Framing, 'pending'>
  /** For 'length': the body length announced. */
  readonly length: number
  /** The connection closes after this response. */
  readonly last: boolean
  /** The whole head, ending with the empty line, in latin1. */
  readonly head: Buffer
}

/**
 * Ends a head: the framing (`wholeBody`: the body's length when it is known whole, else -1), the
 * Connection header, the `Keep-Alive` hint (`keepAliveHint`: `timeout=N`, or '' for none), and writes
 * it whole into a new buffer. `mustClose`: the connection closes after this response whatever the
 * head says.
 */
export function finishHead(
  head: GivenHead,
  req: { readonly headRequest: boolean; readonly http10: boolean },
  wholeBody: number,
  trailers: boolean,
  mustClose: boolean,
  keepAliveHint: string,
): HeadEnd {
  let tail = ''
  let framing: HeadEnd['framing']
  let length = 0
  if (bodiless(head.status, req.headRequest)) framing = 'none'
  else if (head.contentLength >= 0) {
    framing = 'length'
    length = head.contentLength
  } else if (wholeBody >= 0 && !(trailers && !req.http10)) {
    framing = 'length'
    length = wholeBody
    tail = `Content-Length: ${wholeBody}\r\n`
  } else if (req.http10) framing = 'close'
  else {
    framing = 'chunked'
    tail = 'Transfer-Encoding: chunked\r\n'
  }
  const last = mustClose || head.connectionClose || framing === 'close'
  if (!head.connectionGiven) {
    if (last) tail += 'Connection: close\r\n\r\n'
    else
      tail +=
        keepAliveHint === ''
          ? 'Connection: keep-alive\r\n\r\n'
          : `Connection: keep-alive\r\nKeep-Alive: ${keepAliveHint}\r\n\r\n`
  } else tail += last && !head.connectionClose ? 'Connection: close\r\n\r\n' : '\r\n'
  return { framing, length, last, head: encodeHead(head, tail) }
}

/** A `101 Switching Protocols` head: the given headers as they are, with no framing or connection header added. */
export function switchingHead(head: GivenHead): Buffer {
  return encodeHead(head, '\r\n')
}

/** The status line, the given headers, Date and `tail` (the head's last lines and its empty line), in one buffer. */
function encodeHead(head: GivenHead, tail: string): Buffer {
  const buf = Buffer.allocUnsafe(head.bytes + tail.length)
  let p = putLatin1(buf, 0, 'HTTP/1.1 ')
  const status = head.status
  buf[p++] = 0x30 + Math.floor(status / 100)
  buf[p++] = 0x30 + (Math.floor(status / 10) % 10)
  buf[p++] = 0x30 + (status % 10)
  buf[p++] = 0x20
  p = putLatin1(buf, p, head.phrase)
  buf[p++] = 0x0d
  buf[p++] = 0x0a
  const headers = head.headers
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i] as string
    if (head.dropsTransferEncoding && name.length === 17 && equalsLower(name, 'transfer-encoding')) continue
    p = putField(buf, p, name, headers[i + 1] as string)
  }
  p = putLatin1(buf, p, head.date)
  putLatin1(buf, p, tail)
  return buf
}

/** The last chunk and the trailer section of a chunked body; invalid trailer fields are left out. */
export function lastChunk(trailers: readonly (readonly [string, string])[] | undefined): string {
  if (trailers === undefined || trailers.length === 0) return '0\r\n\r\n'
  let text = '0\r\n'
  for (const [name, value] of trailers) if (isToken(name) && isValidValue(value)) text += `${name}: ${value}\r\n`
  return `${text}\r\n`
}

export const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n'
