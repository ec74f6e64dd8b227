/**
 * `headers`: set, add and remove request headers (sent upstream) and response headers (sent to the
 * client). Values may name per-request placeholders: `{client_ip}`, `{request_id}`, `{host}`,
 * `{scheme}` and `{server}` (the server of the try; request headers naming it are added per try).
 * `xRealIp: true` sets `X-Real-IP` to the client address. Order: remove, then set, then add.
 */
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter, FilterContext, ResponseDraft } from './types.js'

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const PLACEHOLDERS = ['client_ip', 'request_id', 'host', 'scheme', 'server'] as const
const PLACEHOLDER_RE = /\{([a-z_]+)\}/g

/** A header name in the config (an RFC 9110 token); other rules that name headers use it too. */
export const headerName = z.string().regex(TOKEN, { error: 'expected a header name (a token such as x-tenant)' })
const headerValue = z
  .string()
  .refine((v) => !/[\r\n\0]/.test(v), { error: 'expected a header value without CR, LF or NUL' })
  .refine(
    (v) => [...v.matchAll(PLACEHOLDER_RE)].every((m) => (PLACEHOLDERS as readonly string[]).includes(m[1] as string)),
    {
      error: `expected only the placeholders ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`,
    },
  )

const ops = z
  .strictObject({
    set: z.record(headerName, headerValue).optional().describe('Headers to set, replacing any value they had.'),
    add: z
      .record(headerName, z.union([headerValue, z.array(headerValue)]))
      .optional()
      .describe('Headers to add, keeping the values they had (a list adds several).'),
    remove: z.array(headerName).optional().describe('Headers to remove (names, case-insensitive).'),
  })
  .describe('Changes to one direction: `set`, `add`, `remove`.')

export const schema = z
  .strictObject({
    request: ops.optional().describe('Changes to the request sent upstream.'),
    response: ops.optional().describe('Changes to the response sent to the client.'),
    xRealIp: z.boolean().default(false).describe('Set `X-Real-IP` on the upstream request to the client address.'),
  })
  .describe(
    'Header rules. Values may use `{client_ip}`, `{request_id}`, `{host}`, `{scheme}` and `{server}`, resolved per request.',
  )

export type HeadersOptions = z.output<typeof schema>

type Placeholder = (typeof PLACEHOLDERS)[number]
/** Literal text, or a placeholder to resolve. */
type Part = string | { readonly placeholder: Placeholder }
/** A value split into literal text and placeholders; a plain string when it has none. */
type Template = string | { readonly parts: readonly Part[]; readonly perServer: boolean }

function compile(value: string): Template {
  if (!value.includes('{')) return value
  const parts: Part[] = []
  let at = 0
  let perServer = false
  for (const m of value.matchAll(PLACEHOLDER_RE)) {
    const i = m.index ?? 0
    if (i > at) parts.push(value.slice(at, i))
    parts.push({ placeholder: m[1] as Placeholder })
    if (m[1] === 'server') perServer = true
    at = i + m[0].length
  }
  if (at < value.length) parts.push(value.slice(at))
  return { parts, perServer }
}

function render(t: Template, ctx: FilterContext, keepServer: boolean): string {
  if (typeof t === 'string') return t
  let out = ''
  for (const part of t.parts) {
    if (typeof part === 'string') out += part
    else out += resolve(part.placeholder, ctx, keepServer)
  }
  return out
}

function resolve(name: Placeholder, ctx: FilterContext, keepServer: boolean): string {
  const r = ctx.request
  switch (name) {
    case 'client_ip':
      return r.clientIp
    case 'request_id':
      return r.requestId
    case 'host':
      return r.host ?? ''
    case 'scheme':
      return r.scheme
    case 'server':
      return keepServer ? '{server}' : (ctx.server ?? '')
    default: {
      const unknown: never = name
      throw new Error(`unknown placeholder ${unknown}`)
    }
  }
}

interface CompiledOps {
  readonly remove: readonly string[]
  readonly set: readonly (readonly [string, Template])[]
  readonly add: readonly (readonly [string, Template])[]
}

function compileOps(o: z.output<typeof ops> | undefined): CompiledOps | undefined {
  if (o === undefined) return undefined
  return {
    remove: (o.remove ?? []).map((n) => n.toLowerCase()),
    set: Object.entries(o.set ?? {}).map(([n, v]) => [n.toLowerCase(), compile(v)] as const),
    add: Object.entries(o.add ?? {}).flatMap(([n, v]) =>
      (Array.isArray(v) ? v : [v]).map((x) => [n.toLowerCase(), compile(x)] as const),
    ),
  }
}

/** Per-try request headers: those whose value names `{server}` are rendered for each try's server. */
export interface PerTryHeaders {
  addPerTry(name: string, template: string): void
}

export function create(options: HeadersOptions, _env: FilterEnv): Filter {
  const req = compileOps(options.request)
  const res = compileOps(options.response)
  const filter: { -readonly [K in keyof Filter]: Filter[K] } = { name: 'headers' }
  if (req !== undefined || options.xRealIp)
    filter.onRoute = (ctx) => {
      const up = ctx.upstream
      if (req !== undefined) {
        for (const n of req.remove) up.removeHeader(n)
        for (const [n, t] of req.set) {
          if (typeof t !== 'string' && t.perServer) {
            up.removeHeader(n)
            ;(up as unknown as PerTryHeaders).addPerTry(n, render(t, ctx, true))
          } else up.setHeader(n, render(t, ctx, false))
        }
        for (const [n, t] of req.add) {
          if (typeof t !== 'string' && t.perServer) (up as unknown as PerTryHeaders).addPerTry(n, render(t, ctx, true))
          else up.addHeader(n, render(t, ctx, false))
        }
      }
      if (options.xRealIp) up.setHeader('x-real-ip', ctx.request.clientIp)
    }
  if (res !== undefined)
    filter.onResponse = (ctx, response: ResponseDraft) => {
      for (const n of res.remove) response.removeHeader(n)
      for (const [n, t] of res.set) response.setHeader(n, render(t, ctx, false))
      for (const [n, t] of res.add) response.addHeader(n, render(t, ctx, false))
    }
  return filter
}
