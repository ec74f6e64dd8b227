/**
 * Header rewriting between client and upstream, on raw header arrays (no header objects are built).
 * - Hop-by-hop headers (RFC 9110 §7.6.1) are removed both ways: Connection and every header it names,
 *   Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and all Proxy-* headers.
 * - Upstream requests get X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded. From a trusted proxy the
 *   incoming values are kept and appended to; from anyone else they are replaced.
 * - The request id header is set to the id chosen for the request.
 *
 * Raw header arrays are flat [name, value, ...] pairs, as Node and llhttp give them (an even length),
 * so `raw[i]` and `raw[i + 1]` are read as present for every even `i` below the length.
 */
import { BlockList, isIP, isIPv6 } from 'node:net'

// Header name kinds, told apart without lower-casing: by length first, then a case-insensitive compare.
const PASS = 0
const HOP = 1
const CONNECTION = 2
const TRANSFER_ENCODING = 3
const CONTENT_LENGTH = 4
const HOST = 5
const EXPECT = 6
const XFF = 7
const XFP = 8
const XFH = 9
const FORWARDED = 10
const UPGRADE = 11

/**
 * True when `name` equals `lower` ignoring ASCII case. `lower` must hold only `a-z` and `-`: a token
 * character can then only match its own letter in either case (RFC 9110 tokens hold no CR).
 */
function equalsLower(name: string, lower: string): boolean {
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

/** Hop-by-hop headers (RFC 9110 §7.6.1), Proxy-*, and the headers a proxy handles itself. */
function headerKind(name: string): number {
  // HTTP/2 pseudo-headers: :authority stands for Host (RFC 9113 §8.3.1); the others are the request line.
  if (name.charCodeAt(0) === 58 /* : */) return name === ':authority' ? HOST : HOP
  switch (name.length) {
    case 2:
      if (equalsLower(name, 'te')) return HOP
      break
    case 4:
      if (equalsLower(name, 'host')) return HOST
      break
    case 6:
      if (equalsLower(name, 'expect')) return EXPECT
      break
    case 7:
      if (equalsLower(name, 'upgrade')) return UPGRADE
      if (equalsLower(name, 'trailer')) return HOP
      break
    case 9:
      if (equalsLower(name, 'forwarded')) return FORWARDED
      break
    case 10:
      if (equalsLower(name, 'connection')) return CONNECTION
      if (equalsLower(name, 'keep-alive')) return HOP
      break
    case 14:
      if (equalsLower(name, 'content-length')) return CONTENT_LENGTH
      break
    case 15:
      if (equalsLower(name, 'x-forwarded-for')) return XFF
      break
    case 16:
      if (equalsLower(name, 'x-forwarded-host')) return XFH
      break
    case 17:
      if (equalsLower(name, 'transfer-encoding')) return TRANSFER_ENCODING
      if (equalsLower(name, 'x-forwarded-proto')) return XFP
      break
    case 18:
      // The admin token, sent to ask for an explanation (explain/policy.ts): never forwarded, on any
      // listener, so that a client that always sends it does not hand it to the servers.
      if (equalsLower(name, 'x-switchyard-token')) return HOP
      break
  }
  // Proxy-Connection, Proxy-Authorization, ...: never forwarded.
  return name.length > 6 && equalsLower(name, 'proxy-') ? HOP : PASS
}

/** Lower-case header names listed in Connection header values, or undefined when there are none. */
function connectionTokens(values: readonly string[]): Set<string> | undefined {
  let out: Set<string> | undefined
  for (const v of values) {
    for (const part of v.split(',')) {
      const token = part.trim().toLowerCase()
      if (!token || token === 'close' || token === 'keep-alive') continue
      out ??= new Set()
      out.add(token)
    }
  }
  return out
}

/** Drops from a flat [name, value, ...] array every header that a Connection header named. Rare path. */
function dropNamed(flat: string[], named: Set<string>): string[] {
  const out: string[] = []
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i] as string
    if (!named.has(name.toLowerCase())) out.push(name, flat[i + 1] as string)
  }
  return out
}

export interface ForwardingPolicy {
  readonly xForwarded: boolean
  readonly forwarded: boolean
  /** Peers whose forwarding headers are believed. Empty: nobody. */
  readonly trusted: BlockList
  readonly trustAny: boolean
}

export function buildTrust(ranges: readonly string[]): { trusted: BlockList; trustAny: boolean } {
  const trusted = new BlockList()
  for (const r of ranges) {
    const [ip = '', prefix] = r.split('/')
    const type = isIPv6(ip) ? 'ipv6' : 'ipv4'
    if (prefix === undefined) trusted.addAddress(ip, type)
    else trusted.addSubnet(ip, Number(prefix), type)
  }
  return { trusted, trustAny: ranges.length > 0 }
}

/**
 * The client's address as the trusted-proxy rules resolve it: the peer, unless the peer is a trusted
 * proxy; then the nearest address of its X-Forwarded-For that is not trusted itself (the leftmost when
 * every one is). Without trusted proxies, always the peer.
 */
export function resolveClientIp(peer: string, xff: string | undefined, policy: ForwardingPolicy): string {
  if (!policy.trustAny || xff === undefined || !isTrusted(peer, policy)) return peer
  const hops = xff.split(',')
  let ip = peer
  for (let i = hops.length - 1; i >= 0; i--) {
    const hop = (hops[i] as string).trim()
    if (isIP(hop) === 0) return ip
    ip = hop
    if (!isTrusted(hop, policy)) return hop
  }
  return ip
}

function isTrusted(ip: string, policy: ForwardingPolicy): boolean {
  return policy.trusted.check(ip, ip.includes(':') ? 'ipv6' : 'ipv4')
}

/**
 * What one pass over the client's raw request head found. `headers` holds what is forwarded as is:
 * everything but hop-by-hop headers, Host, Expect, the request-id header and the forwarding headers,
 * which `upstreamRequestHeaders` adds back as policy says.
 */
export class RequestHead {
  headers: string[] = []
  /**
   * The first `checked` entries of `headers` are the client's, read by strict llhttp: every name a
   * token, every value free of controls (the upstream engine need not check them again). Filters that
   * add headers add them after these; one that removes a header cuts this back to where it was.
   */
  checked = 0
  /** Strict llhttp read the client's head (scanRequestHead's `checked`): its values are all valid. */
  strict = false
  /** The client's Host header (the first); undefined when it sent none (HTTP/1.0). */
  host: string | undefined = undefined
  /** Host fields (HTTP/2: and `:authority`) received. */
  hosts = 0
  /** The Transfer-Encoding fields' values, joined by commas; undefined without one. */
  transferEncoding: string | undefined = undefined
  /** The request announces a body: chunked, or a non-zero Content-Length. */
  hasBody = false
  /** The Content-Length the client sent; -1 without one (no body, or chunked). */
  contentLength = -1
  /** The client's request-id header, unvalidated. */
  requestId: string | undefined = undefined
  xff: string | undefined = undefined
  xfp: string | undefined = undefined
  xfh: string | undefined = undefined
  fwd: string | undefined = undefined
  /**
   * The protocols an HTTP/1.1 client asked to switch to (`Upgrade`, with `upgrade` named in
   * `Connection`: RFC 9110 §7.8), as sent; undefined when it asked for none. Upgrade and Connection
   * are hop-by-hop, so they are never in `headers`: the request path adds them back for a tunnel.
   */
  upgrade: string | undefined = undefined
}

/**
 * Scans `raw` (`req.rawHeaders`: [name, value, ...] as received) once. `requestIdHeader` is lower-case.
 * Repeated X-Forwarded-For and Forwarded headers are joined, as RFC 9110 §5.3 allows for lists.
 * `checked`: strict llhttp read `raw` (ClientSide.headersChecked), so every forwarded entry is valid.
 */
export function scanRequestHead(raw: readonly string[], requestIdHeader: string, checked = false): RequestHead {
  const head = new RequestHead()
  const out = head.headers
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    const value = raw[i + 1] as string
    if (name.length === requestIdHeader.length && name.toLowerCase() === requestIdHeader) {
      head.requestId ??= value
      continue
    }
    switch (headerKind(name)) {
      case PASS:
        out.push(name, value)
        break
      case UPGRADE:
        head.upgrade = head.upgrade === undefined ? value : `${head.upgrade}, ${value}`
        break
      case HOP:
      case EXPECT:
        break
      case CONNECTION:
        connection ??= []
        connection.push(value)
        break
      case TRANSFER_ENCODING:
        head.hasBody = true
        head.transferEncoding = head.transferEncoding === undefined ? value : `${head.transferEncoding},${value}`
        break
      case CONTENT_LENGTH:
        head.contentLength = Number(value)
        if (value !== '0') head.hasBody = true
        out.push(name, value)
        break
      case HOST:
        head.host ??= value
        head.hosts++
        break
      case XFF:
        head.xff = head.xff === undefined ? value : `${head.xff}, ${value}`
        break
      case XFP:
        head.xfp ??= value
        break
      case XFH:
        head.xfh ??= value
        break
      case FORWARDED:
        head.fwd = head.fwd === undefined ? value : `${head.fwd}, ${value}`
        break
    }
  }
  const named = connection ? connectionTokens(connection) : undefined
  if (named) head.headers = dropNamed(out, named)
  if (head.upgrade !== undefined && named?.has('upgrade') !== true) head.upgrade = undefined
  if (checked) {
    head.strict = true
    head.checked = head.headers.length
  }
  return head
}

/** RFC 3986 reg-name characters (unreserved, pct-encoded, sub-delims), without the comma of a list. */
const REG_NAME = /^(?:[A-Za-z0-9\-._~!$&'()*+;=]|%[0-9A-Fa-f]{2})*$/
const PORT = /^(?::[0-9]{0,5})?$/

/**
 * A Host value RFC 9112 §3.2 accepts: `uri-host [ ":" port ]`, the host a reg-name (a DNS name, or an
 * IPv4 address), or an IPv6 address in brackets. Refused: userinfo (`a@b`), a list (`a, b`),
 * whitespace, a path, IPvFuture literals. Empty is valid (a target without an authority).
 */
export function isValidHost(value: string): boolean {
  if (value.charCodeAt(0) === 91 /* [ */) {
    const end = value.indexOf(']')
    const literal = value.slice(1, end)
    return end > 0 && isIPv6(literal) && !literal.includes('%') && PORT.test(value.slice(end + 1))
  }
  const colon = value.indexOf(':')
  if (colon < 0) return REG_NAME.test(value)
  return REG_NAME.test(value.slice(0, colon)) && PORT.test(value.slice(colon))
}

/** What is wrong with a request's Transfer-Encoding, as the request path answers it. */
export interface CodingProblem {
  /** SWY_BAD_REQUEST (400), or SWY_NOT_IMPLEMENTED (501) for a coding Switchyard does not decode. */
  readonly code: 'SWY_BAD_REQUEST' | 'SWY_NOT_IMPLEMENTED'
  readonly message: string
}

const TRANSFER_CODING_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/**
 * Whether a request's Transfer-Encoding (`value`: the fields joined by commas) can be proxied: only
 * `chunked` alone (in any case, OWS around it) can. Refused as nginx and Envoy do, whatever the
 * engine's parser made of it:
 * - in HTTP/1.0 (RFC 9112 §6.1: the framing is faulty), or beside a Content-Length (§6.3, request
 *   smuggling), or with an empty element, or with `chunked` not last or more than once (§6.3: the
 *   length cannot be known), or with a coding that is not a token: 400;
 * - with codings before `chunked` (gzip, identity, ...), which Switchyard does not decode and which
 *   must not reach the upstream dropped (Transfer-Encoding is hop-by-hop): 501 (§6.1).
 * Undefined when it is fine.
 */
export function transferCodingProblem(
  value: string,
  http10: boolean,
  contentLength: boolean,
): CodingProblem | undefined {
  const bad = (message: string): CodingProblem => ({ code: 'SWY_BAD_REQUEST', message })
  if (http10) return bad('Transfer-Encoding in an HTTP/1.0 request')
  if (contentLength) return bad('both Transfer-Encoding and Content-Length')
  const codings = value.split(',').map((c) => c.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase())
  const last = codings.length - 1
  if (last === 0 && codings[0] === 'chunked') return undefined
  if (codings.includes('')) return bad('an empty transfer coding')
  if (codings[last] !== 'chunked') return bad('chunked is not the final transfer coding')
  if (codings.indexOf('chunked') !== last) return bad('chunked applied more than once')
  const unknown = codings.slice(0, last)
  if (unknown.some((c) => !TRANSFER_CODING_NAME.test(c.split(';')[0]?.trimEnd() ?? '')))
    return bad('a transfer coding that is not a token')
  return { code: 'SWY_NOT_IMPLEMENTED', message: `transfer coding ${unknown.join(', ')} is not implemented` }
}

/**
 * Joins the Cookie fields of an HTTP/2 request into one, as RFC 9113 §8.2.3 requires before it is sent
 * on over HTTP/1.1 (HTTP/2 clients may split cookies into one field each). Names are lower-case in
 * HTTP/2. Works in place on `flat`, a [name, value, ...] array.
 */
export function joinCookies(flat: string[]): void {
  let first = -1
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i] !== 'cookie') continue
    if (first < 0) first = i
    else {
      flat[first + 1] = `${flat[first + 1]}; ${flat[i + 1]}`
      flat.splice(i, 2)
      i -= 2
    }
  }
}

/** What the upstream head depends on besides the client's headers. */
export interface UpstreamHeadInput {
  /**
   * `upstreamHost` is the server's own address (a config value Switchyard formats), not a value a
   * filter set: known valid.
   */
  readonly upstreamHostChecked?: boolean
  /** Client address without the `::ffff:` prefix. */
  readonly clientIp: string
  readonly proto: 'http' | 'https'
  /** The id chosen for the request, and the lower-case header that carries it. */
  readonly requestId: string
  readonly requestIdHeader: string
  /** Host header to send upstream when it differs from the client's (`preserveHost: false`). */
  readonly upstreamHost?: string | undefined
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** The upstream request's headers, and how many of them, from the first, are known valid. */
export interface UpstreamHeaders {
  readonly headers: string[]
  /**
   * The first `checked` entries need no check by the engine: the client's, read by strict llhttp, and
   * the ones added here from them (every value made of checked values, the names constants or the
   * validated request-id header), when nothing unchecked came between.
   */
  readonly checked: number
}

/**
 * The flat header array for the upstream request: `head.headers` (reused, not copied) plus Host, the
 * request id, and X-Forwarded-* / Forwarded. From a trusted proxy the incoming forwarding values are
 * kept and appended to; from anyone else they are replaced.
 */
export function upstreamRequestHeaders(
  head: RequestHead,
  input: UpstreamHeadInput,
  policy: ForwardingPolicy,
): UpstreamHeaders {
  const out = head.headers
  // Everything so far is checked (no filter or per-try header in between), and so is the Host value.
  const contiguous =
    head.strict &&
    head.checked === out.length &&
    (input.upstreamHost === undefined || input.upstreamHostChecked === true)
  const ip = input.clientIp
  const v6 = ip.includes(':')
  const trusted = policy.trustAny && policy.trusted.check(ip, v6 ? 'ipv6' : 'ipv4')
  const upstreamHost = input.upstreamHost ?? head.host
  if (upstreamHost !== undefined) out.push('host', upstreamHost)
  out.push(input.requestIdHeader, input.requestId)
  const { xff, xfp, xfh, fwd } = head
  if (policy.xForwarded) {
    out.push('x-forwarded-for', trusted && xff ? `${xff}, ${ip}` : ip)
    out.push('x-forwarded-proto', trusted && xfp ? xfp : input.proto)
    const host = trusted && xfh ? xfh : head.host
    if (host !== undefined) out.push('x-forwarded-host', host)
  } else if (trusted) {
    // Not adding our own, but a trusted chain is passed on untouched.
    if (xff !== undefined) out.push('x-forwarded-for', xff)
    if (xfp !== undefined) out.push('x-forwarded-proto', xfp)
    if (xfh !== undefined) out.push('x-forwarded-host', xfh)
  }
  if (policy.forwarded) {
    let element = v6 ? `for="[${ip}]";proto=${input.proto}` : `for=${ip};proto=${input.proto}`
    const host = head.host
    if (host !== undefined) element += `;host=${TOKEN_RE.test(host) ? host : quote(host)}`
    out.push('forwarded', trusted && fwd ? `${fwd}, ${element}` : element)
  } else if (trusted && fwd !== undefined) out.push('forwarded', fwd)
  return { headers: out, checked: contiguous ? out.length : head.checked }
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`
}

/**
 * The upstream response's raw headers (`[name, value, ...]`, latin1 strings) as a flat array for
 * `res.writeHead`, minus hop-by-hop headers, plus `extra` pairs.
 */
export function downstreamResponseHeaders(raw: readonly string[], extra: readonly string[]): string[] {
  let out: string[] = []
  let connection: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    switch (headerKind(name)) {
      case HOP:
      case UPGRADE:
      case TRANSFER_ENCODING:
        break
      case CONNECTION:
        connection ??= []
        connection.push(raw[i + 1] as string)
        break
      default:
        out.push(name, raw[i + 1] as string)
    }
  }
  const named = connection ? connectionTokens(connection) : undefined
  if (named) out = dropNamed(out, named)
  for (let i = 0; i < extra.length; i++) out.push(extra[i] as string)
  return out
}

/**
 * A server's `101 Switching Protocols` head for the client: as `downstreamResponseHeaders`, with the
 * protocol it switched to (its `Upgrade`, or the one the client asked for when it named none) and
 * `Connection: upgrade` put back, as RFC 9110 §15.2.2 requires of a 101.
 */
export function switchingResponseHeaders(raw: readonly string[], asked: string, extra: readonly string[]): string[] {
  let upgrade: string | undefined
  for (let i = 0; i < raw.length; i += 2)
    if (headerKind(raw[i] as string) === UPGRADE) {
      const value = raw[i + 1] as string
      upgrade = upgrade === undefined ? value : `${upgrade}, ${value}`
    }
  return downstreamResponseHeaders(raw, [...extra, 'connection', 'upgrade', 'upgrade', upgrade ?? asked])
}

/** Raw trailers (`[name, value, ...]`) to `[name, value]` tuples for `res.addTrailers`. */
export function trailerPairs(raw: readonly string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i] as string, raw[i + 1] as string])
  return out
}

const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/

/** An incoming request id is kept only if it is 1–128 visible ASCII characters. */
export function isValidRequestId(value: string | undefined): value is string {
  return value !== undefined && REQUEST_ID_RE.test(value)
}
