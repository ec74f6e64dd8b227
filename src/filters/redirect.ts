/**
 * `redirect`: answers with a redirect built from the request. Each part is optional and defaults to
 * the request's own: `scheme`, `host`, `port`, `path` (the whole path) or `prefix` (replaces the
 * route's matched `pathPrefix`), with the query kept unless `dropQuery`. Status 301, 302, 307 or 308
 * (default 302). On a listener, it answers every request (HTTP to HTTPS). A target that takes the
 * request's host is answered 400 when the request has none (HTTP/1.0) or a malformed one.
 */
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter, FilterContext, Respond } from './types.js'

export const schema = z
  .strictObject({
    scheme: z.enum(['http', 'https']).optional().describe("Scheme of the target. Default: the request's."),
    host: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$|^\[[0-9A-Fa-f:.]+\]$/, { error: 'expected a host name such as example.com' })
      .optional()
      .describe("Host of the target. Default: the request's."),
    port: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe("Port of the target. Default: the request's when scheme and host are kept, else the scheme's."),
    path: z.string().startsWith('/').optional().describe('Path of the target, replacing the whole path.'),
    prefix: z
      .string()
      .startsWith('/')
      .optional()
      .describe("Replaces the route's `match.pathPrefix` at the start of the path (the rest is kept)."),
    status: z
      .union([z.literal(301), z.literal(302), z.literal(307), z.literal(308)])
      .default(302)
      .describe('301 or 308 (permanent), 302 or 307 (temporary; 307 and 308 keep the method).'),
    dropQuery: z.boolean().default(false).describe('Leave the query out of the target.'),
  })
  .describe('Answer with a redirect; no pool is asked.')

export type RedirectOptions = z.output<typeof schema>

/** The problems of a redirect at its place in the config (a `prefix` needs the route's pathPrefix). */
export function check(options: RedirectOptions, pathPrefix: string | undefined, level: 'listener' | 'route'): string[] {
  const out: string[] = []
  if (options.path !== undefined && options.prefix !== undefined) out.push('expected `path` or `prefix`, found both')
  if (options.prefix !== undefined && pathPrefix === undefined)
    out.push(
      level === 'listener'
        ? "expected no `prefix` on a listener (it replaces a route's match.pathPrefix)"
        : 'expected the route to have match.pathPrefix for `prefix` to replace, found none',
    )
  return out
}

/**
 * A Host header that can go into a Location as it is (RFC 3986 `host [":" port]`: a reg-name of
 * unreserved, sub-delims and %-escapes, or an IP literal). Anything else (`a@evil.example`, `x/y`) is
 * refused, rather than echoed into a URL that means something else.
 */
const AUTHORITY_RE = /^(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+(?::\d{0,5})?$|^\[[0-9A-Fa-f:.]+\](?::\d{0,5})?$/

/** Answered when the target needs the request's host and it has none (HTTP/1.0) or a malformed one. */
const NO_HOST: Respond = Object.freeze({
  kind: 'respond',
  status: 400,
  headers: { 'cache-control': 'no-store' },
  body: 'a valid Host header is needed for this redirect\n',
})

export function create(options: RedirectOptions, env: FilterEnv): Filter {
  const from = env.pathPrefix
  const cacheControl = options.status === 301 || options.status === 308 ? 'max-age=3600' : 'no-store'
  const answer = (ctx: FilterContext): Respond => {
    const target = location(options, from, ctx)
    if (target === undefined) return NO_HOST
    return { kind: 'respond', status: options.status, headers: { location: target, 'cache-control': cacheControl } }
  }
  return { name: 'redirect', onRequest: answer, onRoute: answer }
}

/**
 * The Location of the redirect for a request; undefined when it would take the request's host and the
 * request has none (HTTP/1.0 without Host) or one that is not a plain `host[:port]`.
 */
export function location(
  options: RedirectOptions,
  pathPrefix: string | undefined,
  ctx: FilterContext,
): string | undefined {
  const r = ctx.request
  if (options.host === undefined && (r.host === undefined || !AUTHORITY_RE.test(r.host))) return undefined
  const scheme = options.scheme ?? r.scheme
  let authority: string
  if (options.host === undefined && options.port === undefined && scheme === r.scheme) authority = r.host ?? r.hostname
  else {
    const host = options.host ?? bareHost(r)
    const port = options.port
    const defaultPort = scheme === 'https' ? 443 : 80
    authority = port === undefined || port === defaultPort ? host : `${host}:${port}`
  }
  let path = r.path
  if (options.path !== undefined) path = options.path
  else if (options.prefix !== undefined && pathPrefix !== undefined && path.startsWith(pathPrefix))
    path = options.prefix + path.slice(pathPrefix.length)
  const query = options.dropQuery ? '' : r.query
  return `${scheme}://${authority}${path}${query}`
}

function bareHost(r: FilterContext['request']): string {
  const host = r.host ?? ''
  if (host.startsWith('[')) return host.slice(0, host.indexOf(']') + 1)
  const colon = host.indexOf(':')
  return colon < 0 ? host : host.slice(0, colon)
}
