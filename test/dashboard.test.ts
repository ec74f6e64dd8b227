/**
 * The dashboard's server side, without a browser: the built bundle (its size bound, nothing from
 * outside), how the admin server serves it, and the numbers it reads (GET /api/v1/stats, the `stats`
 * event, the listener view), checked against real traffic and against the OpenAPI table's schemas.
 * test/dashboard-browser.test.ts opens the page itself in Chromium.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFile } from 'node:fs/promises'
import { type AddressInfo, connect, createServer } from 'node:net'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { gzipSync } from 'node:zlib'
import { DASHBOARD_OUT, MAX_GZIP_BYTES } from '../scripts/build-dashboard.js'
import { ROUTES } from '../src/admin/api.js'
import { DashboardAssets } from '../src/admin/assets.js'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { type AdminClient, adminClient, eventStream, startWithAdmin } from './helpers/admin.js'
import { startBackends, type TestBackend } from './helpers/backends.js'
import { ensureDashboard } from './helpers/dashboard.js'
import { waitFor } from './helpers/wait.js'

const TOKEN = 'dashboard-test-token-0123456789'

describe('dashboard bundle', () => {
  it(`builds to JS and CSS under ${MAX_GZIP_BYTES / 1024} KB gzipped, with nothing loaded from elsewhere`, async () => {
    const manifest = await ensureDashboard()
    const names = manifest.files.map((f) => f.name).sort()
    assert.deepEqual(names, ['app.css', 'app.js', 'index.html'])
    let total = 0
    for (const name of ['app.js', 'app.css']) {
      const body = await readFile(path.join(DASHBOARD_OUT, name))
      assert.ok(body.length > 1000, `${name} is ${body.length} bytes`)
      total += gzipSync(body, { level: 9 }).length
    }
    assert.ok(total < MAX_GZIP_BYTES, `JS + CSS gzipped: ${total} bytes`)
    assert.ok(total > 10_000, 'preact, htm and uPlot are in it')
    const html = await readFile(path.join(DASHBOARD_OUT, 'index.html'), 'utf8')
    const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1])
    assert.deepEqual(refs.sort(), ['/dashboard/app.css', '/dashboard/app.js', 'data:,'])
    const js = await readFile(path.join(DASHBOARD_OUT, 'app.js'), 'utf8')
    assert.doesNotMatch(js, /https?:\/\/(?!www\.w3\.org\/)[a-z]/i, 'no absolute URL but SVG namespaces')
    assert.doesNotMatch(js, /new EventSource|[?&]token=/, 'the stream is read with fetch, the token in a header')
  })

  it('answers 503 with what to run when there is no build', () => {
    const assets = new DashboardAssets(() => undefined)
    assert.equal(assets.get('/'), undefined)
    assert.equal(DashboardAssets.serves('/dashboard/app.js'), true)
    assert.equal(DashboardAssets.serves('/dashboard/other.js'), false)
  })
})

describe('dashboard serving and live numbers', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let web: string
  let admin: string
  let api: AdminClient

  before(async () => {
    await ensureDashboard()
    backends = await startBackends(2)
    ;({ lb, web, admin, api } = await startWithAdmin(
      {
        admin: { listen: '127.0.0.1:0', token: TOKEN },
        listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] }],
        pools: [
          {
            name: 'app',
            servers: backends.map((b) => ({ url: b.url, name: b.name })),
            connections: { maxClientShare: 1 },
          },
        ],
      },
      TOKEN,
    ))
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('serves the page and its files without the token, with a strict CSP, gzip and ETags', async () => {
    const page = await fetch(`${admin}/`)
    assert.equal(page.status, 200)
    assert.equal(page.headers.get('content-type'), 'text/html; charset=utf-8')
    const csp = page.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'none'/)
    assert.match(csp, /script-src 'self'(;|$)/)
    assert.match(csp, /connect-src 'self'/)
    assert.match(csp, /frame-ancestors 'none'/)
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff')
    assert.match(await page.text(), /<script type="module" src="\/dashboard\/app.js">/)
    const js = await fetch(`${admin}/dashboard/app.js`, { headers: { 'accept-encoding': 'gzip' } })
    assert.equal(js.status, 200)
    assert.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8')
    assert.equal(js.headers.get('content-encoding'), 'gzip')
    const etag = js.headers.get('etag') ?? ''
    assert.match(etag, /^"[\w-]{22}"$/)
    assert.ok((await js.text()).length > 10_000, 'fetch decoded the gzip body')
    const again = await fetch(`${admin}/dashboard/app.js`, { headers: { 'if-none-match': etag } })
    assert.equal(again.status, 304)
    assert.equal((await fetch(`${admin}/dashboard/app.css`)).headers.get('content-type'), 'text/css; charset=utf-8')
    const post = await fetch(`${admin}/`, { method: 'POST' })
    assert.equal(post.status, 405)
    assert.equal((await fetch(`${admin}/dashboard/nope.js`)).status, 401, 'anything else needs the token')
    assert.equal((await fetch(`${admin}/api/v1/stats`)).status, 401)
  })

  it('counts listener answers by class and open connections, and streams them in a stats event each second', async () => {
    const events = await eventStream(admin, TOKEN)
    const n = 12
    for (let i = 0; i < n; i++) await (await fetch(`${web}/`)).text()
    const { listeners } = await api.get('/api/v1/listeners')
    ROUTES.listListeners.answers[200].schema.parse({ listeners })
    const l = listeners[0]
    assert.equal(l.requests.total, n)
    assert.equal(l.requests['2xx'], n)
    assert.equal(l.requests['5xx'], 0)
    assert.ok(l.connections >= 1, 'the keep-alive connection of fetch is open')
    // A stats event after the requests shows them all, with rates.
    const stats = await events.nextStats((e) => e.listeners[0]?.requests.total === n, 'all requests counted', 3000)
    const schema = ROUTES.events.answers[200].schema
    schema.parse(stats)
    assert.equal(stats.intervalMs, 1000)
    assert.equal(stats.id, undefined, 'no id: not in the log')
    const app = stats.pools[0]
    assert.equal(app.name, 'app')
    const served = app.servers.map((s: { requests: number }) => s.requests)
    assert.equal(
      served.reduce((a: number, b: number) => a + b, 0),
      n,
    )
    for (const s of app.servers) {
      assert.equal(s.requests, backends.find((b) => b.name === s.name)?.requests.length)
      assert.equal(s.retries, 0)
      assert.equal(s.ejections, 0)
      assert.equal(
        s.live.histogram.reduce((a: number, b: number) => a + b, 0),
        s.requests,
      )
    }
    assert.equal(
      app.live.histogram.reduce((a: number, b: number) => a + b, 0),
      n,
    )
    assert.equal(stats.point.pools.app.servers.b1.rps, app.servers[0].live.rps)
    assert.equal(typeof stats.point.time, 'number')
    events.close()
  })

  it('gives each interval the rates of the requests answered in it, and keeps them as the history', async () => {
    const events = await eventStream(admin, TOKEN)
    await events.nextStats(() => true, 'a first stats event', 3000)
    for (let i = 0; i < 20; i++) await (await fetch(`${web}/`)).text()
    const total = (await api.get('/api/v1/listeners')).listeners[0].requests.total
    const s = events.stats.length
    const last = await events.nextStats((e, i) => i >= s && e.listeners[0].requests.total === total, 'the total', 3000)
    const seen = events.stats.slice(0, events.stats.indexOf(last) + 1)
    // Rate × interval is what the counter moved by, interval by interval (rates are rounded to 1e-4/s).
    for (let i = 1; i < seen.length; i++) {
      const [a, b] = [seen[i - 1], seen[i]]
      const dt = (b.point.time - a.point.time) / 1000
      const moved = b.listeners[0].requests['2xx'] - a.listeners[0].requests['2xx']
      assert.ok(Math.abs(b.listeners[0].live.classes['2xx'] * dt - moved) < 0.01, `interval ${i}: ${moved} in ${dt} s`)
      const servers = b.pools[0].servers
      const tries = servers.reduce((n: number, x: { requests: number }) => n + x.requests, 0)
      const before = a.pools[0].servers.reduce((n: number, x: { requests: number }) => n + x.requests, 0)
      assert.ok(Math.abs(b.pools[0].live.rps * dt - (tries - before)) < 0.01)
    }
    const h = await api.get('/api/v1/stats')
    ROUTES.getStats.answers[200].schema.parse(h)
    assert.equal(h.intervalMs, 1000)
    assert.equal(h.windowMs, 15 * 60_000)
    assert.deepEqual(h.bucketsS.slice(0, 2), [0.001, 0.0025])
    for (const series of [h.pools.app.rps, h.pools.app.p99, h.listeners.web['2xx'], h.pools.app.servers.b1.rps])
      assert.equal(series.length, h.time.length)
    assert.ok(h.time.every((t: number, i: number) => i === 0 || t > h.time[i - 1]))
    // The points the stream carried are the history's.
    for (const e of seen.slice(1)) {
      const at = h.time.indexOf(e.point.time)
      assert.ok(at >= 0, `point ${e.point.time} in the history`)
      assert.equal(h.listeners.web['2xx'][at], e.point.listeners.web['2xx'])
      assert.equal(h.pools.app.p99[at], e.point.pools.app.p99)
      assert.equal(h.pools.app.servers.b2.rps[at], e.point.pools.app.servers.b2.rps)
    }
    assert.ok(h.pools.app.p50.some((v: number | null) => v !== null && v > 0))
    events.close()
  })
})

describe('dashboard numbers of a TCP listener', () => {
  it('counts its open connections, and the connections it ended, in the view and the stats', async () => {
    const echo = createServer((s) => s.pipe(s))
    echo.listen(0, '127.0.0.1')
    await once(echo, 'listening')
    const lb = createLoadBalancer({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [{ name: 'l4', listen: '127.0.0.1:0', protocol: 'tcp', routes: [{ pool: 'echo' }] }],
      pools: [{ name: 'echo', servers: [`http://127.0.0.1:${(echo.address() as AddressInfo).port}`] }],
    })
    await lb.start()
    try {
      const api = adminClient(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
      const events = await eventStream(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
      const client = connect(lb.addresses().l4?.port ?? 0, '127.0.0.1')
      client.write('ping')
      await once(client, 'data')
      const open = (await api.get('/api/v1/listeners')).listeners[0]
      assert.deepEqual([open.protocol, open.connections, open.inFlight, open.tcpConnections], ['tcp', 1, 1, 0])
      client.end()
      await waitFor(
        async () => (await api.get('/api/v1/listeners')).listeners[0].tcpConnections === 1,
        'the connection ended',
      )
      const stats = await events.nextStats((e) => e.listeners[0].tcpConnections === 1, 'the ended connection', 3000)
      assert.equal(stats.listeners[0].connections, 0)
      assert.equal(stats.listeners[0].requests.total, 0, 'no HTTP answers')
      assert.equal(stats.listeners[0].live.errorRate === null || stats.listeners[0].live.errorRate === 0, true)
      events.close()
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      echo.close()
    }
  })
})
