/**
 * Header rewriting between client and upstream, on raw header arrays (no header objects are built).
 * - Hop-by-hop headers (RFC 9110 §7.6.1) are removed both ways: Connection and every header it names,
 *   Keep-Alive, Proxy-Connection, TE, Trailer, Transfer-Encoding, Upgrade, and all Proxy-* headers.
 * - Upstream requests get X-Forwarded-For/-Proto/-Host and RFC 7239 Forwarded. From a trusted proxy the
 *   incoming values are kept and appended to; from anyone else they are replaced.
 * - The request id header is set to the id chosen for the request.
 */
import { BlockList, isIPv6 } from 'node:net'

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** True for a lower-case header name that never crosses a proxy. */
export function isHopByHop(lower: string): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-')
}

/** Lower-case header names listed in Connection header values, or undefined when there are none. */
export function connectionTokens(values: readonly string[]): Set<string> | undefined {
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

/** Everything about the request that the upstream head depends on. */
export interface RequestHeadInput {
  /** `req.rawHeaders`: [name, value, name, value, ...] as received. */
  readonly rawHeaders: readonly string[]
  /** Client address without the `::ffff:` prefix. */
  readonly clientIp: string
  readonly proto: 'http' | 'https'
  readonly requestId: string
  readonly requestIdHeader: string
  /** The client's Host header; undefined for an HTTP/1.0 client that sent none. */
  readonly host: string | undefined
  /** Host header to send upstream when it differs from the client's (`preserveHost: false`). */
  readonly upstreamHost?: string | undefined
}

const TOKEN_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

/** Builds the flat header array for the upstream request. */
export function upstreamRequestHeaders(input: RequestHeadInput, policy: ForwardingPolicy): string[] {
  const raw = input.rawHeaders
  let connectionValues: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.length === 10 && raw[i]!.toLowerCase() === 'connection') {
      connectionValues ??= []
      connectionValues.push(raw[i + 1]!)
    }
  }
  const named = connectionValues ? connectionTokens(connectionValues) : undefined
  const trusted = policy.trustAny && policy.trusted.check(input.clientIp, isIPv6(input.clientIp) ? 'ipv6' : 'ipv4')

  const out: string[] = []
  let xff: string | undefined
  let xfp: string | undefined
  let xfh: string | undefined
  let fwd: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    const value = raw[i + 1]!
    const lower = name.toLowerCase()
    if (isHopByHop(lower) || named?.has(lower)) continue
    switch (lower) {
      case 'host':
      case 'expect':
      case input.requestIdHeader:
        continue
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`
        continue
      case 'x-forwarded-proto':
        xfp ??= value
        continue
      case 'x-forwarded-host':
        xfh ??= value
        continue
      case 'forwarded':
        fwd = fwd === undefined ? value : `${fwd}, ${value}`
        continue
      default:
        out.push(name, value)
    }
  }
  const upstreamHost = input.upstreamHost ?? input.host
  if (upstreamHost !== undefined) out.push('host', upstreamHost)
  out.push(input.requestIdHeader, input.requestId)
  if (policy.xForwarded) {
    out.push('x-forwarded-for', trusted && xff ? `${xff}, ${input.clientIp}` : input.clientIp)
    out.push('x-forwarded-proto', trusted && xfp ? xfp : input.proto)
    const host = trusted && xfh ? xfh : input.host
    if (host !== undefined) out.push('x-forwarded-host', host)
  } else if (trusted) {
    // Not adding our own, but a trusted chain is passed on untouched.
    if (xff !== undefined) out.push('x-forwarded-for', xff)
    if (xfp !== undefined) out.push('x-forwarded-proto', xfp)
    if (xfh !== undefined) out.push('x-forwarded-host', xfh)
  }
  if (policy.forwarded) {
    const node = isIPv6(input.clientIp) ? `"[${input.clientIp}]"` : input.clientIp
    let element = `for=${node};proto=${input.proto}`
    if (input.host !== undefined) element += `;host=${TOKEN_RE.test(input.host) ? input.host : quote(input.host)}`
    out.push('forwarded', trusted && fwd ? `${fwd}, ${element}` : element)
  } else if (trusted && fwd !== undefined) out.push('forwarded', fwd)
  return out
}

function quote(value: string): string {
  return `"${value.replace(/["\\]/g, '\\$&')}"`
}

/**
 * Converts undici's raw response headers (Buffers) to a flat string array for `res.writeHead`, minus
 * hop-by-hop headers, plus `extra` pairs.
 */
export function downstreamResponseHeaders(raw: readonly Buffer[], extra: readonly string[]): string[] {
  const strings: string[] = new Array(raw.length)
  let connectionValues: string[] | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1')
    const value = raw[i + 1]!.toString('latin1')
    strings[i] = name
    strings[i + 1] = value
    if (name.length === 10 && name.toLowerCase() === 'connection') {
      connectionValues ??= []
      connectionValues.push(value)
    }
  }
  const named = connectionValues ? connectionTokens(connectionValues) : undefined
  const out: string[] = []
  for (let i = 0; i < strings.length; i += 2) {
    const lower = strings[i]!.toLowerCase()
    if (isHopByHop(lower) || named?.has(lower)) continue
    out.push(strings[i]!, strings[i + 1]!)
  }
  for (const x of extra) out.push(x)
  return out
}

/** Raw trailers (Buffers) to `[name, value]` tuples for `res.addTrailers`. */
export function trailerPairs(raw: readonly Buffer[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < raw.length; i += 2) out.push([raw[i]!.toString('latin1'), raw[i + 1]!.toString('latin1')])
  return out
}

const REQUEST_ID_RE = /^[\x21-\x7e]{1,128}$/

/** An incoming request id is kept only if it is 1–128 visible ASCII characters. */
export function isValidRequestId(value: string | undefined): value is string {
  return value !== undefined && REQUEST_ID_RE.test(value)
}
