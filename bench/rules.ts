// What each built-in request rule costs per request, in nanoseconds, measured in-process on the real
// filters (no sockets) with the browser request of bench/layers.ts: each rule's hooks as the pipeline
// calls them, through runPhase, on a fresh per-request context. A row "context alone" measures that
// context (a stand-in for the request's PipelineContext: the 13 request headers copied into a draft).
// `npm run bench:layers` runs these rows after its own and gives each as a ratio to its request-head
// layer (scan + forwarding headers), measured in the same run.
// - mirror: the copy is handed to a stub dispatcher that answers at once, so the row is the filter's own
//   work (admission, the call, the handler) without the network; the copy's upstream request comes on top.
// - compress: the responseBody decision; on a compressible response it creates the compressor (the row's
//   main cost), which is destroyed unused here. Compressing the bytes is measured by bench/compress.ts.
// A module, not a script: it exports the rows and runs nothing.
import type { Transform } from 'node:stream'
import { silentLogger } from '../src/core/logger.js'
import { callOnResponse, callOnRoute, type PhaseCall, runPhase } from '../src/filters/chain.js'
import type { FilterEnv } from '../src/filters/env.js'
import { RULES } from '../src/filters/registry.js'
import type {
  Filter,
  FilterContext,
  ForwardedRequest,
  RequestView,
  RouteView,
  UpstreamDraft,
} from '../src/filters/types.js'
import { HeadDraft, removeHeaders } from '../src/l7/head-draft.js'
import { downstreamResponseHeaders } from '../src/l7/headers.js'
import type { UpstreamHandler } from '../src/l7/upstream.js'
import { Metrics } from '../src/metrics/index.js'
import { Stickiness } from '../src/sticky/index.js'
import type { UpstreamPool } from '../src/upstream/pool.js'
import { BROWSER_REQUEST, UPSTREAM_RESPONSE } from './lib/browser-request.js'
import type { NsRow } from './lib/ns-per-op.js'

/** Calls per round for the rule rows; the compressor row takes a twentieth of it. */
export const RULE_ITERATIONS = 200_000

/** The browser request of bench/layers.ts (13 headers), offering zstd too. */
const RAW = BROWSER_REQUEST.map((v) => (v === 'gzip, deflate, br' ? 'gzip, deflate, br, zstd' : v))
const URL = '/api/users/42/profile?tab=orders&page=2'

/** The upstream response head of bench/layers.ts, as the exchange hands it to onResponse (hop-by-hop removed). */
const RESPONSE: readonly string[] = downstreamResponseHeaders(UPSTREAM_RESPONSE, [])

class Request implements RequestView {
  readonly method = 'GET'
  readonly url: string
  readonly host = 'shop.example.com'
  readonly hostname = 'shop.example.com'
  readonly scheme = 'http' as const
  readonly protocol = 'http/1.1' as const
  readonly clientIp = '192.0.2.7'
  readonly peerIp = '192.0.2.7'
  readonly requestId = '0f8c3a4e-9b1d-4c55-8e2f-6a7b8c9d0e1f'
  readonly rawHeaders: readonly string[]

  constructor(url: string, raw: readonly string[]) {
    this.url = url
    this.rawHeaders = raw
  }

  get path(): string {
    const q = this.url.indexOf('?')
    return q < 0 ? this.url : this.url.slice(0, q)
  }

  get query(): string {
    const q = this.url.indexOf('?')
    return q < 0 ? '' : this.url.slice(q)
  }

  header(name: string): string | undefined {
    const lower = name.toLowerCase()
    const raw = this.rawHeaders
    for (let i = 0; i < raw.length; i += 2) if ((raw[i] as string).toLowerCase() === lower) return raw[i + 1]
    return undefined
  }
}

/** A stand-in for the request's PipelineContext: the same flat-array draft of the forwarded head. */
class Context implements FilterContext, UpstreamDraft {
  readonly listener = 'public'
  readonly request: Request
  readonly state: Record<string, unknown> = {}
  readonly route: RouteView = { name: 'api', index: 0, pool: 'api' }
  readonly server = '10.0.0.11:8080'
  readonly headers: string[]
  path: string
  host: string | undefined
  pool = 'api'

  constructor(request: Request) {
    this.request = request
    this.path = request.url
    this.headers = request.rawHeaders.slice(2)
  }

  get upstream(): UpstreamDraft {
    return this
  }

  usePool(pool: string): void {
    this.pool = pool
  }

  addPerTry(name: string, template: string): void {
    this.headers.push(name, template)
  }

  setHeader(name: string, value: string): void {
    this.removeHeader(name)
    this.headers.push(name, value)
  }

  addHeader(name: string, value: string): void {
    this.headers.push(name, value)
  }

  removeHeader(name: string): void {
    removeHeaders(this.headers, name)
  }
}

// --- pools for the rules that name one: stubs with real stickiness, and a dispatcher that answers at once

const backends = [1, 2, 3].map((n) => ({
  id: `10.0.0.1${n}:8080`,
  host: `10.0.0.1${n}`,
  port: 8080,
  weight: 1,
  backup: false,
  drain: false,
  origin: `http://10.0.0.1${n}:8080`,
}))
const cookieSettings = {
  name: 'SWYSID',
  ttlS: 3600,
  path: '/',
  domain: undefined,
  secure: false,
  httpOnly: true,
  sameSite: 'Lax' as const,
}
const secret = Buffer.from('a bench secret of 32 bytes......')
const sticky = (pool: string, mode: 'cookie' | 'client-ip') =>
  new Stickiness(pool, mode === 'cookie' ? { mode, cookie: cookieSettings, secret } : { mode }, backends as never)

/** An upstream connection set whose every call is answered at once with an empty 200. */
const stubConnections = {
  call(handler: UpstreamHandler) {
    return {
      active: false,
      abort() {},
      resume() {},
      send() {
        handler.onUpstreamHead(200, [], 'OK', true)
        handler.onUpstreamEnd([])
      },
    }
  },
}

function stubPool(name: string, stickiness?: Stickiness): UpstreamPool {
  const first = { backend: backends[0], connections: stubConnections }
  const tryLease = { end() {} }
  const lease = { first, begin: () => tryLease, end() {} }
  return {
    name,
    sticky: stickiness,
    config: { timeouts: { responseHeadersMs: 30_000, idleMs: 60_000 }, connections: { keepAliveMs: 4000 } },
    admit: () => ({ kind: 'go', lease }),
  } as unknown as UpstreamPool
}

const pools = new Map<string, UpstreamPool>([
  ['api', stubPool('api')],
  ['stable', stubPool('stable')],
  ['canary', stubPool('canary')],
  ['blue', stubPool('blue', sticky('blue', 'cookie'))],
  ['green', stubPool('green', sticky('green', 'cookie'))],
  ['ipa', stubPool('ipa', sticky('ipa', 'client-ip'))],
  ['ipb', stubPool('ipb', sticky('ipb', 'client-ip'))],
  ['shadow', stubPool('shadow')],
])
const env: FilterEnv = { listener: 'public', logger: silentLogger(), pools, pathPrefix: '/api/', level: 'route' }

/** Parses one rule's options with its schema (defaults filled) and compiles it, as a snapshot does. */
function build<K extends keyof typeof RULES>(name: K, options: unknown, e: FilterEnv = env): Filter {
  const entry = RULES[name] as unknown as {
    schema: { parse(v: unknown): unknown }
    create(o: unknown, e: FilterEnv): Filter
  }
  return entry.create(entry.schema.parse(options), e)
}

/** A request that carries a valid `blue` binding among its cookies. */
const boundCookie = (pools.get('blue')!.sticky as Stickiness).issue('10.0.0.11:8080', undefined)!.split(';')[0]!
const RAW_BOUND = RAW.map((v, i) => (RAW[i - 1] === 'Cookie' ? `${v}; ${boundCookie}` : v))

let keep = 0
const onForward: PhaseCall<ForwardedRequest> = (f, ctx, request) => f.onForward?.(ctx, request)
const FORWARDED: ForwardedRequest = { method: 'GET', path: '/users/42', headers: RAW, body: undefined, hasBody: false }

/** A row: runs `phases` of `filters` on a fresh context of `raw`, as the pipeline would. */
function row(
  name: string,
  filters: Filter[],
  phases: readonly ('route' | 'forward' | 'response' | 'body')[],
  raw: readonly string[] = RAW,
  response: readonly string[] = RESPONSE,
  iterations?: number,
): NsRow {
  const request = new Request(URL, raw)
  const route = phases.includes('route')
  const forward = phases.includes('forward')
  const out = phases.includes('response')
  const body = phases.includes('body')
  return {
    name,
    ...(iterations === undefined ? {} : { iterations }),
    run() {
      const ctx = new Context(request)
      if (route) {
        const o = runPhase(filters, callOnRoute, ctx, undefined)
        keep += (o as { kind: string }).kind.length
      }
      if (forward) for (const f of filters) onForward(f, ctx, FORWARDED)
      if (out || body) {
        const head = new HeadDraft(200, [...response])
        if (out) runPhase(filters, callOnResponse, ctx, head)
        if (body)
          for (const f of filters) {
            const t: Transform | undefined = f.responseBody?.(ctx, head)
            if (t !== undefined) {
              t.destroy()
              keep++
            }
          }
        keep += head.headers.length
      }
      keep += ctx.headers.length + ctx.path.length
    },
  }
}

const headersRule = build('headers', {
  request: { set: { 'x-tenant': 'acme', 'x-client': '{client_ip}', 'x-request': '{request_id}' }, remove: ['cookie'] },
  response: { remove: ['server'], set: { 'x-served-by': '{server}' } },
  xRealIp: true,
})
const SMALL_RESPONSE = RESPONSE.map((v, i) => (RESPONSE[i - 1] === 'Content-Length' ? '512' : v))

/** The rows of the table, in order. */
export const ruleRows: readonly NsRow[] = [
  row('context alone (every row below includes it)', [], []),
  row(
    'access: 3 allowed ranges and 1 denied address, an allowed client (onRoute)',
    [build('access', { allow: ['192.0.2.0/24', '10.0.0.0/8', '2001:db8::/32'], deny: ['192.0.2.99'] })],
    ['route'],
  ),
  row(
    'access: a denied client, counted in switchyard_access_denied_total (onRoute)',
    [build('access', { deny: ['192.0.2.0/24'] }, { ...env, metrics: new Metrics() })],
    ['route'],
  ),
  row(
    'rateLimit: client-ip, GCRA in its key table, within the limit (onRoute)',
    [build('rateLimit', { rate: 1_000_000_000, per: '1s', burst: 50 })],
    ['route'],
  ),
  row(
    'rateLimit: header:x-api-key (absent: keyed by address), within the limit (onRoute)',
    [build('rateLimit', { rate: 1_000_000_000, per: '1s', key: 'header:x-api-key' })],
    ['route'],
  ),
  row(
    'redirect: prefix, query kept (onRoute builds Location)',
    [build('redirect', { prefix: '/new/', status: 301 })],
    ['route'],
  ),
  row('respond: a static answer (onRoute)', [build('respond', { body: 'User-agent: *\nDisallow:\n' })], ['route']),
  row(
    'pools: 95/5 split, random draw (onRoute)',
    [
      build('pools', [
        { pool: 'stable', weight: 95 },
        { pool: 'canary', weight: 5 },
      ]),
    ],
    ['route'],
  ),
  row(
    'pools: cookie-sticky sides, a request bound by its cookie',
    [
      build('pools', [
        { pool: 'blue', weight: 50 },
        { pool: 'green', weight: 50 },
      ]),
    ],
    ['route'],
    RAW_BOUND,
  ),
  row(
    'pools: client-ip-sticky sides (hash of the address)',
    [
      build('pools', [
        { pool: 'ipa', weight: 50 },
        { pool: 'ipb', weight: 50 },
      ]),
    ],
    ['route'],
  ),
  row('rewrite: stripPrefix (onRoute)', [build('rewrite', { stripPrefix: '/api' })], ['route']),
  row(
    'rewrite: regex with a group, and host (onRoute)',
    [
      build('rewrite', {
        regex: { pattern: '^/api/users/(\\d+)/profile$', replacement: '/profiles/$1' },
        host: 'users.internal',
      }),
    ],
    ['route'],
  ),
  row('headers: 3 request sets (2 placeholders), 1 remove, X-Real-IP (onRoute)', [headersRule], ['route']),
  row('headers: 1 response remove, 1 set with {server} (onResponse)', [headersRule], ['response']),
  row('mirror: not copied (percent 0)', [build('mirror', { pool: 'shadow', percent: 0 })], ['forward']),
  row('mirror: one copy to a stub dispatcher (onForward)', [build('mirror', { pool: 'shadow' })], ['forward']),
  row(
    'compress: a response below minSize (responseBody decision)',
    [build('compress', true)],
    ['body'],
    RAW,
    SMALL_RESPONSE,
  ),
  row(
    'compress: a compressible response (decision + compressor created)',
    [build('compress', { encodings: ['gzip'] })],
    ['body'],
    RAW,
    RESPONSE,
    RULE_ITERATIONS / 20,
  ),
  row(
    'the issue’s api route: rewrite + headers + compress (decision on a small body)',
    [build('rewrite', { stripPrefix: '/api' }), headersRule, build('compress', true)],
    ['route', 'response', 'body'],
    RAW,
    SMALL_RESPONSE,
  ),
]

/** What the rows computed, so that none of their work can be optimised away. */
export const ruleResults = (): number => keep
