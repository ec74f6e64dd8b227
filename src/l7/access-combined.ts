/**
 * The text access-log formats, for tools that read NGINX's and Apache's logs (GoAccess, AWStats, log
 * shippers' `combined` parsers). `combined` is exactly NGINX's predefined format:
 *
 *   $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
 *
 * and `combined-extended` appends, after one space, what NGINX users commonly add to it:
 *
 *   $request_time "$pool" "$upstream" $upstream_header_time "$request_id" "$code" "$trace_id"
 *
 * Values are escaped as NGINX's `escape=default` does (log-bytes.ts `escaped`); an absent value is
 * `-`. A TCP connection's line follows NGINX's stream `basic` format,
 * `$remote_addr [$time_local] TCP $status $bytes_sent $bytes_received $session_time`, extended with
 * `"$pool" "$upstream" $connect_time "$code"`. docs/observability.md documents each field.
 */
import type { AccessEntry, TcpEntry } from './access-log.js'
import { ascii, escaped, integer, seconds } from './log-bytes.js'

/** `$request`'s protocol: what the client spoke, as NGINX writes it. */
function requestProtocol(protocol: string): string {
  switch (protocol) {
    case 'http/1.1':
      return 'HTTP/1.1'
    case 'http/1.0':
      return 'HTTP/1.0'
    case 'h2':
      return 'HTTP/2.0'
    default:
      return protocol
  }
}

/** One request's line (with its newline) at `p`; `time` is `$time_local`. */
export function combinedLine(buf: Buffer, p: number, e: AccessEntry, time: string, extended: boolean): number {
  p = escaped(buf, p, e.client)
  p = ascii(buf, p, ' - ')
  p = escaped(buf, p, e.user)
  p = ascii(buf, p, ' [')
  p = ascii(buf, p, time)
  p = ascii(buf, p, '] "')
  p = escaped(buf, p, e.method)
  buf[p++] = 0x20
  p = escaped(buf, p, e.url)
  buf[p++] = 0x20
  p = ascii(buf, p, requestProtocol(e.protocol))
  p = ascii(buf, p, '" ')
  p = integer(buf, p, e.status)
  buf[p++] = 0x20
  p = integer(buf, p, e.bytesOut)
  p = ascii(buf, p, ' "')
  p = escaped(buf, p, e.referer)
  p = ascii(buf, p, '" "')
  p = escaped(buf, p, e.userAgent)
  buf[p++] = 0x22
  if (extended) {
    buf[p++] = 0x20
    p = seconds(buf, p, e.durationMs)
    p = ascii(buf, p, ' "')
    p = escaped(buf, p, e.pool)
    p = ascii(buf, p, '" "')
    p = escaped(buf, p, e.upstream)
    p = ascii(buf, p, '" ')
    p = e.ttfbMs >= 0 ? seconds(buf, p, e.ttfbMs) : ascii(buf, p, '-')
    p = ascii(buf, p, ' "')
    p = escaped(buf, p, e.requestId)
    p = ascii(buf, p, '" "')
    p = escaped(buf, p, e.code)
    p = ascii(buf, p, '" "')
    p = escaped(buf, p, e.traceId)
    buf[p++] = 0x22
  }
  buf[p++] = 0x0a
  return p
}

/**
 * One TCP connection's line at `p`. `$status` is 200 for a connection that ended without a failure,
 * else the HTTP status of its SWY_* code (502, 503, 504; 499 when the client reset it).
 */
export function tcpLine(buf: Buffer, p: number, e: TcpEntry, status: number, time: string, extended: boolean): number {
  p = escaped(buf, p, e.client)
  p = ascii(buf, p, ' [')
  p = ascii(buf, p, time)
  p = ascii(buf, p, '] TCP ')
  p = integer(buf, p, status)
  buf[p++] = 0x20
  p = integer(buf, p, e.bytesOut)
  buf[p++] = 0x20
  p = integer(buf, p, e.bytesIn)
  buf[p++] = 0x20
  p = seconds(buf, p, e.durationMs)
  if (extended) {
    p = ascii(buf, p, ' "')
    p = escaped(buf, p, e.pool)
    p = ascii(buf, p, '" "')
    p = escaped(buf, p, e.upstream)
    p = ascii(buf, p, '" ')
    p = e.connectMs >= 0 ? seconds(buf, p, e.connectMs) : ascii(buf, p, '-')
    p = ascii(buf, p, ' "')
    p = escaped(buf, p, e.code)
    buf[p++] = 0x22
  }
  buf[p++] = 0x0a
  return p
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

const two = (n: number): string => (n < 10 ? `0${n}` : String(n))

/** `$time_local` for `ms`: `24/Nov/2026:14:36:57 +0100`, in the process's time zone (TZ). */
export function timeLocal(ms: number): string {
  const d = new Date(ms)
  const offset = -d.getTimezoneOffset()
  const abs = Math.abs(offset)
  return `${two(d.getDate())}/${MONTHS[d.getMonth()]}/${d.getFullYear()}:${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} ${offset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}${two(abs % 60)}`
}

/** What the text formats read from the request head. */
export interface HeadFields {
  readonly referer: string | undefined
  readonly userAgent: string | undefined
  /** The user of a Basic Authorization header (not checked: NGINX's `$remote_user` is not either). */
  readonly user: string | undefined
}

/** The Referer, User-Agent and Basic-auth user of raw request headers `[name, value, ...]`, in one pass. */
export function headFields(raw: readonly string[]): HeadFields {
  let referer: string | undefined
  let userAgent: string | undefined
  let user: string | undefined
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    switch (name.length) {
      case 7:
        if (referer === undefined && name.toLowerCase() === 'referer') referer = raw[i + 1]
        break
      case 10:
        if (userAgent === undefined && name.toLowerCase() === 'user-agent') userAgent = raw[i + 1]
        break
      case 13:
        if (user === undefined && name.toLowerCase() === 'authorization') user = basicUser(raw[i + 1] as string)
        break
    }
  }
  return { referer, userAgent, user }
}

/** The user name of `Basic <base64 user:password>`; undefined for another scheme or a malformed value. */
function basicUser(value: string): string | undefined {
  const m = /^[ \t]*basic[ \t]+([A-Za-z0-9+/]+=*)[ \t]*$/i.exec(value)
  if (m === null) return undefined
  const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? undefined : decoded.slice(0, colon)
}
