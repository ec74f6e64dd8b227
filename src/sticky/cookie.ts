/**
 * The signed session cookie of `sticky: { mode: cookie }`. Its value names the server and when the
 * binding expires, signed with HMAC-SHA256 so that a client can neither forge a binding to a server
 * of its choice nor extend one:
 *
 *   <server id, base64url> "." <expiry, unix seconds, base36> "." <HMAC-SHA256(secret, pool NUL id NUL expiry), first 16 bytes, base64url>
 *
 * The pool name is signed too, so a cookie issued by one pool means nothing to another. Verification
 * compares in constant time. Pure functions; the clock is passed in.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

/** Bytes of the HMAC kept in the cookie: 128 bits. */
const MAC_BYTES = 16

export interface CookieSettings {
  readonly name: string
  /** Lifetime of a binding (and Max-Age of the cookie) in seconds; 0: a browser-session cookie, bound for `sessionTtlS`. */
  readonly ttlS: number
  readonly path: string
  readonly domain: string | undefined
  readonly secure: boolean
  readonly httpOnly: boolean
  readonly sameSite: 'Strict' | 'Lax' | 'None' | undefined
}

/** How long a browser-session cookie (ttl 0) stays valid on the server side: 1 day. */
export const SESSION_TTL_S = 86_400

function mac(secret: Buffer, pool: string, id: string, expiry: string): Buffer {
  return createHmac('sha256', secret).update(`${pool}\0${id}\0${expiry}`).digest().subarray(0, MAC_BYTES)
}

/** The cookie value binding `pool`'s requests to server `id` until `nowS + ttl`. */
export function signBinding(secret: Buffer, pool: string, id: string, nowS: number, ttlS: number): string {
  const expiry = Math.floor(nowS + (ttlS > 0 ? ttlS : SESSION_TTL_S)).toString(36)
  const idPart = Buffer.from(id, 'utf8').toString('base64url')
  return `${idPart}.${expiry}.${mac(secret, pool, id, expiry).toString('base64url')}`
}

/**
 * The server id a cookie value binds to, or undefined when it is malformed, tampered with, signed for
 * another pool or secret, or expired at `nowS`.
 */
export function verifyBinding(secret: Buffer, pool: string, value: string, nowS: number): string | undefined {
  const first = value.indexOf('.')
  const second = first < 0 ? -1 : value.indexOf('.', first + 1)
  if (second < 0 || value.indexOf('.', second + 1) >= 0) return undefined
  const expiry = value.slice(first + 1, second)
  const expiresAtS = Number.parseInt(expiry, 36)
  if (!/^[0-9a-z]{1,12}$/.test(expiry) || !(expiresAtS > nowS)) return undefined
  const id = Buffer.from(value.slice(0, first), 'base64url').toString('utf8')
  const given = Buffer.from(value.slice(second + 1), 'base64url')
  if (given.length !== MAC_BYTES) return undefined
  return timingSafeEqual(given, mac(secret, pool, id, expiry)) ? id : undefined
}

/** The expiry (unix seconds) written in a binding that `verifyBinding` accepted. */
export function bindingExpiryS(value: string): number {
  const first = value.indexOf('.')
  return Number.parseInt(value.slice(first + 1, value.indexOf('.', first + 1)), 36)
}

/** The `Set-Cookie` value that carries `value` with the configured attributes. */
export function setCookieValue(settings: CookieSettings, value: string): string {
  let out = `${settings.name}=${value}; Path=${settings.path}`
  if (settings.ttlS > 0) out += `; Max-Age=${settings.ttlS}`
  if (settings.domain !== undefined) out += `; Domain=${settings.domain}`
  if (settings.secure) out += '; Secure'
  if (settings.httpOnly) out += '; HttpOnly'
  if (settings.sameSite !== undefined) out += `; SameSite=${settings.sameSite}`
  return out
}
