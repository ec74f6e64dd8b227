/**
 * The one door to llhttp, the HTTP/1.x parser that node:http itself runs. It is reached through
 * Node's internal `_http_common` module (the binding node:http and its client use), which is not a
 * public API: this module is the only place that touches it, and it checks at start-up that the
 * binding exists and parses a few known messages as expected (`nativeParser()`). If it does not, the
 * engines fall back to node:http and undici, so a future Node can never break a deployment.
 *
 * Strict mode only: no lenient flags, so the parser refuses what node:http refuses (obs-fold, both
 * Content-Length and Transfer-Encoding, duplicate Content-Length, bare LF, ...).
 *
 * Body framing contract: `onHead` answers how the body is read.
 * - `BODY_PARSE` (0): the parser reads it (chunked, close-delimited) and copies each chunk to `onBody`;
 * - `BODY_NONE` (1): there is none (the response to a HEAD request, a 204/304);
 * - `BODY_SELF` (2): the parser stops right after the head, and `execute()` returns the head's length.
 *   The caller frames the body itself (a Content-Length body as slices of the socket's chunks, with no
 *   copy) and calls `reset()` before the next message.
 */
import { createRequire } from 'node:module'

export const BODY_PARSE = 0
export const BODY_NONE = 1
export const BODY_SELF = 2
export type BodyMode = typeof BODY_PARSE | typeof BODY_NONE | typeof BODY_SELF

/** A parsed message head. */
export interface ParsedHead {
  readonly versionMajor: number
  readonly versionMinor: number
  /** `[name, value, ...]` as received. */
  readonly rawHeaders: string[]
  /** Requests: the method ('' for responses). */
  readonly method: string
  /** Requests: the target as sent ('' for responses). */
  readonly url: string
  /** Responses: the status (0 for requests). */
  readonly status: number
  readonly statusText: string
  /** An `Upgrade` (or CONNECT) the peer asked for. */
  readonly upgrade: boolean
  /** The connection may carry another message after this one (HTTP/1.1 without `Connection: close`, ...). */
  readonly keepAlive: boolean
}

export interface ParserEvents {
  /**
   * A message begins: its first byte was read (empty lines before a request are skipped, and begin
   * nothing). Optional; the request side times a head from its first byte, and the upstream side sees
   * bytes a server sent after a complete response.
   */
  onMessageBegin?(): void
  onHead(head: ParsedHead): BodyMode
  /** A body chunk read by the parser (`BODY_PARSE`): a copy, the caller may keep it. */
  onBody(chunk: Buffer): void
  /** The message ended; `trailers` is `[name, value, ...]` (chunked bodies only, else empty). */
  onComplete(trailers: string[]): void
}

/** A parse error: llhttp's code (`HPE_*`) and reason. */
export interface ParseError extends Error {
  readonly code: string
  readonly reason?: string
  readonly bytesParsed?: number
}

interface Binding {
  new (): BindingParser
  readonly REQUEST: number
  readonly RESPONSE: number
  readonly kLenientNone: number
}

interface BindingParser {
  initialize(kind: number, resource: object, maxHeaderSize: number, lenient: number): void
  execute(chunk: Buffer): number | ParseError
  finish(): ParseError | undefined
  close(): void
  free(): void
  [index: number]: unknown
}

// Callback slots of the binding (node's lib/_http_common.js: kOnHeaders = HTTPParser.kOnHeaders, ...).
const K_ON_MESSAGE_BEGIN = 0
const K_ON_HEADERS = 1
const K_ON_HEADERS_COMPLETE = 2
const K_ON_BODY = 3
const K_ON_MESSAGE_COMPLETE = 4

interface Internals {
  readonly HTTPParser: Binding
  readonly methods: readonly string[]
}

let internals: Internals | undefined
let availability: { readonly ok: true } | { readonly ok: false; readonly reason: string } | undefined

function load(): Internals {
  const require = createRequire(import.meta.url)
  const common = require('node:_http_common') as Partial<Internals>
  const HTTPParser = common.HTTPParser
  const methods = common.methods
  if (typeof HTTPParser !== 'function' || !Array.isArray(methods)) throw new Error('_http_common has no HTTPParser')
  for (const k of ['REQUEST', 'RESPONSE', 'kLenientNone', 'kOnHeadersComplete'] as const)
    if (typeof (HTTPParser as unknown as Record<string, unknown>)[k] !== 'number')
      throw new Error(`HTTPParser.${k} is missing`)
  const slots = HTTPParser as unknown as Record<string, number>
  if (
    slots.kOnMessageBegin !== K_ON_MESSAGE_BEGIN ||
    slots.kOnHeaders !== K_ON_HEADERS ||
    slots.kOnHeadersComplete !== K_ON_HEADERS_COMPLETE ||
    slots.kOnBody !== K_ON_BODY ||
    slots.kOnMessageComplete !== K_ON_MESSAGE_COMPLETE
  )
    throw new Error('HTTPParser callback slots moved')
  return { HTTPParser, methods }
}

const NO_RESOURCE = {}

/** One llhttp parser for the messages of one connection (requests or responses). */
export class Http1Parser {
  readonly #kind: number
  readonly #maxHeaderBytes: number
  readonly #parser: BindingParser
  readonly #methods: readonly string[]
  readonly #events: ParserEvents
  /** Header (or trailer) fields delivered in pieces (more than llhttp's 32 per callback). */
  #pending: string[] = []
  #pendingUrl = ''

  /** `maxHeaderBytes`: the largest head accepted (HPE_HEADER_OVERFLOW beyond); 0: Node's default (16 KiB). */
  constructor(kind: 'request' | 'response', events: ParserEvents, maxHeaderBytes = 0) {
    const { HTTPParser, methods } = internals ?? load()
    internals ??= { HTTPParser, methods }
    this.#kind = kind === 'request' ? HTTPParser.REQUEST : HTTPParser.RESPONSE
    this.#maxHeaderBytes = maxHeaderBytes
    this.#methods = methods
    this.#events = events
    const parser = new HTTPParser()
    this.#parser = parser
    const onBegin = events.onMessageBegin
    if (onBegin !== undefined) parser[K_ON_MESSAGE_BEGIN] = () => onBegin.call(events)
    parser[K_ON_HEADERS] = (headers: string[], url: string) => {
      for (const h of headers) this.#pending.push(h)
      this.#pendingUrl += url
    }
    parser[K_ON_HEADERS_COMPLETE] = (
      versionMajor: number,
      versionMinor: number,
      headers: string[] | undefined,
      method: number | undefined,
      url: string | undefined,
      status: number | undefined,
      statusText: string | undefined,
      upgrade: boolean,
      keepAlive: boolean,
    ): BodyMode => {
      let rawHeaders = headers
      let target = url
      if (rawHeaders === undefined) {
        rawHeaders = this.#pending
        target = this.#pendingUrl
        this.#pending = []
        this.#pendingUrl = ''
      }
      return this.#events.onHead({
        versionMajor,
        versionMinor,
        rawHeaders,
        method: method === undefined ? '' : (this.#methods[method] ?? ''),
        url: target ?? '',
        status: status ?? 0,
        statusText: statusText ?? '',
        upgrade,
        keepAlive,
      })
    }
    parser[K_ON_BODY] = (chunk: Buffer) => this.#events.onBody(chunk)
    parser[K_ON_MESSAGE_COMPLETE] = () => {
      const trailers = this.#pending
      this.#pending = []
      this.#pendingUrl = ''
      this.#events.onComplete(trailers)
    }
    this.reset()
  }

  /** Makes the parser ready for a new message (after a `BODY_SELF` head, or to start over). */
  reset(): void {
    this.#pending = []
    this.#pendingUrl = ''
    this.#parser.initialize(this.#kind, NO_RESOURCE, this.#maxHeaderBytes, 0)
  }

  /**
   * Parses `chunk`: the bytes it consumed (all of them, or a `BODY_SELF` head's end), or the parse
   * error. Callbacks run synchronously inside.
   */
  execute(chunk: Buffer): number | ParseError {
    return this.#parser.execute(chunk)
  }

  /** The peer closed: ends a close-delimited body (`onComplete`), or the error of a message cut short. */
  finish(): ParseError | undefined {
    return this.#parser.finish()
  }

  /** Frees the native parser; the object must not be used again. */
  close(): void {
    this.#parser.close()
  }
}

/** The parser `requestBodyFraming` runs heads through, made on first use, and what it saw. */
let framingParser: Http1Parser | undefined
let framingComplete = false

/**
 * How llhttp itself frames the body of a request head that has a Transfer-Encoding field, as node:http's
 * parser does: a `BODY_SELF` head skips the check llhttp makes at the head's end (the field's last
 * coding must be chunked), so the native engine asks it here, of the head's bytes as received (node's
 * binding trims the values it hands over, so `chunked\t` looks like `chunked`). The answer: `chunked`;
 * `none` (llhttp did not take the field for a framing one: an empty value); or llhttp's error code
 * (`HPE_INVALID_TRANSFER_ENCODING`). `head`: the head's bytes, in order, from its first byte to the
 * empty line that ends it. Runs one parser for the process, synchronously.
 */
export function requestBodyFraming(head: readonly Buffer[]): 'chunked' | 'none' | string {
  framingParser ??= new Http1Parser('request', {
    onHead: () => BODY_PARSE,
    onBody() {},
    onComplete() {
      framingComplete = true
    },
  })
  const parser = framingParser
  parser.reset()
  framingComplete = false
  for (const piece of head) {
    const result = parser.execute(piece)
    if (typeof result !== 'number') return result.code
  }
  return framingComplete ? 'none' : 'chunked'
}

/** A message and what the parser must make of it; the self-test below runs them at start-up. */
interface Probe {
  readonly kind: 'request' | 'response'
  readonly text: string
  readonly mode: BodyMode
  /** The expected trace, or the expected error code. */
  readonly expect: string
  /** Trace `onMessageBegin` too. */
  readonly begins?: true
}

const PROBES: readonly Probe[] = [
  {
    kind: 'request',
    text: 'GET /a?b HTTP/1.1\r\nHost: x\r\nX-Two: 2\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'head GET /a?b 1.1 ka Host,x,X-Two,2|end',
  },
  {
    kind: 'request',
    text: 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc',
    mode: BODY_SELF,
    expect: 'head POST / 1.1 ka Host,x,Content-Length,3|end|@47',
  },
  {
    kind: 'request',
    text: 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nT: 1\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'head POST / 1.0 close Transfer-Encoding,chunked|body abc|end T,1',
  },
  {
    kind: 'request',
    text: 'POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'error HPE_INVALID_TRANSFER_ENCODING',
  },
  {
    kind: 'request',
    text: 'GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'error HPE_INVALID_HEADER_TOKEN',
  },
  {
    kind: 'response',
    text: 'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi',
    mode: BODY_PARSE,
    expect: 'head 100 Continue 1.1 ka |end|head 200 OK 1.1 ka Content-Length,2|body hi|end',
  },
  {
    // The client side does not check again the fields llhttp read from a server (response.ts headOf):
    // llhttp must refuse what node:http's check refuses, such as a DEL in a value.
    kind: 'response',
    text: 'HTTP/1.1 200 OK\r\nA: b\x7fc\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'error HPE_INVALID_HEADER_TOKEN',
  },
  {
    // ... and a name that is not a token.
    kind: 'response',
    text: 'HTTP/1.1 200 OK\r\nA b: c\r\n\r\n',
    mode: BODY_PARSE,
    expect: 'error HPE_INVALID_HEADER_TOKEN',
  },
  {
    // The upstream engine's view of bytes after a complete response: the next message begins.
    kind: 'response',
    text: 'HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 2',
    mode: BODY_NONE,
    expect: 'begin|head 204 No Content 1.1 ka |end|begin',
    begins: true,
  },
]

function trace(probe: Probe): string {
  const out: string[] = []
  const parser = new Http1Parser(probe.kind, {
    ...(probe.begins ? { onMessageBegin: () => out.push('begin') } : {}),
    onHead(h) {
      const start = probe.kind === 'request' ? `${h.method} ${h.url}` : `${h.status} ${h.statusText}`
      out.push(
        `head ${start} ${h.versionMajor}.${h.versionMinor} ${h.keepAlive ? 'ka' : 'close'} ${h.rawHeaders.join()}`,
      )
      return probe.mode
    },
    onBody(chunk) {
      out.push(`body ${chunk.toString('latin1')}`)
    },
    onComplete(trailers) {
      out.push(trailers.length > 0 ? `end ${trailers.join()}` : 'end')
    },
  })
  try {
    const result = parser.execute(Buffer.from(probe.text, 'latin1'))
    if (typeof result !== 'number') return `error ${result.code}`
    if (result !== probe.text.length) out.push(`@${result}`)
    return out.join('|')
  } finally {
    parser.close()
  }
}

/**
 * Whether the private binding is there and parses the known messages as expected. Checked once; a
 * failure gives the reason, and the engines fall back to node:http and undici.
 */
export function nativeParser(): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  if (availability !== undefined) return availability
  try {
    for (const probe of PROBES) {
      const got = trace(probe)
      if (got !== probe.expect) throw new Error(`self-test: expected "${probe.expect}", got "${got}"`)
    }
    availability = { ok: true }
  } catch (err) {
    availability = { ok: false, reason: (err as Error).message }
  }
  return availability
}

/** Tests only: forget the cached self-test result, optionally forcing one. */
export function resetNativeParserCheck(force?: { readonly ok: false; readonly reason: string }): void {
  availability = force
}
