/**
 * Route table for one listener, compiled from config at load time. First match wins; a route with no
 * conditions matches everything. Matching is allocation-free apart from the lower-cased host.
 */
import { headerValues } from '../balancer/hash-key.js'
import type { RouteMatch } from '../config/index.js'

export interface RequestFacts {
  readonly method: string
  /** Host header without the port, lower-case; '' when absent. */
  readonly host: string
  /** The request target up to (not including) '?'. */
  readonly path: string
  /** `[name, value, ...]` as received: where header conditions look. */
  readonly rawHeaders: readonly string[]
}

interface CompiledRoute<T> {
  readonly match: RouteMatch
  readonly target: T
}

export class Router<T> {
  readonly #routes: readonly CompiledRoute<T>[]

  constructor(routes: readonly { match: RouteMatch; target: T }[]) {
    this.#routes = routes.map((r) => ({ match: r.match, target: r.target }))
  }

  /** The target of the first matching route, or undefined when none matches. */
  match(req: RequestFacts): T | undefined {
    for (const route of this.#routes) if (matches(route.match, req)) return route.target
    return undefined
  }
}

function matches(m: RouteMatch, req: RequestFacts): boolean {
  if (!m.anyHost && !hostMatches(m, req.host)) return false
  if (m.path !== undefined && req.path !== m.path) return false
  if (m.pathPrefix !== undefined && !req.path.startsWith(m.pathPrefix)) return false
  if (m.methods.length > 0 && !m.methods.includes(req.method)) return false
  if (m.headers.length === 0) return true
  for (const [name, value] of m.headers) {
    const actual = headerValues(req.rawHeaders, name)
    if (actual.length === 0) return false
    if (value !== undefined && !actual.includes(value)) return false
  }
  return true
}

function hostMatches(m: RouteMatch, host: string): boolean {
  if (m.hosts.includes(host)) return true
  for (const suffix of m.hostSuffixes) if (host.length > suffix.length && host.endsWith(suffix)) return true
  return false
}

/** `Example.COM:8080` → `example.com`; `[::1]:8080` → `[::1]`. */
export function hostWithoutPort(host: string | undefined): string {
  if (!host) return ''
  const end = host.startsWith('[') ? host.indexOf(']') + 1 : host.indexOf(':')
  return (end > 0 ? host.slice(0, end) : host).toLowerCase()
}

/** The path part of a request target. */
export function pathOf(url: string): string {
  const q = url.indexOf('?')
  return q === -1 ? url : url.slice(0, q)
}
