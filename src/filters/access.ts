/**
 * `access`: allow and deny lists of client addresses and CIDR ranges (IPv4 and IPv6; an IPv4-mapped
 * IPv6 address is checked as IPv4). Deny wins over allow; with an allow list, every other address is
 * denied. A denied request is answered `403 SWY_FORBIDDEN`, or its connection is closed with nothing
 * sent (`action: close`; HTTP/2: its stream is reset).
 *
 * Which address:
 * - on a listener: the connection's peer (the address a PROXY header carried, when the listener reads
 *   one). With `action: close` it is checked once per connection, as it is accepted, before a byte is
 *   read (listeners/gate.ts); with 403, once per request (one BlockList lookup).
 * - on a route: the client address that the listener's trusted-proxy rules resolve (`X-Forwarded-For`
 *   only from `forwarded.trustedProxies`), never a header a client can set at will.
 */
import { z } from 'zod'
import { AccessList, parseCidr } from '../limits/index.js'
import { type FilterEnv, routeLabel } from './env.js'
import type { Filter, FilterContext, Reject } from './types.js'

const entry = z.string().refine((s) => parseCidr(s) !== undefined, {
  error: 'expected an IP address or a CIDR range such as 10.0.0.0/8 or 2001:db8::/32',
})

export const schema = z
  .strictObject({
    allow: z
      .array(entry)
      .default([])
      .describe('Addresses and ranges let in; when not empty, every other address is denied. Default: all.'),
    deny: z.array(entry).default([]).describe('Addresses and ranges refused, even when `allow` names them.'),
    action: z
      .union([z.literal(403), z.literal('close')])
      .default(403)
      .describe(
        '403: answer `403 SWY_FORBIDDEN`. close: close the connection with nothing sent (on a listener, as it is accepted).',
      ),
  })
  .refine((o) => o.allow.length > 0 || o.deny.length > 0, { error: 'expected `allow` or `deny` to name an address' })
  .describe('Allow and deny lists of client addresses (deny wins); docs/security.md.')

export type AccessOptions = z.output<typeof schema>

/** The list of `options`. */
export function accessList(options: AccessOptions): AccessList {
  return new AccessList(options.allow, options.deny)
}

/** Whether a listener's `access` rule is enforced as connections are accepted (its `action` is close). */
export function atAccept(options: AccessOptions | undefined): AccessList | undefined {
  return options === undefined || options.action !== 'close' ? undefined : accessList(options)
}

export function create(options: AccessOptions, env: FilterEnv): Filter {
  const list = accessList(options)
  const denied: Reject = Object.freeze({
    kind: 'reject',
    code: 'SWY_FORBIDDEN',
    message: 'client address denied by access rule',
    close: options.action === 'close',
  })
  // On a listener, `close` is the connection gate's (switchyard_connections_refused_total); a 403 needs a request.
  if (env.level === 'listener' && options.action === 'close') return { name: 'access' }
  const cell = env.metrics?.accessDeniedOf(env.listener, routeLabel(env))
  const check = (ip: string): Reject | undefined => {
    if (list.allows(ip)) return undefined
    if (cell !== undefined) cell.value++
    return denied
  }
  if (env.level === 'listener') return { name: 'access', onRequest: (ctx: FilterContext) => check(ctx.request.peerIp) }
  return { name: 'access', onRoute: (ctx: FilterContext) => check(ctx.request.clientIp) }
}
