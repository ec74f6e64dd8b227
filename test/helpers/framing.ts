/**
 * A strict, tiny HTTP/1.1 framing reader of our own (RFC 9112), independent of llhttp and node:http,
 * for the smuggling tests: it tells how a byte stream splits into requests (or responses) and what
 * each one's body is. It is the reference the raw-socket backend parses what Switchyard forwards with,
 * and what the client's own bytes are measured against ("the body the client framed").
 *
 * Strict where the framing would be ambiguous, permissive where RFC 9112 leaves no doubt:
 * - lines end in CRLF only: a bare LF or a bare CR anywhere in a head is an error;
 * - no obs-fold, no whitespace between a field name and its colon, names are tokens, values hold no
 *   NUL (RFC 9110 §5.5 lets a recipient keep other control characters);
 * - Transfer-Encoding wins only alone: with Content-Length it is an error, and its last coding must be
 *   `chunked` (once). Content-Length is digits; repeated (in lines or a list) only with identical values;
 * - CR and LF bytes before a request line are skipped (RFC 9112 §2.2 asks for at least one empty line),
 *   its parts may be split by more than one SP (§3); HTTP/1.x with x > 1 reads as 1.1, and HTTP/0.x
 *   (a version llhttp reads like 1.0, with fields and a body) as 1.0. A request line without a version
 *   (an HTTP/0.9 simple request, which has neither fields nor a body) is an error.
 *
 * Bytes are handled as latin1 throughout, so that every byte maps to one character and back.
 */

export interface Head {
  /** Requests: the method; responses: ''. */
  readonly method: string
  /** Requests: the request target as sent; responses: ''. */
  readonly target: string
  /** Responses: the status; requests: 0. */
  readonly status: number
  /** `1.0` or `1.1` (a higher 1.x minor version reads as 1.1). */
  readonly version: '1.0' | '1.1'
  /** `[name, value]` as received, values without their surrounding whitespace. */
  readonly headers: readonly (readonly [string, string])[]
}

export interface Message extends Head {
  readonly body: Buffer
  /** How the body was delimited. */
  readonly framing: 'none' | 'length' | 'chunked' | 'close'
  /** Chunked bodies: the trailer fields. */
  readonly trailers: readonly (readonly [string, string])[]
  /** The connection may carry another message after this one (HTTP/1.1 without `Connection: close`, ...). */
  readonly keepAlive: boolean
  /** Bytes of the stream the message took, from its first byte (or skipped empty line) to its last. */
  readonly length: number
}

/** Where a read stopped before a whole message: the head, if it was complete, and the body so far. */
export interface Cut {
  readonly head: Head | undefined
  readonly bodySoFar: Buffer
}

export type ReadResult =
  | { readonly kind: 'message'; readonly message: Message }
  | ({ readonly kind: 'incomplete' } & Cut)
  | ({ readonly kind: 'error'; readonly reason: string } & Cut)

const CR = 13
const LF = 10
const SP = 32
const HTAB = 9
/** tchar (RFC 9110 §5.6.2). */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
/** request-target characters: visible ASCII (no SP, no controls, no obs-text). */
const TARGET = /^[\x21-\x7e]+$/
const DIGITS = /^[0-9]+$/
const HEX = /^[0-9A-Fa-f]+$/
/**
 * chunk-ext (RFC 9112 §7.1.1): after optional whitespace, `;` and then anything but control characters.
 * Extensions never decide where a chunk ends, so their inner syntax (empty names, `;;`) is not held
 * against them; a line end inside one is (the line reader refuses a bare CR or LF).
 */
function validExtension(ext: string): boolean {
  if (ext === '') return true
  if (!/^[ \t]*;/.test(ext)) return false
  for (let i = 0; i < ext.length; i++) {
    const c = ext.charCodeAt(i)
    if ((c < 0x20 && c !== HTAB) || c === 0x7f) return false
  }
  return true
}
/** Longest Content-Length or chunk size believed (2^53 - 1); a larger one is an error. */
const MAX_LENGTH = Number.MAX_SAFE_INTEGER

type Line = { readonly kind: 'line'; readonly text: string; readonly next: number } | { readonly kind: 'incomplete' }

/** The line starting at `at`: its text without CRLF, or an error for a bare CR or LF, or incomplete. */
function lineAt(buf: Buffer, at: number): Line | { readonly kind: 'error'; readonly reason: string } {
  for (let i = at; i < buf.length; i++) {
    const c = buf[i]
    if (c === LF) return { kind: 'error', reason: 'bare LF' }
    if (c === CR) {
      if (i + 1 >= buf.length) return { kind: 'incomplete' }
      if (buf[i + 1] !== LF) return { kind: 'error', reason: 'bare CR' }
      return { kind: 'line', text: buf.toString('latin1', at, i), next: i + 2 }
    }
  }
  return { kind: 'incomplete' }
}

class Stop {
  constructor(
    readonly kind: 'incomplete' | 'error',
    readonly reason: string,
  ) {}
}

/** Reads lines from `at`, throwing a Stop for an incomplete or broken one. */
class Lines {
  constructor(
    readonly buf: Buffer,
    public at: number,
  ) {}

  next(): string {
    const line = lineAt(this.buf, this.at)
    if (line.kind === 'incomplete') throw new Stop('incomplete', '')
    if (line.kind === 'error') throw new Stop('error', line.reason)
    this.at = line.next
    return line.text
  }

  /** Field lines up to the empty line (which is consumed). */
  fields(what: string): [string, string][] {
    const out: [string, string][] = []
    for (;;) {
      const line = this.next()
      if (line === '') return out
      const first = line.charCodeAt(0)
      if (first === SP || first === HTAB) throw new Stop('error', `obs-fold in ${what}`)
      const colon = line.indexOf(':')
      if (colon < 0) throw new Stop('error', `${what} line without a colon`)
      const name = line.slice(0, colon)
      if (!TOKEN.test(name)) throw new Stop('error', `${what} name is not a token: ${JSON.stringify(name)}`)
      const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, '')
      // Anything but NUL: CR and LF ended the line before this.
      if (value.includes('\u0000')) throw new Stop('error', `${what} ${name} has a NUL`)
      out.push([name, value])
    }
  }
}

function values(headers: readonly (readonly [string, string])[], name: string): string[] {
  return headers.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v)
}

/** The elements of a comma-separated list header (empty elements dropped, RFC 9110 §5.6.1). */
function listOf(vs: readonly string[]): string[] {
  return vs.flatMap((v) => v.split(',').map((e) => e.trim())).filter((e) => e !== '')
}

type Framing = { readonly kind: 'none' | 'chunked' | 'close' } | { readonly kind: 'length'; readonly length: number }

/** The body framing of a head (RFC 9112 §6.3), or a Stop when it is ambiguous. */
function framingOf(head: Head, requestMethod: string | undefined): Framing {
  if (head.status !== 0) {
    if (
      requestMethod === 'HEAD' ||
      (head.status >= 100 && head.status < 200) ||
      head.status === 204 ||
      head.status === 304
    )
      return { kind: 'none' }
  }
  const te = values(head.headers, 'transfer-encoding')
  const cl = values(head.headers, 'content-length')
  if (te.length > 0) {
    if (cl.length > 0) throw new Stop('error', 'both Transfer-Encoding and Content-Length')
    const codings = listOf(te).map((c) => c.toLowerCase())
    for (const c of codings)
      if (!TOKEN.test(c.split(';')[0]?.trim() ?? '')) throw new Stop('error', 'a transfer coding is not a token')
    if (codings.at(-1) !== 'chunked') {
      // A response ends at the close instead; a request cannot be framed (RFC 9112 §6.3 (4)).
      if (head.status !== 0) return { kind: 'close' }
      throw new Stop('error', 'chunked is not the final transfer coding')
    }
    if (codings.filter((c) => c === 'chunked').length > 1) throw new Stop('error', 'chunked applied twice')
    return { kind: 'chunked' }
  }
  if (cl.length > 0) {
    const all = listOf(cl)
    const first = all[0]
    if (first === undefined || !DIGITS.test(first)) throw new Stop('error', 'Content-Length is not digits')
    if (all.some((v) => v !== first)) throw new Stop('error', 'differing Content-Length values')
    const length = Number(first)
    if (length > MAX_LENGTH) throw new Stop('error', 'Content-Length too large')
    return { kind: 'length', length }
  }
  return head.status !== 0 ? { kind: 'close' } : { kind: 'none' }
}

function keepAliveOf(head: Head): boolean {
  const tokens = listOf(values(head.headers, 'connection')).map((t) => t.toLowerCase())
  if (tokens.includes('close')) return false
  return head.version === '1.1' || tokens.includes('keep-alive')
}

function versionOf(text: string): '1.0' | '1.1' {
  const m = /^HTTP\/([0-9])\.([0-9])$/.exec(text)
  if (m?.[1] === '0') return '1.0'
  if (m?.[1] !== '1') throw new Stop('error', `unsupported version ${JSON.stringify(text)}`)
  return m[2] === '0' ? '1.0' : '1.1'
}

function requestLine(line: string): Pick<Head, 'method' | 'target' | 'version'> {
  const parts = line.split(/ +/)
  if (parts.length === 2) throw new Stop('error', 'request line without a version')
  const [method, target, version] = parts
  if (parts.length !== 3 || method === undefined || target === undefined || version === undefined)
    throw new Stop('error', 'request line is not three parts split by spaces')
  if (!TOKEN.test(method)) throw new Stop('error', 'method is not a token')
  if (!TARGET.test(target)) throw new Stop('error', 'bad request-target character')
  return { method, target, version: versionOf(version) }
}

function statusLine(line: string): Pick<Head, 'status' | 'version'> {
  const m = /^(HTTP\/[0-9]\.[0-9]) ([0-9]{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/.exec(line)
  if (!m) throw new Stop('error', 'bad status line')
  return { version: versionOf(m[1] ?? ''), status: Number(m[2]) }
}

/**
 * Reads one message starting at `offset`. Requests: `requestMethod` undefined. Responses: the method
 * of the request it answers (a response to HEAD has no body). `closed`: the peer closed after `buf`, so
 * a close-delimited body ends with it.
 */
export function readMessage(
  buf: Buffer,
  offset = 0,
  kind: 'request' | 'response' = 'request',
  requestMethod?: string,
  closed = false,
): ReadResult {
  let start = offset
  // RFC 9112 §2.2: a server SHOULD ignore at least one empty line before the request line.
  if (kind === 'request') while (buf[start] === CR || buf[start] === LF) start++
  const lines = new Lines(buf, start)
  let head: Head | undefined
  const body: Buffer[] = []
  const cut = (): Cut => ({ head, bodySoFar: Buffer.concat(body) })
  try {
    const first = lines.next()
    const startLine = kind === 'request' ? requestLine(first) : statusLine(first)
    const fields = lines.fields('header')
    head = {
      method: '',
      target: '',
      status: 0,
      ...startLine,
      headers: fields,
    }
    const framing = framingOf(head, kind === 'response' ? (requestMethod ?? 'GET') : undefined)
    let trailers: [string, string][] = []
    let end = lines.at
    switch (framing.kind) {
      case 'none':
        break
      case 'length': {
        const have = Math.min(framing.length, buf.length - end)
        body.push(buf.subarray(end, end + have))
        if (have < framing.length) throw new Stop('incomplete', '')
        end += framing.length
        break
      }
      case 'close':
        body.push(buf.subarray(end))
        if (!closed) throw new Stop('incomplete', '')
        end = buf.length
        break
      case 'chunked': {
        for (;;) {
          const sizeLine = lines.next()
          const semi = sizeLine.search(/[ \t;]/)
          const hex = semi < 0 ? sizeLine : sizeLine.slice(0, semi)
          const ext = semi < 0 ? '' : sizeLine.slice(semi)
          if (!HEX.test(hex)) throw new Stop('error', `bad chunk size ${JSON.stringify(hex)}`)
          if (!validExtension(ext)) throw new Stop('error', `bad chunk extension ${JSON.stringify(ext)}`)
          const size = Number.parseInt(hex, 16)
          if (size > MAX_LENGTH) throw new Stop('error', 'chunk size too large')
          if (size === 0) {
            trailers = lines.fields('trailer')
            break
          }
          const at = lines.at
          const have = Math.min(size, buf.length - at)
          body.push(buf.subarray(at, at + have))
          if (have < size) throw new Stop('incomplete', '')
          if (buf.length < at + size + 2) throw new Stop('incomplete', '')
          if (buf[at + size] !== CR || buf[at + size + 1] !== LF)
            throw new Stop('error', 'chunk data not followed by CRLF')
          lines.at = at + size + 2
        }
        end = lines.at
        break
      }
      default: {
        const unknown: never = framing
        throw new Error(`unknown framing ${JSON.stringify(unknown)}`)
      }
    }
    const message: Message = {
      ...head,
      body: Buffer.concat(body),
      framing: framing.kind,
      trailers,
      keepAlive: keepAliveOf(head),
      length: end - offset,
    }
    return { kind: 'message', message }
  } catch (err) {
    if (!(err instanceof Stop)) throw err
    return err.kind === 'incomplete'
      ? { kind: 'incomplete', ...cut() }
      : { kind: 'error', reason: err.reason, ...cut() }
  }
}

/** How a stream of requests ends after its last whole message. */
export type Tail =
  | { readonly kind: 'clean' }
  /** The last message said the connection ends (`Connection: close`, HTTP/1.0, CONNECT); `ignored` bytes followed. */
  | { readonly kind: 'closed'; readonly ignored: number }
  | ({ readonly kind: 'incomplete' } & Cut)
  | ({ readonly kind: 'error'; readonly reason: string } & Cut)

export interface Requests {
  readonly messages: readonly Message[]
  readonly tail: Tail
}

/**
 * Splits a client's bytes into the requests a strict server would read: every whole request up to the
 * first one that cannot be framed, that is cut short, or after which the connection would end.
 */
export function readRequests(buf: Buffer): Requests {
  const messages: Message[] = []
  let at = 0
  while (at < buf.length) {
    const r = readMessage(buf, at)
    if (r.kind !== 'message') return { messages, tail: r }
    messages.push(r.message)
    at += r.message.length
    // An Upgrade the server declines leaves the connection in HTTP/1.1 (RFC 9110 §7.8); a CONNECT
    // makes it a tunnel.
    const m = r.message
    if (!m.keepAlive || m.method === 'CONNECT') return { messages, tail: { kind: 'closed', ignored: buf.length - at } }
  }
  return { messages, tail: { kind: 'clean' } }
}

/**
 * The origin-form a proxy sends for `target`: an http(s) absolute-form target as a WHATWG URL reads
 * it (path and query; Switchyard's request path does the same), anything else as it is.
 */
export function originForm(target: string): string {
  if (!/^https?:\/\//i.test(target)) return target
  try {
    const u = new URL(target)
    return `${u.pathname}${u.search}`
  } catch {
    return target
  }
}

/**
 * Where the message after the whole ones starts in `buf` (past the CR and LF bytes a server skips),
 * and its first line up to the first LF: for telling apart what broke it.
 */
export function tailLine(buf: Buffer, ref: Requests): string {
  let at = ref.messages.reduce((n, m) => n + m.length, 0)
  while (buf[at] === CR || buf[at] === LF) at++
  const lf = buf.indexOf(LF, at)
  return buf.toString('latin1', at, lf < 0 ? buf.length : lf).replace(/\r$/, '')
}

/** `[name, value]` pairs of a head, for messages and reports. */
export function headerValue(head: Head, name: string): string | undefined {
  return values(head.headers, name.toLowerCase())[0]
}
