/**
 * Path normalization, once per request, before routing: routing, access rules, rewrites and what is
 * forwarded all see the one path it gives, so that a rule on `/admin` cannot be passed with `/x/../admin`,
 * `/%61dmin`, `//admin` or `/./admin`. In order (RFC 3986 §6.2.2, and what nginx does for its locations):
 *
 * 1. Percent-encodings: one of an unreserved character (`A-Z a-z 0-9 - . _ ~`) is decoded; every other
 *    is kept, its hex digits upper-cased. An encoded `/` or `\` (`%2F`, `%5C`) is refused (`reject`,
 *    the default: a server that decodes it would see other segments than the rules did) or kept encoded,
 *    never taken as a separator (`keep`). An encoded control byte (`%00`-`%1F`, `%7F`) and a `%` not
 *    followed by two hex digits are refused.
 * 2. A raw `\` is refused (`reject`, the default), or taken as `/` (`slash`, as browsers do).
 * 3. Runs of `/` become one (`mergeSlashes`, on by default).
 * 4. Dot segments are removed (RFC 3986 §5.2.4): `.` goes, `..` takes the segment before it away, and
 *    never climbs above the root.
 *
 * A fragment (`#`) has no place in a request target (RFC 9112 §3.2) and is refused. The query is left as
 * sent. Letter case is kept: paths are case-sensitive (RFC 3986 §6.2.2.1).
 *
 * Cost: a path with no `%`, `\`, `#`, `//` or `/.` is scanned once and returned as it is.
 */

export interface PathPolicy {
  /** Normalize at all; false: the path is routed and forwarded exactly as sent. */
  readonly normalize: boolean
  readonly mergeSlashes: boolean
  /** `%2F` and `%5C`. */
  readonly encodedSlash: 'reject' | 'keep'
  /** A raw `\`. */
  readonly backslash: 'reject' | 'slash'
}

export const DEFAULT_PATH_POLICY: PathPolicy = Object.freeze({
  normalize: true,
  mergeSlashes: true,
  encodedSlash: 'reject',
  backslash: 'reject',
})

export type PathResult =
  | { readonly kind: 'ok'; readonly url: string }
  | { readonly kind: 'reject'; readonly reason: string }

const HEX = '0123456789ABCDEF'

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48
  if (c >= 65 && c <= 70) return c - 55
  if (c >= 97 && c <= 102) return c - 87
  return -1
}

function isUnreserved(c: number): boolean {
  return (
    (c >= 97 && c <= 122) ||
    (c >= 65 && c <= 90) ||
    (c >= 48 && c <= 57) ||
    c === 45 ||
    c === 46 ||
    c === 95 ||
    c === 126
  )
}

/** `url` (origin-form: path and query) normalized by `policy`, or why it is refused. */
export function normalizeUrl(url: string, policy: PathPolicy): PathResult {
  if (!policy.normalize) return { kind: 'ok', url }
  const q = url.indexOf('?')
  const end = q < 0 ? url.length : q
  // Fast path: nothing to decode, merge or remove.
  let work = false
  for (let i = 0; i < end; i++) {
    const c = url.charCodeAt(i)
    if (c === 37 /* % */ || c === 92 /* \ */ || c === 35 /* # */) {
      work = true
      break
    }
    if (c === 47 /* / */ && i + 1 < end) {
      const n = url.charCodeAt(i + 1)
      if (n === 46 /* . */ || (n === 47 && policy.mergeSlashes)) {
        work = true
        break
      }
    }
  }
  if (!work) return { kind: 'ok', url }
  const decoded = decodePath(url.slice(0, end), policy)
  if (typeof decoded !== 'string') return decoded
  const path = removeDotSegments(decoded, policy.mergeSlashes)
  return { kind: 'ok', url: q < 0 ? path : path + url.slice(q) }
}

/** Step 1 and 2: the path with its unreserved percent-encodings decoded, or why it is refused. */
function decodePath(path: string, policy: PathPolicy): string | PathResult {
  let out = ''
  let from = 0
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i)
    if (c === 35) return { kind: 'reject', reason: 'a fragment (#) in the request target' }
    if (c === 92) {
      if (policy.backslash === 'reject') return { kind: 'reject', reason: 'a backslash in the path' }
      out += `${path.slice(from, i)}/`
      from = i + 1
      continue
    }
    if (c !== 37) continue
    const hi = i + 2 < path.length ? hexValue(path.charCodeAt(i + 1)) : -1
    const lo = hi < 0 ? -1 : hexValue(path.charCodeAt(i + 2))
    if (lo < 0) return { kind: 'reject', reason: 'a % not followed by two hex digits in the path' }
    const v = hi * 16 + lo
    if (v < 0x20 || v === 0x7f) return { kind: 'reject', reason: 'an encoded control byte in the path' }
    if ((v === 0x2f || v === 0x5c) && policy.encodedSlash === 'reject')
      return { kind: 'reject', reason: `an encoded ${v === 0x2f ? 'slash (%2F)' : 'backslash (%5C)'} in the path` }
    out += path.slice(from, i) + (isUnreserved(v) ? String.fromCharCode(v) : `%${HEX[hi]}${HEX[lo]}`)
    from = i + 3
    i += 2
  }
  return from === 0 ? path : out + path.slice(from)
}

/** Steps 3 and 4, on a path that starts with `/`. */
function removeDotSegments(path: string, mergeSlashes: boolean): string {
  const segments = path.split('/')
  const out: string[] = []
  // segments[0] is '' (the path starts with /); the last one decides whether a trailing slash stays.
  for (let i = 1; i < segments.length; i++) {
    const s = segments[i] as string
    const last = i === segments.length - 1
    if (s === '.' || s === '..') {
      if (s === '..') out.pop()
      if (last) out.push('')
      continue
    }
    if (s === '' && mergeSlashes && !last) continue
    out.push(s)
  }
  return `/${out.join('/')}`
}
