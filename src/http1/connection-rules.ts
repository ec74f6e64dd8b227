/**
 * What both HTTP/1.1 engines decide alike about the requests of one connection, beyond what llhttp
 * decides (its keep-alive flag):
 * - which pipelined requests may be processed in parallel (RFC 9112 §9.3.2: only a run of requests
 *   with safe methods; any other waits for every response ahead of it, and holds back those behind it);
 * - which requests end their connection whatever llhttp says: a version other than 1.x (HTTP/0.9, or
 *   `HTTP/2.0` on an HTTP/1 connection, both refused by the request path), `close` anywhere in
 *   Connection (RFC 9112 §9.6; llhttp keeps an HTTP/1.0 request with both `keep-alive` and `close`
 *   alive), and an upgrade request: it is answered as a plain request (no tunnel yet), and the bytes
 *   after it (tunnel data, or another request?) are never read.
 */

/** RFC 9110 §9.2.1. */
const SAFE_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE'])

export function isSafeMethod(method: string): boolean {
  return SAFE_METHODS.has(method)
}

/** True when `name` equals `lower` (a-z and -) ignoring ASCII case. */
function equalsLower(name: string, lower: string): boolean {
  if (name.length !== lower.length) return false
  for (let i = 0; i < lower.length; i++) if ((name.charCodeAt(i) | 0x20) !== lower.charCodeAt(i)) return false
  return true
}

/** Whether the comma-separated `value` has `token` (lower-case) as an element, ignoring case and OWS. */
function hasToken(value: string, token: string): boolean {
  for (const part of value.split(',')) if (part.replace(/^[ \t]+|[ \t]+$/g, '').toLowerCase() === token) return true
  return false
}

/**
 * The connection ends after this request's response (see above), whatever its keep-alive flag says.
 * `rawHeaders`: `[name, value, ...]` as received.
 */
export function endsConnection(versionMajor: number, rawHeaders: readonly string[]): boolean {
  if (versionMajor !== 1) return true
  let upgrade = false
  let connectionUpgrade = false
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i] as string
    if (equalsLower(name, 'connection')) {
      const value = rawHeaders[i + 1] as string
      if (hasToken(value, 'close')) return true
      if (hasToken(value, 'upgrade')) connectionUpgrade = true
    } else if (equalsLower(name, 'upgrade')) upgrade = true
  }
  return upgrade && connectionUpgrade
}
