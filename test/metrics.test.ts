/**
 * Proof that /metrics tells the truth: real servers (one that answers 503, one that resets, one that
 * holds its answers), real clients, and a scrape over the admin API whose every counter matches the
 * traffic exactly, and whose histograms hold each request's duration within bucket resolution (each
 * observation lies between bounds the test measured itself). Retries, a spent retry budget, an
 * outlier ejection, a full queue, rate-limit and access rejections and runtime overrides are caused on
 * purpose. Once in a single process, once with `workers: 2`, where /metrics is the exact sum of the
 * workers (each request goes on a new connection, so that the kernel spreads them).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../src/config/index.js'
import { silentLogger } from '../src/core/logger.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { Supervisor } from '../src/server/supervisor.js'
import { nameHandler, startBackend, type TestBackend } from './helpers/backends.js'
import {
  assertHistogramHolds,
  assertMatchesTable,
  histogram,
  parseMetrics,
  type Scrape,
  series,
  sum,
} from './helpers/prometheus.js'
import { waitFor } from './helpers/wait.js'

interface Backends {
  readonly good: TestBackend
  readonly sick: TestBackend
  readonly plain: TestBackend
  readonly broken: TestBackend
  readonly good2: TestBackend
  readonly resetter: TestBackend
  readonly slow: TestBackend
  /** Lets the slow server answer what it holds, and everything after. */
  release(): void
}

async function startAll(): Promise<Backends> {
  let release!: () => void
  const released = new Promise<void>((resolve) => {
    release = resolve
  })
  const status503 = (_req: unknown, res: import('node:http').ServerResponse) => {
    res.writeHead(503, { 'content-type': 'text/plain' })
    res.end('sick')
  }
  const [good, sick, plain, broken, good2, resetter, slow] = await Promise.all([
    startBackend('good'),
    startBackend('sick', (req, res) => {
      req.resume()
      status503(req, res)
    }),
    startBackend('plain'),
    startBackend('broken', (req, res) => {
      req.resume()
      status503(req, res)
    }),
    startBackend('good2'),
    startBackend('resetter', (req) => req.socket.destroy()),
    startBackend('slow', (req, res, b) => {
      void released.then(() => nameHandler(req, res, b))
    }),
  ])
  return {
    good: good as TestBackend,
    sick: sick as TestBackend,
    plain: plain as TestBackend,
    broken: broken as TestBackend,
    good2: good2 as TestBackend,
    resetter: resetter as TestBackend,
    slow: slow as TestBackend,
    release,
  }
}

function configOf(b: Backends, extra: Partial<ConfigInput>): ConfigInput {
  const server = (t: TestBackend) => ({ url: t.url, name: t.name })
  return {
    admin: { listen: '127.0.0.1:0' },
    listeners: [
      {
        name: 'web',
        listen: '127.0.0.1:0',
        // Listener rules that refuse nobody here: their series are there, at 0, with route="".
        access: { deny: ['192.0.2.0/24'] },
        rateLimit: { name: 'everyone', rate: 10_000, burst: 10_000 },
        routes: [
          {
            name: 'limited',
            match: { pathPrefix: '/limited' },
            pool: 'plain',
            rateLimit: { name: 'per-client', rate: 1, per: '1h', burst: 2 },
          },
          { name: 'private', match: { pathPrefix: '/private' }, pool: 'plain', access: { allow: ['10.0.0.0/8'] } },
          { match: { pathPrefix: '/api' }, pool: 'api' },
          { match: { pathPrefix: '/flaky' }, pool: 'flaky' },
          { match: { pathPrefix: '/lonely' }, pool: 'lonely' },
          { match: { pathPrefix: '/slow' }, pool: 'slow' },
          { pool: 'web' },
        ],
      },
    ],
    pools: [
      {
        name: 'web',
        servers: [server(b.good), server(b.sick)],
        retries: { attempts: 1, on: ['503'] },
        outlierDetection: { consecutiveFailures: 3, baseEjectionTime: '10m', maxEjectionPercent: 50 },
      },
      { name: 'plain', servers: [server(b.plain)] },
      // No budget at all: every retry that would be due is refused, and counted.
      { name: 'api', servers: [server(b.broken)], retries: { on: ['503'], budget: { percent: 0, minRetries: 0 } } },
      { name: 'flaky', servers: [server(b.good2), server(b.resetter)], retries: { attempts: 1 } },
      // A retry is due, but there is no other server: not retried, so not counted as one.
      { name: 'lonely', servers: [server(b.resetter)] },
      {
        name: 'slow',
        servers: [server(b.slow)],
        // Every request comes from 127.0.0.1: no per-client share, or the queue would never fill.
        connections: { maxPerServer: 1, maxPending: 1, maxClientShare: 1 },
        queue: { size: 2, timeout: '60s' },
      },
    ],
    ...extra,
  }
}

/** What the clients saw: each answer's status, and each request's duration bounds (seconds). */
class Seen {
  readonly statuses = new Map<string, number[]>()
  readonly latencies = new Map<string, number[]>()

  count(what: string, status?: number): number {
    const all = this.statuses.get(what) ?? []
    return status === undefined ? all.length : all.filter((s) => s === status).length
  }

  bounds(...whats: string[]): { low: number; high: number }[] {
    return whats.flatMap((w) => (this.latencies.get(w) ?? []).map((high) => ({ low: 0, high })))
  }

  /** One request on a connection of its own; its status, and the time around it. */
  async get(what: string, url: string): Promise<{ status: number; body: string }> {
    const start = performance.now()
    const r = await fetch(url, { headers: { connection: 'close' } })
    const body = await r.text()
    const seconds = (performance.now() - start) / 1000
    this.statuses.set(what, [...(this.statuses.get(what) ?? []), r.status])
    this.latencies.set(what, [...(this.latencies.get(what) ?? []), seconds])
    return { status: r.status, body }
  }
}

const N = 12 // to pool web (good and sick)
const K = 4 // to pool api (broken: every retry refused by the budget)
const M = 8 // to pool flaky (good2 and resetter)
const L = 7 // to route limited (1 + burst 2 pass, per process: 7 over two workers refuses at least one)
const P = 3 // to route private (all 403)
const R = 2 // to pool lonely (resetter alone: 502)

interface Run {
  readonly seen: Seen
  /** The slow pool while it held its requests. */
  readonly held: Scrape
  /** Requests the queue held, and the least each waited (s). */
  readonly queued: number
  readonly minWaitS: number
  /** Requests the slow pool got at once. */
  readonly slowRequests: number
}

/** The traffic, then (with the slow pool's requests held until every one is in place) the full queue. */
async function drive(base: string, b: Backends, scrape: () => Promise<Scrape>, slowRequests: number): Promise<Run> {
  const seen = new Seen()
  for (let i = 0; i < N; i++) assert.equal((await seen.get('web', `${base}/`)).body, 'good')
  for (let i = 0; i < K; i++) assert.equal((await seen.get('api', `${base}/api`)).status, 503)
  for (let i = 0; i < M; i++) assert.equal((await seen.get('flaky', `${base}/flaky`)).body, 'good2')
  for (let i = 0; i < L; i++) await seen.get('limited', `${base}/limited`)
  for (let i = 0; i < P; i++) assert.equal((await seen.get('private', `${base}/private`)).status, 403)
  for (let i = 0; i < R; i++) assert.equal((await seen.get('lonely', `${base}/lonely`)).status, 502)
  // The queue: each process takes one request to the server, one more waiting for its connection
  // (maxPending 1), two in the pool's queue, and answers 503 SWY_OVERLOADED beyond.
  const slow = Array.from({ length: slowRequests }, () => seen.get('slow', `${base}/slow`))
  let held: Scrape | undefined
  await waitFor(async () => {
    const s = await scrape()
    const rejected = seen.count('slow', 503)
    const inFlight = sum(s, 'switchyard_http_requests_in_flight', { listener: 'web' })
    const atServer = sum(s, 'switchyard_upstream_requests_in_flight', { pool: 'slow' })
    const pending = sum(s, 'switchyard_upstream_requests_pending', { pool: 'slow' })
    held = s
    return rejected + inFlight === slowRequests && b.slow.requests.length === atServer - pending
  }, 'every slow request in place: at the server, waiting for its connection, queued, or answered 503')
  // The scrape that found every request in place has ended: the queued ones were queued by now (with
  // workers, a worker may have answered it a little after it began).
  const fullAt = performance.now()
  const queued = sum(held as Scrape, 'switchyard_pool_queue_depth', { pool: 'slow' })
  // Three more scrapes while they wait, so that the lower bound on each wait is more than a clock tick.
  for (let i = 0; i < 3; i++) await scrape()
  const releasedAt = performance.now()
  b.release()
  const answers = await Promise.all(slow)
  for (const a of answers) assert.ok(a.status === 200 || a.status === 503, String(a.status))
  return { seen, held: held as Scrape, queued, minWaitS: (releasedAt - fullAt) / 1000, slowRequests }
}

/**
 * Every counter of the scrape against the traffic, exactly; the histograms within bucket resolution.
 * `ejections`: how many times the sick server was ejected (once per process that saw it fail 3 times).
 */
function checkScrape(s: Scrape, b: Backends, run: Run, ejections: number): void {
  const { seen } = run
  assertMatchesTable(s)
  const web = { listener: 'web' }
  const requests = 'switchyard_http_requests_total'
  assert.equal(sum(s, requests, { ...web, pool: 'web', class: '2xx' }), N)
  assert.equal(sum(s, requests, { ...web, pool: 'api', class: '5xx' }), K)
  assert.equal(sum(s, requests, { ...web, pool: 'flaky', class: '2xx' }), M)
  const limitedPassed = seen.count('limited', 200)
  const limited429 = seen.count('limited', 429)
  assert.equal(limitedPassed + limited429, L)
  assert.ok(limited429 > 0, 'some requests over the rate')
  assert.equal(sum(s, requests, { ...web, pool: 'plain', class: '2xx' }), limitedPassed)
  assert.equal(sum(s, requests, { ...web, pool: 'plain', class: '4xx' }), limited429 + P)
  const slowOk = seen.count('slow', 200)
  const overloaded = seen.count('slow', 503)
  assert.equal(slowOk + overloaded, run.slowRequests)
  assert.equal(sum(s, requests, { ...web, pool: 'slow', class: '2xx' }), slowOk)
  assert.equal(sum(s, requests, { ...web, pool: 'slow', class: '5xx' }), overloaded)
  assert.equal(sum(s, requests, { ...web, pool: 'lonely', class: '5xx' }), R)
  assert.equal(sum(s, requests), N + K + M + L + P + R + run.slowRequests, 'nothing else counted')

  // Errors: exactly Switchyard's own refusals (the relayed 503s of api are the server's answers).
  const errors = 'switchyard_errors_total'
  assert.equal(sum(s, errors, { pool: 'slow', code: 'SWY_OVERLOADED' }), overloaded)
  assert.equal(sum(s, errors, { pool: 'plain', code: 'SWY_RATE_LIMITED' }), limited429)
  assert.equal(sum(s, errors, { pool: 'plain', code: 'SWY_FORBIDDEN' }), P)
  assert.equal(sum(s, errors, { pool: 'lonely', code: 'SWY_UPSTREAM_RESET' }), R)
  assert.equal(sum(s, errors), overloaded + limited429 + P + R)
  assert.equal(
    sum(s, 'switchyard_rate_limit_rejections_total', { ...web, route: 'limited', limit: 'per-client', kind: 'rate' }),
    limited429,
  )
  assert.equal(sum(s, 'switchyard_rate_limit_rejections_total'), limited429)
  assert.equal(sum(s, 'switchyard_access_denied_total', { ...web, route: 'private' }), P)
  assert.equal(sum(s, 'switchyard_access_denied_total'), P)
  assert.deepEqual(
    series(s, 'switchyard_access_denied_total', { route: '' }).map((x) => [x.labels.listener, x.value]),
    [['web', 0]],
  )
  assert.deepEqual(
    series(s, 'switchyard_rate_limit_rejections_total', { route: '' }).map((x) => [x.labels.limit, x.value]),
    [['everyone', 0]],
  )

  // Per server: what each server saw, exactly.
  for (const t of [b.good, b.sick, b.plain, b.broken, b.good2, b.resetter, b.slow])
    assert.equal(sum(s, 'switchyard_upstream_requests_total', { server: t.name }), t.requests.length, t.name)
  assert.equal(b.good.requests.length, N, 'every request to web ended at good')
  assert.equal(b.good2.requests.length, M, 'every request to flaky ended at good2')
  const sickTries = b.sick.requests.length
  const resets = b.resetter.requests.length - R
  assert.ok(sickTries >= 3 && resets > 0, `sick ${sickTries}, resetter ${resets}`)
  const upErrors = 'switchyard_upstream_errors_total'
  assert.equal(sum(s, upErrors, { pool: 'web', server: 'sick', code: '5xx' }), sickTries)
  assert.equal(sum(s, upErrors, { pool: 'api', server: 'broken', code: '5xx' }), K)
  assert.equal(sum(s, upErrors, { pool: 'flaky', server: 'resetter', code: 'SWY_UPSTREAM_RESET' }), resets)
  assert.equal(sum(s, upErrors, { pool: 'lonely', server: 'resetter', code: 'SWY_UPSTREAM_RESET' }), R)
  assert.equal(sum(s, upErrors), sickTries + K + resets + R)

  // Retries: each sick 503 and each reset went to the other server; api's were refused by its budget.
  const retries = 'switchyard_upstream_retries_total'
  assert.equal(sum(s, retries, { pool: 'web', server: 'sick', reason: 'status' }), sickTries)
  assert.equal(sum(s, retries, { pool: 'flaky', server: 'resetter', reason: 'reset' }), resets)
  assert.equal(sum(s, retries), sickTries + resets)
  assert.equal(sum(s, 'switchyard_upstream_retry_budget_exhausted_total', { pool: 'api' }), K)
  assert.equal(sum(s, 'switchyard_upstream_retry_budget_exhausted_total'), K)

  // The ejection of sick, still in force (10 minutes).
  assert.equal(
    sum(s, 'switchyard_upstream_ejections_total', { pool: 'web', server: 'sick', reason: 'outlier' }),
    ejections,
  )
  assert.equal(sum(s, 'switchyard_upstream_ejections_total'), ejections)
  assert.equal(sum(s, 'switchyard_upstream_ejected_servers', { pool: 'web', reason: 'outlier' }), ejections)
  assert.equal(sum(s, 'switchyard_upstream_ejected_servers'), ejections)

  // The queue, while the slow server held its requests: in flight = at the server + pending + queued.
  const h = run.held
  const atServer = sum(h, 'switchyard_upstream_requests_in_flight', { pool: 'slow', server: 'slow' })
  const pending = sum(h, 'switchyard_upstream_requests_pending', { pool: 'slow', server: 'slow' })
  assert.ok(pending >= 1 && run.queued >= 2, `pending ${pending}, queued ${run.queued}: the queue filled`)
  assert.equal(sum(h, 'switchyard_http_requests_in_flight', web), atServer + run.queued)
  assert.equal(sum(h, 'switchyard_http_requests_in_flight', web), run.slowRequests - overloaded)
  assert.equal(sum(h, 'switchyard_upstream_requests_pending'), pending, 'only the slow pool waits')
  assert.equal(sum(h, 'switchyard_pool_queue_depth'), run.queued, 'only the slow pool queues')
  // ...and once it answered, nothing waits, nothing is in flight.
  for (const gauge of [
    'switchyard_pool_queue_depth',
    'switchyard_upstream_requests_pending',
    'switchyard_upstream_requests_in_flight',
    'switchyard_http_requests_in_flight',
  ])
    assert.equal(sum(s, gauge), 0, gauge)

  // Histograms: every observation between the bounds the test measured.
  const latencies = seen.bounds('web', 'api', 'flaky', 'limited', 'private', 'lonely', 'slow')
  assertHistogramHolds(histogram(s, 'switchyard_http_request_duration_seconds', web), latencies, 'request duration')
  const slowMax = Math.max(...seen.bounds('slow').map((x) => x.high))
  assertHistogramHolds(
    histogram(s, 'switchyard_pool_queue_wait_seconds', { pool: 'slow' }),
    Array.from({ length: run.queued }, () => ({ low: run.minWaitS, high: slowMax })),
    'queue wait',
  )
  const tries = (pool: string, server: string, n: number) => {
    const max = Math.max(...seen.bounds(pool).map((x) => x.high))
    return { where: { pool, server }, bounds: Array.from({ length: n }, () => ({ low: 0, high: max })) }
  }
  for (const { where, bounds } of [
    tries('web', 'good', N),
    tries('web', 'sick', sickTries),
    tries('api', 'broken', K),
    tries('flaky', 'good2', M),
    tries('flaky', 'resetter', resets),
    tries('lonely', 'resetter', R),
    tries('slow', 'slow', slowOk),
  ]) {
    const what = `${where.pool}/${where.server}`
    assertHistogramHolds(histogram(s, 'switchyard_upstream_request_duration_seconds', where), bounds, `${what} tries`)
    // A reset try has no response head: no time to first byte.
    const answered = where.server === 'resetter' ? [] : bounds
    assertHistogramHolds(histogram(s, 'switchyard_upstream_ttfb_seconds', where), answered, `${what} TTFB`)
  }
  // Each request's tries together take no longer than the request.
  const web2 = seen.bounds('web').reduce((n, x) => n + x.high, 0)
  assert.ok(histogram(s, 'switchyard_upstream_request_duration_seconds', { pool: 'web' }).sum <= web2)
}

async function scrapeOver(adminBase: string): Promise<Scrape> {
  const r = await fetch(`${adminBase}/metrics`)
  assert.equal(r.status, 200)
  assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  return parseMetrics(await r.text())
}

describe('/metrics against the traffic, single process', () => {
  let b: Backends
  let lb: LoadBalancer
  let base: string
  let admin: string
  let run: Run

  before(async () => {
    b = await startAll()
    lb = createLoadBalancer(configOf(b, {}))
    await lb.start()
    base = `http://127.0.0.1:${lb.addresses().web?.port}`
    admin = `http://127.0.0.1:${lb.adminAddress()?.port}`
    run = await drive(base, b, () => scrapeOver(admin), 5)
  })
  after(async () => {
    await lb?.close({ gracePeriodMs: 500 })
    await Promise.all(Object.values(b).map((t) => (typeof t === 'function' ? undefined : t.close())))
  })

  it('counts every request, retry, refusal, ejection and queued request exactly', async () => {
    const s = await scrapeOver(admin)
    // One process: 3 of the 7 pass the rate (1 + burst 2), the queue holds 2 and refuses 1 of 5.
    assert.equal(run.seen.count('limited', 200), 3)
    assert.equal(run.queued, 2)
    assert.equal(run.seen.count('slow', 503), 1)
    assert.equal(b.sick.requests.length, 3, 'sick was tried until its third failure ejected it')
    checkScrape(s, b, run, 1)
  })

  it("has the Node process metrics once, without a worker label, and the instance's version", async () => {
    const s = await scrapeOver(admin)
    const version = series(s, 'nodejs_version_info')
    assert.equal(version.length, 1)
    assert.equal(version[0]?.labels.version, process.version)
    assert.equal(version[0]?.labels.worker, undefined)
    assert.ok(sum(s, 'nodejs_heap_size_used_bytes') > 0)
    assert.ok(histogram(s, 'nodejs_gc_duration_seconds').buckets.length > 0)
    assert.equal(series(s, 'switchyard_build_info').length, 1)
  })

  it('shows runtime overrides, and drops the series of a server a reload removed', async () => {
    await lb.steering.update('plain', 'plain', { weight: 3 })
    await lb.steering.update('flaky', 'resetter', { state: 'disabled' })
    let s = await scrapeOver(admin)
    assert.deepEqual(
      series(s, 'switchyard_override_state').map((x) => x.labels),
      [
        { pool: 'plain', server: 'plain', state: 'active' },
        { pool: 'flaky', server: 'resetter', state: 'disabled' },
      ],
    )
    assert.ok(series(s, 'switchyard_override_state').every((x) => x.value === 1))
    assert.deepEqual(
      series(s, 'switchyard_override_weight').map((x) => [x.labels, x.value]),
      [[{ pool: 'plain', server: 'plain' }, 3]],
    )
    assert.equal(sum(s, 'switchyard_upstream_requests_total', { server: 'sick' }), b.sick.requests.length)
    // sick leaves the config: its series go (tries, errors, retries, ejections), the rest stay.
    const next = configOf(b, {})
    const web = next.pools.find((p) => p.name === 'web')
    assert.ok(web)
    ;(web as { servers: unknown[] }).servers = [{ url: b.good.url, name: 'good' }]
    await lb.reload(next)
    s = await scrapeOver(admin)
    assertMatchesTable(s)
    assert.deepEqual(
      s.samples.filter((x) => x.labels.server === 'sick'),
      [],
    )
    assert.equal(sum(s, 'switchyard_upstream_ejected_servers'), 0)
    assert.equal(sum(s, 'switchyard_upstream_requests_total', { server: 'good' }), N)
    assert.equal(series(s, 'switchyard_override_state').length, 2, 'the overrides stay across the reload')
    await lb.steering.clear()
    s = await scrapeOver(admin)
    assert.deepEqual(series(s, 'switchyard_override_state'), [])
    assert.deepEqual(series(s, 'switchyard_override_weight'), [])
  })
})

describe('/metrics against the traffic, workers: 2 (the exact sum of the workers)', () => {
  let b: Backends
  let supervisor: Supervisor
  let admin: string
  let run: Run

  before(async () => {
    b = await startAll()
    const result = validateConfig(configOf(b, { workers: 2 }))
    assert.ok(result.ok)
    supervisor = new Supervisor(result.config, { logger: silentLogger(), level: 'error' })
    await supervisor.start()
    admin = `http://127.0.0.1:${supervisor.adminAddress()?.port}`
    run = await drive(`http://127.0.0.1:${supervisor.addresses().web?.port}`, b, () => scrapeOver(admin), 8)
  })
  after(async () => {
    await supervisor?.close({ gracePeriodMs: 500 })
    await Promise.all(Object.values(b).map((t) => (typeof t === 'function' ? undefined : t.close())))
  })

  it('counts every request, retry, refusal, ejection and queued request of both workers exactly', async () => {
    const s = await scrapeOver(admin)
    // Each worker ejects on its own, and tells the supervisor's event log.
    const ejections = supervisor.events
      .since(0)
      .filter((e) => e.type === 'ejection' && e.ejected && e.server === 'sick').length
    assert.ok(ejections >= 1 && ejections <= 2, `${ejections} ejections`)
    checkScrape(s, b, run, ejections)
  })

  it('keeps the Node process metrics apart, one set per process, and the supervisor metrics once', async () => {
    const s = await scrapeOver(admin)
    const version = series(s, 'nodejs_version_info')
    assert.deepEqual(version.map((v) => v.labels.worker).sort(), ['0', '1', 'supervisor'])
    assert.ok(version.every((v) => v.value === 1))
    assert.deepEqual(
      series(s, 'process_start_time_seconds')
        .map((v) => v.labels.worker)
        .sort(),
      ['0', '1', 'supervisor'],
    )
    for (const v of series(s, 'nodejs_heap_size_used_bytes')) assert.ok(v.value > 0)
    assert.deepEqual(
      series(s, 'switchyard_build_info').map((x) => x.value),
      [1],
    )
    assert.equal(sum(s, 'switchyard_workers'), 2)
  })

  it('shows runtime overrides once (the supervisor applies them)', async () => {
    await supervisor.steering.update('plain', 'plain', { weight: 4, state: 'draining' })
    const s = await scrapeOver(admin)
    assert.deepEqual(
      series(s, 'switchyard_override_state').map((x) => [x.labels, x.value]),
      [[{ pool: 'plain', server: 'plain', state: 'draining' }, 1]],
    )
    assert.deepEqual(
      series(s, 'switchyard_override_weight').map((x) => x.value),
      [4],
    )
    await supervisor.steering.clear()
  })
})
