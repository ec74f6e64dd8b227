/**
 * `hashOn`: which part of a request the hashing algorithms (`ring-hash`, `maglev`) hash, and the
 * extractor compiled from it once per pool. When the field is missing from a request, the client
 * address is hashed instead, so every request has a key.
 *
 * - `client-ip`: the client address (the default);
 * - `header:NAME`: the first value of that header (name compared without case);
 * - `cookie:NAME`: that cookie's value, from the Cookie header(s);
 * - `query:NAME`: that query parameter's value, as sent (not percent-decoded);
 * - `path`: the path, without the query.
 */
import { z } from 'zod'

export const hashOnSchema = z
  .string()
  .regex(/^(client-ip|path|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^;,\s=]+|query:[^&#=\s]+)$/, {
    error: 'expected client-ip, path, header:NAME, cookie:NAME or query:NAME',
  })
  .default('client-ip')
  .describe(
    'What to hash: `client-ip`, `header:NAME`, `cookie:NAME`, `query:NAME` or `path`. A request without that field is hashed on its client address.',
  )

/** What a key is extracted from: the raw request head, as the request path has it. */
export interface KeySource {
  readonly clientIp: string
  /** `[name, value, ...]` as received. */
  readonly rawHeaders: readonly string[]
  /** The request target: path and query. */
  readonly url: string
}

export type KeyExtractor = (source: KeySource) => string

/** Compiles `hashOn` into an extractor. `client-ip` costs nothing beyond reading the address. */
export function compileHashOn(hashOn: string): KeyExtractor {
  const colon = hashOn.indexOf(':')
  const kind = colon < 0 ? hashOn : hashOn.slice(0, colon)
  const name = colon < 0 ? '' : hashOn.slice(colon + 1)
  switch (kind) {
    case 'path':
      return (s) => {
        const q = s.url.indexOf('?')
        return q < 0 ? s.url : s.url.slice(0, q)
      }
    case 'header': {
      const lower = name.toLowerCase()
      return (s) => headerValue(s.rawHeaders, lower) ?? s.clientIp
    }
    case 'cookie':
      return (s) => cookieValue(s.rawHeaders, name) ?? s.clientIp
    case 'query':
      return (s) => queryValue(s.url, name) ?? s.clientIp
    default:
      return (s) => s.clientIp
  }
}

/** The first value of header `lower` (lower-case name) in a raw header array. */
export function headerValue(raw: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string
    if (n.length === lower.length && n.toLowerCase() === lower) return raw[i + 1]
  }
  return undefined
}

/** Every value of header `lower` (lower-case name) in a raw header array, in order. */
export function headerValues(raw: readonly string[], lower: string): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string
    if (n.length === lower.length && n.toLowerCase() === lower) out.push(raw[i + 1] as string)
  }
  return out
}

/** The value of cookie `name` from every Cookie header, or undefined. */
export function cookieValue(raw: readonly string[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i] as string
    if (n.length !== 6 || n.toLowerCase() !== 'cookie') continue
    const value = raw[i + 1] as string
    let at = 0
    while (at < value.length) {
      while (value.charCodeAt(at) === 32 /* space */) at++
      const end = value.indexOf(';', at)
      const stop = end < 0 ? value.length : end
      const eq = value.indexOf('=', at)
      if (eq > at && eq < stop && eq - at === name.length && value.startsWith(name, at)) {
        let v = value.slice(eq + 1, stop).trim()
        if (v.length >= 2 && v.charCodeAt(0) === 34 && v.charCodeAt(v.length - 1) === 34) v = v.slice(1, -1)
        return v
      }
      at = stop + 1
    }
  }
  return undefined
}

/** The raw value of query parameter `name` in `url`, or undefined. */
export function queryValue(url: string, name: string): string | undefined {
  const q = url.indexOf('?')
  if (q < 0) return undefined
  let at = q + 1
  while (at < url.length) {
    let end = url.indexOf('&', at)
    if (end < 0) end = url.length
    const hashAt = url.indexOf('#', at)
    if (hashAt >= 0 && hashAt < end) end = hashAt
    if (url.startsWith(name, at)) {
      const after = at + name.length
      if (after === end) return ''
      if (url.charCodeAt(after) === 61 /* = */) return url.slice(after + 1, end)
    }
    at = end + 1
  }
  return undefined
}
