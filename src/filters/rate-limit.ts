/**
 * `rateLimit`: requests per key, by GCRA (limits/gcra.ts: nginx's `limit_req rate burst`, exact to the
 * millisecond, no timer), and optionally requests in flight per key (`concurrent`). One limit, or a
 * list that must all pass (per client and per route, say).
 *
 * - The key: `client-ip` (the address the listener's trusted-proxy rules resolve, never a header a
 *   client sets at will), `header:NAME`, `cookie:NAME`, `route` (one bucket for the whole route or
 *   listener), or a list of these joined. A request without the header or cookie is keyed by its client
 *   address instead, so that leaving it out does not escape the limit.
 * - Over the rate: `429 SWY_RATE_LIMITED` with `Retry-After` (whole seconds, rounded up) and the IETF
 *   `RateLimit-Policy` / `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers: `"name";q=RATE;w=SECONDS`
 *   and `"name";r=REMAINING;t=SECONDS`). `action: delay` holds a request that would conform within
 *   `maxDelay` until it does (nginx's burst without `nodelay`), and refuses the rest.
 * - Over `concurrent`: 429 too, with `Retry-After: 1`; the count drops when the request ends.
 * - The key table is an LRU of at most `maxKeys` keys per limit (about 120 bytes a key): a client that
 *   sprays keys evicts the least recently seen, and memory stays bounded. The table lives in this
 *   process (each worker limits on its own) and outlives reloads that keep the limit as it was.
 *
 * Where it runs: on a listener, before routing (a `route` key, or `concurrent`, after it); on a route,
 * after it matched.
 *
 * Each 429 counts in `switchyard_rate_limit_rejections_total{listener, route, limit, kind}` (the limit's
 * name; kind `rate` or `concurrent`): labels from the config, never the key.
 */
import { z } from 'zod'
import { cookieValue, headerValue } from '../balancer/hash-key.js'
import { durationSchema, durationToMs } from '../core/address.js'
import {
  InFlight,
  MemoryRateStore,
  type RateDecision,
  type RateLimitStore,
  type RatePolicy,
  ratePolicy,
} from '../limits/index.js'
import type { Cell } from '../metrics/index.js'
import { type FilterEnv, routeLabel } from './env.js'
import type { Filter, FilterContext, HookResult, Reject, ResponseDraft } from './types.js'

const keyPart = z.string().regex(/^(client-ip|route|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[^;,\s=]+)$/, {
  error: 'expected client-ip, route, header:NAME or cookie:NAME',
})

const limit = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, { error: 'expected a name of letters, digits, `_`, `.` and `-`' })
      .default('default')
      .describe('The policy name in the RateLimit-Policy and RateLimit response fields.'),
    rate: z.number().int().min(1).optional().describe('Requests per `per`, steady. Absent: only `concurrent` limits.'),
    per: durationSchema.default('1s').describe('The period of `rate`.'),
    burst: z
      .number()
      .int()
      .min(0)
      .default(0)
      .describe('Requests a key may send at once beyond the steady one (a fresh key may send 1 + burst at once).'),
    key: z
      .union([keyPart, z.array(keyPart).min(1)])
      .default('client-ip')
      .describe(
        'What is limited: `client-ip`, `header:NAME`, `cookie:NAME`, `route`, or a list of these combined. A request without the header or cookie is keyed by its client address.',
      ),
    action: z
      .enum(['reject', 'delay'])
      .default('reject')
      .describe('reject: 429 at once. delay: hold a request that would conform within `maxDelay` until it does.'),
    maxDelay: durationSchema.default('1s').describe('With `action: delay`: the longest a request is held.'),
    concurrent: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Most requests of one key in flight at once; 429 beyond. Absent: no limit.'),
    maxKeys: z
      .number()
      .int()
      .min(1)
      .max(10_000_000)
      .default(100_000)
      .describe('Keys held at most (per worker); the least recently seen are forgotten first.'),
    headers: z
      .enum(['denied', 'always', 'never'])
      .default('denied')
      .describe('Where the RateLimit-Policy and RateLimit fields go: on 429 answers, on every response, or nowhere.'),
  })
  .refine((o) => o.rate !== undefined || o.concurrent !== undefined, {
    error: 'expected `rate` or `concurrent`',
  })

export const schema = z
  .union([limit, z.array(limit).min(1)])
  .describe(
    'Requests per client (or header, cookie, route) by GCRA, and in flight per key; 429 beyond (docs/security.md).',
  )

export type RateLimitOptions = z.output<typeof schema>
type LimitOptions = z.output<typeof limit>

/** A request's key for one limit. */
type KeyOf = (ctx: FilterContext) => string

function compileKey(key: string | readonly string[]): { of: KeyOf; needsRoute: boolean } {
  const parts = (typeof key === 'string' ? [key] : key).map((part): KeyOf => {
    const colon = part.indexOf(':')
    const kind = colon < 0 ? part : part.slice(0, colon)
    const name = colon < 0 ? '' : part.slice(colon + 1)
    switch (kind) {
      case 'header': {
        const lower = name.toLowerCase()
        return (ctx) => {
          const v = headerValue(ctx.request.rawHeaders, lower)
          return v === undefined ? `ip ${ctx.request.clientIp}` : `h ${v}`
        }
      }
      case 'cookie':
        return (ctx) => {
          const v = cookieValue(ctx.request.rawHeaders, name)
          return v === undefined ? `ip ${ctx.request.clientIp}` : `c ${v}`
        }
      case 'route':
        return (ctx) => `r ${ctx.route?.index ?? ''}`
      default:
        return (ctx) => ctx.request.clientIp
    }
  })
  const needsRoute = (typeof key === 'string' ? [key] : key).includes('route')
  if (parts.length === 1) return { of: parts[0] as KeyOf, needsRoute }
  return { of: (ctx) => parts.map((p) => p(ctx)).join('\u0000'), needsRoute }
}

/** The state a limit keeps: its GCRA table and its in-flight counts (kept across reloads by the shelf). */
interface LimitState {
  readonly store: RateLimitStore
  readonly inFlight: InFlight
}

/** One compiled limit. */
class Limit {
  readonly options: LimitOptions
  readonly key: KeyOf
  readonly needsRoute: boolean
  readonly policy: RatePolicy | undefined
  readonly maxDelayMs: number
  readonly state: LimitState
  /** `RateLimit-Policy` value. */
  readonly policyField: string | undefined
  /** 429s over the rate, and over `concurrent`; undefined without the instance's metrics (or without that limit). */
  readonly overRate: Cell | undefined
  readonly overConcurrent: Cell | undefined

  constructor(options: LimitOptions, state: LimitState, count?: (kind: 'rate' | 'concurrent') => Cell) {
    this.options = options
    this.overRate = options.rate === undefined ? undefined : count?.('rate')
    this.overConcurrent = options.concurrent === undefined ? undefined : count?.('concurrent')
    const key = compileKey(options.key)
    this.key = key.of
    this.needsRoute = key.needsRoute
    const perMs = durationToMs(options.per)
    this.policy = options.rate === undefined ? undefined : ratePolicy(options.rate, perMs, options.burst)
    this.maxDelayMs = options.action === 'delay' ? durationToMs(options.maxDelay) : 0
    this.state = state
    this.policyField =
      options.rate === undefined
        ? undefined
        : `"${options.name}";q=${options.rate};w=${Math.max(1, Math.ceil(perMs / 1000))}`
  }

  /** `RateLimit` value for a decision. */
  field(d: RateDecision): string {
    return `"${this.options.name}";r=${d.remaining};t=${Math.ceil(d.resetMs / 1000)}`
  }
}

/** What a request took from the limits, for `onLog` to give back and `onResponse` to report. */
interface Taken {
  held: { limit: Limit; key: string }[]
  fields: string[] | undefined
}

let instances = 0

export function create(options: RateLimitOptions, env: FilterEnv): Filter {
  const list = Array.isArray(options) ? options : [options]
  const where = env.level === 'listener' ? `listener ${env.listener}` : `listener ${env.listener} route ${env.route}`
  const metrics = env.metrics
  const route = routeLabel(env)
  const limits = list.map((o, i) => {
    const fresh = (): LimitState => ({ store: new MemoryRateStore(o.maxKeys), inFlight: new InFlight() })
    const state = env.shelf?.take(`rateLimit ${where} #${i} ${JSON.stringify(o)}`, fresh) ?? fresh()
    return new Limit(o, state, metrics && ((kind) => metrics.rateLimitOf(env.listener, route, o.name, kind)))
  })
  const slot = `rateLimit#${instances++}`
  // On a listener, rates whose key does not need the route are counted before routing (so that
  // requests no route takes count too); the rest, and every `concurrent`, once a route matched.
  const rates = limits.filter((l) => l.policy !== undefined)
  const early = env.level === 'listener' ? rates.filter((l) => !l.needsRoute) : []
  const late = rates.filter((l) => !early.includes(l))
  const concurrent = limits.filter((l) => l.options.concurrent !== undefined)
  const always = limits.some((l) => l.options.headers === 'always')

  const check = (ctx: FilterContext, which: readonly Limit[], counted: readonly Limit[]): HookResult => {
    let delayMs = 0
    for (const l of which) {
      const d = l.state.store.take(l.key(ctx), performance.now(), l.policy as RatePolicy, l.maxDelayMs)
      if (d instanceof Promise) throw new Error('rateLimit: an asynchronous store is not supported here')
      if (d.kind === 'deny') return refuse(l, d)
      if (d.kind === 'delay') delayMs = Math.max(delayMs, d.delayMs)
      if (l.options.headers === 'always') fieldsOf(ctx).push(`${l.policyField}`, l.field(d))
    }
    for (const l of counted) {
      const key = l.key(ctx)
      if (!l.state.inFlight.tryAcquire(key, l.options.concurrent as number)) return busy(l)
      takenOf(ctx).held.push({ limit: l, key })
    }
    if (delayMs <= 0) return undefined
    return new Promise<undefined>((resolve) => setTimeout(resolve, Math.ceil(delayMs), undefined))
  }

  const takenOf = (ctx: FilterContext): Taken => {
    const state = ctx.state as Record<string, Taken | undefined>
    let taken = state[slot]
    if (taken === undefined) {
      taken = { held: [], fields: undefined }
      state[slot] = taken
    }
    return taken
  }
  const fieldsOf = (ctx: FilterContext): string[] => {
    const taken = takenOf(ctx)
    taken.fields ??= []
    return taken.fields
  }

  const filter: Filter = {
    name: 'rateLimit',
    onRoute: (ctx) => check(ctx, late, concurrent),
    onLog: (ctx) => {
      const taken = (ctx.state as Record<string, Taken | undefined>)[slot]
      if (taken === undefined) return
      for (const { limit, key } of taken.held) limit.state.inFlight.release(key)
      taken.held.length = 0
    },
  }
  if (early.length > 0) filter.onRequest = (ctx) => check(ctx, early, [])
  if (always)
    filter.onResponse = (ctx, response: ResponseDraft) => {
      const fields = (ctx.state as Record<string, Taken | undefined>)[slot]?.fields
      if (fields === undefined) return
      for (let i = 0; i < fields.length; i += 2) {
        response.addHeader('ratelimit-policy', fields[i] as string)
        response.addHeader('ratelimit', fields[i + 1] as string)
      }
    }
  return filter
}

function refuse(l: Limit, d: RateDecision): Reject {
  if (l.overRate !== undefined) l.overRate.value++
  const headers = ['retry-after', String(Math.max(1, Math.ceil(d.delayMs / 1000)))]
  if (l.options.headers !== 'never' && l.policyField !== undefined)
    headers.push('ratelimit-policy', l.policyField, 'ratelimit', l.field(d))
  return { kind: 'reject', code: 'SWY_RATE_LIMITED', message: `rate limit ${l.options.name}`, headers }
}

const BUSY_HEADERS = Object.freeze(['retry-after', '1'])

function busy(l: Limit): Reject {
  if (l.overConcurrent !== undefined) l.overConcurrent.value++
  return {
    kind: 'reject',
    code: 'SWY_RATE_LIMITED',
    message: `concurrency limit ${l.options.name}`,
    headers: BUSY_HEADERS,
  }
}
