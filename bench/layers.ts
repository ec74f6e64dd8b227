// What each layer of Switchyard's request path costs on its own, in nanoseconds per request, measured
// in-process on the real functions with realistic inputs (no sockets): head scan and forwarding
// headers, routing (1 catch-all route, and a 12-route table matched at its last route), balancing,
// sticky sessions (a cookie check, a new session, a header ring lookup), request explanations (off,
// and on for a request that does not ask), metrics updates, and the access-log line (written to a
// sink that drops it). Then each built-in filter (rule) of the pipeline,
// the rows of bench/rules.ts. Every row is also given over the request-head layer, the first row,
// measured in the same run. The end-to-end view of the same layers (bare proxy → no access log → full)
// is in `npm run bench`. Tracing (W3C trace context, and span export over OTLP with the OpenTelemetry
// SDK) and the access log's text format and sampling have rows of their own.
// Usage: npm run bench:layers [-- --only TEXT]   (--only: the rows whose name holds TEXT, and the
// reference row)
import os from 'node:os'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { createBalancer } from '../src/balancer/index.js'
import { validateConfig } from '../src/config/index.js'
import { ExplainPolicy } from '../src/explain/index.js'
import { AccessLog, sampledIn } from '../src/l7/access-log.js'
import { buildTrust, downstreamResponseHeaders, scanRequestHead, upstreamRequestHeaders } from '../src/l7/headers.js'
import { DEFAULT_PATH_POLICY, normalizeUrl } from '../src/l7/path.js'
import { hostWithoutPort, pathOf, Router } from '../src/l7/router.js'
import { unwatchSlow, type Watched, watchSlow } from '../src/l7/slow-clients.js'
import { InFlight } from '../src/limits/index.js'
import { Metrics } from '../src/metrics/index.js'
import { Stickiness } from '../src/sticky/index.js'
import { loadOtlpExport } from '../src/tracing/otlp.js'
import { type SpanFacts, Tracing } from '../src/tracing/tracer.js'
import { BROWSER_REQUEST as RAW, UPSTREAM_RESPONSE } from './lib/browser-request.js'
import { type NsRow, nsPerOp } from './lib/ns-per-op.js'
import { RULE_ITERATIONS, ruleResults, ruleRows } from './rules.js'

const ITERATIONS = 1_000_000
const ROUNDS = 5
const { values: flags } = parseArgs({ options: { only: { type: 'string' } } })
const only = flags.only

const RESPONSE = UPSTREAM_RESPONSE

const cfg = validateConfig({
  listeners: [
    {
      name: 'l',
      listen: '127.0.0.1:0',
      routes: [
        ...Array.from({ length: 11 }, (_, i) => ({
          match: { host: `svc${i}.example.com`, pathPrefix: `/v${i}/` },
          pool: 'p',
        })),
        { match: { host: '*.example.com', pathPrefix: '/' }, pool: 'p' },
      ],
    },
  ],
  pools: [{ name: 'p', servers: ['http://127.0.0.1:1', 'http://127.0.0.1:2', 'http://127.0.0.1:3'] }],
})
if (!cfg.ok) throw new Error('bad bench config')
const routes = cfg.config.listeners[0]!.routes
const wide = new Router(routes.map((r) => ({ match: r.match, target: r.pool ?? '' })))
const single = new Router([{ match: routes[routes.length - 1]!.match, target: 'p' }])
const policy = { xForwarded: true, forwarded: true, ...buildTrust([]) }
const balancer = createBalancer({ algorithm: 'round-robin' })
balancer.update(cfg.config.pools[0]!.backends)
const metrics = new Metrics()
const route = metrics.forRoute('l', 'p')
const server = metrics.forServer('p', '127.0.0.1:1')
const sink = { write: () => true }
const accessLog = AccessLog.of(pino({ level: 'info' }, sink))!
const combinedLog = AccessLog.of(pino({ level: 'info' }, sink), 'combined-extended')!
const tracingSettings = { sampleRatio: 1, serviceName: 'bench', otlp: undefined }
const tracing = new Tracing(tracingSettings, undefined)
// Span export to a port nothing answers, with a 1-hour batch delay: nothing is sent while the rows run;
// once the queue holds maxQueueSize spans, the rest are dropped by the batch processor (a length check).
const spans = await loadOtlpExport(
  {
    ...tracingSettings,
    otlp: {
      endpoint: 'http://127.0.0.1:9/v1/traces',
      headers: {},
      timeoutMs: 1000,
      maxQueueSize: 2048,
      maxBatchSize: 512,
      delayMs: 3_600_000,
    },
  },
  pino({ level: 'silent' }),
)
const exporting = new Tracing(tracingSettings, spans)
const INCOMING = [...RAW, 'traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01']
const FACTS: SpanFacts = {
  method: 'GET',
  path: '/cart',
  scheme: 'http',
  protocol: 'http/1.1',
  clientIp: '192.0.2.7',
  host: 'shop.example.com',
  port: 8080,
  userAgent: 'Mozilla/5.0',
  status: 200,
  code: undefined,
  error: undefined,
  retries: 0,
  listener: 'l',
  route: 'shop',
  pool: 'p',
  server: '127.0.0.1:1',
  serverAddress: '127.0.0.1:1',
  requestId: '0f8c3a4e-9b1d-4c55-8e2f-6a7b8c9d0e1f',
}

let keep = 0

const backends = cfg.config.pools[0]!.backends
const stickyCookie = new Stickiness(
  'p',
  {
    mode: 'cookie',
    cookie: {
      name: 'SWYSID',
      ttlS: 3600,
      path: '/',
      domain: undefined,
      secure: false,
      httpOnly: true,
      sameSite: 'Lax',
    },
    secret: Buffer.from('a bench secret of 32 bytes......'),
  },
  backends,
)
const issued = stickyCookie.issue('127.0.0.1:1', undefined)!.split(';')[0]!
/** The browser request with a sticky cookie among its cookies, and a tenant header. */
const STICKY_RAW = [
  ...RAW.slice(0, 12),
  'Cookie',
  `session=0123456789abcdef; ${issued}; theme=dark`,
  ...RAW.slice(14),
  'X-Tenant',
  'acme',
]
const stickyHeader = new Stickiness('p', { mode: 'header', header: 'x-tenant' }, backends)

/** Matches one browser request (host and path with a query) through `router`. */
function routingLayer(name: string, router: Router<string>): NsRow {
  return {
    name,
    run() {
      const facts = {
        method: 'GET',
        host: hostWithoutPort('shop.example.com'),
        path: pathOf('/cart?x=1'),
        rawHeaders: RAW,
      }
      keep += router.match(facts) ? 1 : 0
    },
  }
}
/** A request as the slow-client watch holds it (never judged here: the watch ticks once a second). */
const watched: Watched = {
  slowSlot: -1,
  client: {} as Watched['client'],
  policy: { windowMs: 10_000, minBodyRate: 512, minSendRate: 512 },
  sendProgress: () => undefined,
  tooSlow() {},
}
const share = new InFlight()
/** What Inbound reads of a listener without `explain` (off), and the policy of one with it. */
const explainOff: { readonly explain: ExplainPolicy | undefined } = { explain: ExplainPolicy.of(undefined) }
const explainOn = new ExplainPolicy({ trusted: ['10.0.0.0/8'], token: undefined })
const plainHead = scanRequestHead(RAW, 'x-request-id')

/** The request-head layer, with `trace` run on the head before the forwarding headers (tracing on). */
function headWithTracing(raw: readonly string[], trace: ((h: ReturnType<typeof scanRequestHead>) => void) | undefined) {
  const head = scanRequestHead(raw, 'x-request-id')
  if (trace !== undefined) trace(head)
  keep += upstreamRequestHeaders(
    head,
    { clientIp: '192.0.2.7', proto: 'http', requestId: 'req-1', requestIdHeader: 'x-request-id' },
    policy,
  ).headers.length
}

/** One request's access entry, made per call as request-end.ts makes it (one literal, every field). */
function accessEntry(traceId: string | undefined, spanId: string | undefined, userAgent: string | undefined) {
  return {
    requestId: '0f8c3a4e-9b1d-4c55-8e2f-6a7b8c9d0e1f',
    listener: 'l',
    client: '192.0.2.7',
    method: 'GET',
    url: '/cart?x=1',
    status: 200,
    pool: 'p',
    upstream: '127.0.0.1:1',
    bytesIn: 0,
    bytesOut: 5120,
    ttfbMs: 0.731,
    durationMs: 0.912,
    code: undefined,
    error: undefined,
    aborted: false,
    protocol: 'http/1.1',
    traceId,
    spanId,
    referer: userAgent === undefined ? undefined : 'https://shop.example.com/',
    userAgent,
    user: undefined,
  }
}
const UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'

const layers: readonly NsRow[] = [
  {
    name: 'request head: scan + forwarding headers (13 headers in)',
    run() {
      headWithTracing(RAW, undefined)
    },
  },
  {
    name: 'tracing on: request head + a new trace (ids, traceparent)',
    run() {
      headWithTracing(RAW, (h) => tracing.begin(h, 0))
    },
  },
  {
    name: 'tracing on: request head + joining an incoming traceparent (parse, replace)',
    run() {
      headWithTracing(INCOMING, (h) => tracing.begin(h, 0))
    },
  },
  {
    name: 'tracing with OTLP export: request head + an SDK span started and ended (attributes)',
    iterations: 100_000,
    run() {
      headWithTracing(INCOMING, (h) => {
        exporting.begin(h, 0).span?.end(FACTS, 0)
      })
    },
  },
  {
    name: 'response head: filter (7 headers)',
    run() {
      keep += downstreamResponseHeaders(RESPONSE, ['x-request-id', 'req-1']).length
    },
  },
  routingLayer('routing: 1 catch-all route', single),
  routingLayer('routing: 12 routes, match at the last', wide),
  {
    name: 'balancing: round-robin pick over 3 servers',
    run() {
      for (const b of balancer.pick({ clientIp: '192.0.2.7' })) {
        keep += b.port
        break
      }
    },
  },
  {
    name: 'sticky cookie: a request bound by a valid cookie (parse; HMAC checked once per value)',
    run() {
      const bound = stickyCookie.bound({ clientIp: '192.0.2.7', rawHeaders: STICKY_RAW, url: '/cart' })
      keep += typeof bound === 'string' ? bound.length : 0
    },
  },
  {
    name: 'sticky cookie: a new session (no cookie; sign + Set-Cookie)',
    run() {
      keep += stickyCookie.bound({ clientIp: '192.0.2.7', rawHeaders: RAW, url: '/cart' }) === undefined ? 1 : 0
      keep += stickyCookie.issue('127.0.0.1:1', undefined)?.length ?? 0
    },
  },
  {
    name: 'sticky header: ring lookup of an X-Tenant value',
    run() {
      for (const b of stickyHeader.bound({ clientIp: '192.0.2.7', rawHeaders: STICKY_RAW, url: '/cart' }) as Iterable<{
        port: number
      }>) {
        keep += b.port
        break
      }
    },
  },
  {
    name: 'explain off: the one test a request pays (the listener has no `explain`)',
    run() {
      const policy = explainOff.explain
      keep += policy === undefined ? 1 : policy.check(RAW, plainHead, '192.0.2.7') === undefined ? 2 : 3
    },
  },
  {
    name: 'explain on, a request that does not ask: its head scanned for the two headers (13 headers)',
    run() {
      keep += explainOn.check(RAW, plainHead, '192.0.2.7') === undefined ? 1 : 0
    },
  },
  {
    name: 'security default: path normalization, a plain path (one scan)',
    run() {
      keep += normalizeUrl('/api/users/42/profile?tab=orders&page=2', DEFAULT_PATH_POLICY).kind.length
    },
  },
  {
    name: 'security default: path normalization, /x/../%61pi//users?q=1 (decode, merge, dots)',
    run() {
      keep += normalizeUrl('/x/../%61pi//users?q=1', DEFAULT_PATH_POLICY).kind.length
    },
  },
  {
    name: "security default: slow-client watch (the request's insert and delete)",
    run() {
      watchSlow(watched)
      unwatchSlow(watched)
    },
  },
  {
    name: "security default: a pool's client share (count up and down per address)",
    run() {
      share.tryAcquire('192.0.2.7', Number.POSITIVE_INFINITY)
      share.release('192.0.2.7')
    },
  },
  {
    name: 'metrics: status class, server count, duration histogram',
    run() {
      route.byClass[1]!.value++
      server.requests.value++
      route.duration.observe(0.0013)
    },
  },
  {
    name: 'metrics: per-server try (in flight, duration and TTFB histograms, two clock reads)',
    run() {
      const start = performance.now()
      server.inFlight.value++
      server.ttfb.observe((performance.now() - start) / 1000)
      server.inFlight.value--
      server.duration.observe((performance.now() - start) / 1000)
    },
  },
  {
    name: 'access log: one line built and batched',
    run() {
      accessLog.write(accessEntry(undefined, undefined, undefined))
    },
  },
  {
    name: 'access log: one line with trace and span ids',
    run() {
      accessLog.write(accessEntry('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', undefined))
    },
  },
  {
    name: 'access log: one combined-extended line (with Referer, User-Agent)',
    run() {
      combinedLog.write(accessEntry(undefined, undefined, UA))
    },
  },
  {
    name: 'access log sampling: the draw for a success at sample 0.1',
    run() {
      keep += sampledIn(0.1) ? 1 : 0
    },
  },
]

const load = (): string =>
  os
    .loadavg()
    .map((n) => n.toFixed(2))
    .join(', ')
const loadBefore = load()

/**
 * Prints one table: each row's median ns/op and its ratio to `reference` (the first row's when 0).
 * With --only, the rows whose name holds its text (and the first row, when it is the reference).
 */
function table(head: string, rows: readonly NsRow[], iterations: number, reference: number): number {
  process.stdout.write(`| ${head} | ns/op | × reference |\n|---|--:|--:|\n`)
  let ref = reference
  for (const [i, row] of rows.entries()) {
    if (only !== undefined && !row.name.includes(only) && !(i === 0 && ref === 0)) continue
    const ns = nsPerOp(row.run, row.iterations ?? iterations, ROUNDS)
    if (ref === 0) ref = ns
    process.stdout.write(`| ${row.name} | ${ns.toFixed(0)} | ${(ns / ref).toFixed(2)} |\n`)
  }
  return ref
}

process.stdout.write(
  `Per-request cost of each layer, ns/op (median of ${ROUNDS} rounds of ${ITERATIONS.toLocaleString('en')}), Node ${process.version}, load average ${loadBefore} at the start\n\n`,
)
const reference = table('layer', layers, ITERATIONS, 0)
accessLog.flush()
combinedLog.flush()
await spans.shutdown().catch(() => {})
if (only !== undefined && !ruleRows.some((r) => r.name.includes(only))) process.exit(0)
process.stdout.write(
  `\nPer-request cost of each built-in rule (bench/rules.ts), ns/op (median of ${ROUNDS} rounds of ${RULE_ITERATIONS.toLocaleString('en')}; the compressor row ${(RULE_ITERATIONS / 20).toLocaleString('en')}), through runPhase on a fresh per-request context; × reference is over the request-head layer above\n\n`,
)
table('rule, hook', ruleRows, RULE_ITERATIONS, reference)
process.stdout.write(`\nload average ${load()} at the end\n`)
// Keeps the results observable, so that no row is optimised away.
if (keep + ruleResults() === 42) process.stdout.write('\n')
