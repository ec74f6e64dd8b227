/**
 * Session persistence (`sticky:` on a pool): which server a request is bound to, before the balancer
 * is asked. Four modes:
 *
 * - `cookie`: Switchyard issues a signed cookie naming the server (see cookie.ts). A request whose
 *   cookie is missing, expired, tampered with, or names a server that is gone or cannot take requests
 *   goes to the balancer, and its response re-issues the cookie. It never errors.
 * - `client-ip` and `header:NAME`: a consistent hash ring over the pool's primary servers, keyed on the
 *   client address or that header (the client address when the header is absent). No state and no
 *   cookie, so restarts and separate instances with the same servers agree.
 * - `app-cookie:NAME`: follows a cookie that the servers set themselves (such as JSESSIONID): its
 *   value is learnt from their `Set-Cookie` headers into a bounded table (session-table.ts).
 *
 * A server in drain keeps its bound sessions but the balancer gives it no new ones; the pool decides
 * availability, this module only says where a request is bound.
 */

import { cookieValue, headerValue, type KeySource } from '../balancer/hash-key.js'
import { HashRing } from '../balancer/hash-ring.js'
import type { Backend } from '../core/backend.js'
import {
  bindingExpiryS,
  type CookieSettings,
  SESSION_TTL_S,
  setCookieValue,
  signBinding,
  verifyBinding,
} from './cookie.js'
import { SessionTable } from './session-table.js'

export type { CookieSettings } from './cookie.js'

export type StickyConfig =
  | { readonly mode: 'cookie'; readonly cookie: CookieSettings; readonly secret: Buffer }
  | { readonly mode: 'client-ip' }
  | { readonly mode: 'header'; readonly header: string }
  | { readonly mode: 'app-cookie'; readonly cookie: string; readonly maxEntries: number; readonly ttlMs: number }

/** Verified cookie values remembered, per pool: the oldest is dropped beyond this. */
const VERIFIED_CACHE_SIZE = 16_384

/** Ring points for the hash modes: as `ring-hash`'s default. */
const RING_SIZE = 4096

export interface Clock {
  /** Milliseconds since the epoch (cookie expiry and table ages). */
  nowMs(): number
}

const systemClock: Clock = { nowMs: () => Date.now() }

export class Stickiness {
  readonly config: StickyConfig
  readonly #pool: string
  readonly #clock: Clock
  /** Set exactly in the hash modes (`client-ip`, `header`). */
  readonly #ring: HashRing | undefined
  /** Set exactly in `app-cookie` mode. */
  readonly #table: SessionTable | undefined
  /** Cookie values whose signature verified: value → server id and expiry (oldest first). */
  readonly #checked = new Map<string, { id: string; expiresAtS: number }>()
  /** Expiry of the binding that the last `bound()` call verified (read by `issue()` right after it). */
  #boundExpiryS = 0

  /**
   * `previous`: the stickiness of the pool this one replaces on a reload. With the same `app-cookie`
   * settings, its session table carries over (sessions bound to servers that are gone rebalance).
   */
  constructor(
    pool: string,
    config: StickyConfig,
    primaries: readonly Backend[],
    clock: Clock = systemClock,
    previous?: Stickiness,
  ) {
    this.#pool = pool
    this.config = config
    this.#clock = clock
    if (config.mode === 'client-ip' || config.mode === 'header') {
      this.#ring = new HashRing({ minRingSize: RING_SIZE })
      this.#ring.update(primaries)
    }
    if (config.mode === 'app-cookie')
      this.#table =
        previous !== undefined &&
        previous.#table !== undefined &&
        JSON.stringify(previous.config) === JSON.stringify(config)
          ? previous.#table
          : new SessionTable(config.maxEntries, config.ttlMs)
  }

  /**
   * Where the request is bound: the server ids to try in order (one for the cookie modes, the ring
   * order for the hash modes), or undefined when it is bound nowhere.
   */
  bound(src: KeySource): Iterable<Backend> | string | undefined {
    const c = this.config
    switch (c.mode) {
      case 'cookie': {
        const value = cookieValue(src.rawHeaders, c.cookie.name)
        return value === undefined ? undefined : this.#verified(c.secret, value)
      }
      case 'client-ip':
        return (this.#ring as HashRing).candidates(src.clientIp)
      case 'header':
        return (this.#ring as HashRing).candidates(headerValue(src.rawHeaders, c.header) ?? src.clientIp)
      case 'app-cookie': {
        const value = cookieValue(src.rawHeaders, c.cookie)
        return value === undefined ? undefined : (this.#table as SessionTable).get(value, this.#clock.nowMs())
      }
      default: {
        const unreachable: never = c
        throw new Error(`unknown sticky mode ${JSON.stringify(unreachable)}`)
      }
    }
  }

  /**
   * The `Set-Cookie` value to add to a response from server `id` (cookie mode only): when the request
   * was not bound to it by a valid cookie, or when its binding (the one `bound()` just read) has less
   * than half of its lifetime left, so that an active session keeps its server (a sliding expiry).
   * Undefined otherwise.
   */
  issue(id: string, boundTo: string | undefined): string | undefined {
    const c = this.config
    if (c.mode !== 'cookie') return undefined
    const nowS = this.#clock.nowMs() / 1000
    const lifeS = c.cookie.ttlS > 0 ? c.cookie.ttlS : SESSION_TTL_S
    if (boundTo === id && this.#boundExpiryS - nowS > lifeS / 2) return undefined
    const value = signBinding(c.secret, this.#pool, id, nowS, c.cookie.ttlS)
    return setCookieValue(c.cookie, value)
  }

  /**
   * The server a cookie value binds to, checking its signature once per value: a session sends the
   * same value with every request, and an HMAC costs about 3 µs. Only values that verified are kept,
   * with their expiry, so a forged value is checked (and refused) every time.
   */
  #verified(secret: Buffer, value: string): string | undefined {
    const nowS = this.#clock.nowMs() / 1000
    const hit = this.#checked.get(value)
    if (hit !== undefined) {
      if (hit.expiresAtS > nowS) {
        this.#boundExpiryS = hit.expiresAtS
        return hit.id
      }
      this.#checked.delete(value)
      return undefined
    }
    const id = verifyBinding(secret, this.#pool, value, nowS)
    if (id === undefined) return undefined
    if (this.#checked.size >= VERIFIED_CACHE_SIZE) {
      const oldest = this.#checked.keys().next().value
      if (oldest !== undefined) this.#checked.delete(oldest)
    }
    this.#boundExpiryS = bindingExpiryS(value)
    this.#checked.set(value, { id, expiresAtS: this.#boundExpiryS })
    return id
  }

  /** True when responses must be shown to `learn()` (app-cookie mode). */
  get learns(): boolean {
    return this.#table !== undefined
  }

  /** app-cookie mode: binds the session cookie that server `id` sets in its response, if any. */
  learn(id: string, rawHeaders: readonly string[]): void {
    const c = this.config
    if (c.mode !== 'app-cookie') return
    for (let i = 0; i < rawHeaders.length; i += 2) {
      const name = rawHeaders[i] as string
      if (name.length !== 10 || name.toLowerCase() !== 'set-cookie') continue
      const value = rawHeaders[i + 1] as string
      const eq = value.indexOf('=')
      if (eq !== c.cookie.length || !value.startsWith(c.cookie)) continue
      const end = value.indexOf(';', eq)
      const session = value.slice(eq + 1, end < 0 ? value.length : end).trim()
      if (session !== '') (this.#table as SessionTable).set(session, id, this.#clock.nowMs())
    }
  }
}
