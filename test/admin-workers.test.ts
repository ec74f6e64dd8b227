/**
 * The admin API's runtime changes with `workers: 2`: the supervisor applies each to every worker
 * before it answers, the pools' counts are the sum of the workers' exactly, and a worker's passive
 * ejection reaches the supervisor's event stream. Each request goes on a new connection, so that both
 * workers serve.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { validateConfig } from '../src/config/index.js'
import { silentLogger } from '../src/core/logger.js'
import { Supervisor } from '../src/server/supervisor.js'
import { type AdminClient, adminClient, eventStream } from './helpers/admin.js'
import { deadPort, type Handler, nameHandler, startBackends, type TestBackend } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

const TOKEN = 'admin-workers-test-token-0123456789'

const slowHandler: Handler = (req, res, b) => {
  const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0)
  setTimeout(() => nameHandler(req, res, b), ms)
}

describe('admin API v1 with workers: 2', () => {
  let backends: TestBackend[]
  let supervisor: Supervisor
  let web: string
  let admin: string
  let api: AdminClient
  let sent = 0

  /** `n` requests, each on a new connection (so the kernel spreads them over the workers). */
  async function names(n: number, path = '/'): Promise<string[]> {
    const out: string[] = []
    for (let i = 0; i < n; i++) {
      const r = await fetch(`${web}${path}`, { headers: { connection: 'close' } })
      assert.equal(r.status, 200)
      out.push(await r.text())
      sent++
    }
    return out
  }

  before(async () => {
    backends = await startBackends(3, slowHandler)
    const result = validateConfig({
      workers: 2,
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] }],
      pools: [
        {
          name: 'app',
          servers: backends.slice(0, 2).map((b) => ({ url: b.url, name: b.name })),
          connections: { maxClientShare: 1 },
        },
      ],
    })
    assert.ok(result.ok)
    supervisor = new Supervisor(result.config, { logger: silentLogger(), level: 'warn' })
    await supervisor.start()
    web = `http://127.0.0.1:${supervisor.addresses().web?.port}`
    admin = `http://127.0.0.1:${supervisor.adminAddress()?.port}`
    api = adminClient(admin, TOKEN)
  })
  after(async () => {
    await supervisor?.close({ gracePeriodMs: 500 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('counts every request of every worker in /api/v1/pools, exactly', async () => {
    await names(40)
    const { pools } = await api.get('/api/v1/pools')
    const servers = pools[0].servers as { name: string; requests: number; histogram: { count: number } }[]
    assert.equal(
      servers.reduce((n, s) => n + s.requests, 0),
      sent,
    )
    for (const s of servers) {
      assert.equal(s.requests, backends.find((b) => b.name === s.name)?.requests.length, s.name)
      assert.equal(s.histogram.count, s.requests)
    }
    // The listener's answers too, summed over the workers, in its view and in the stats event.
    const { listeners } = await api.get('/api/v1/listeners')
    assert.equal(listeners[0].requests.total, sent)
    assert.equal(listeners[0].requests['2xx'], sent)
    const events = await eventStream(admin, TOKEN)
    const stats = await events.nextStats((e) => e.listeners[0].requests.total === sent, 'the summed stats', 3000)
    assert.equal(
      stats.pools[0].servers.reduce((n: number, x: { requests: number }) => n + x.requests, 0),
      sent,
    )
    events.close()
  })

  it('disables a server on every worker before the 200', async () => {
    const b1 = backends[0] as TestBackend
    const r = await api.call('PATCH', '/api/v1/pools/app/servers/b1', { state: 'disabled' })
    assert.equal(r.status, 200)
    assert.equal(r.body.state, 'disabled')
    const seen = b1.requests.length
    const answered = await names(30)
    assert.ok(!answered.includes('b1'))
    assert.equal(b1.requests.length, seen)
    assert.equal((await api.call('PATCH', '/api/v1/pools/app/servers/b1', { state: 'active' })).status, 200)
  })

  it('adds a server that every worker sends to at once', async () => {
    const b3 = backends[2] as TestBackend
    const r = await api.call('POST', '/api/v1/pools/app/servers', { url: b3.url, name: 'b3' })
    assert.equal(r.status, 201)
    // Each worker's round-robin has three servers now: any 3 requests in a row on one worker include b3,
    // so 12 spread over two workers give it at least 2.
    const answered = await names(12)
    assert.ok(answered.filter((n) => n === 'b3').length >= 2, JSON.stringify(answered))
  })

  it('drains a server on DELETE across workers: its request in flight finishes, then it goes', async () => {
    const events = await eventStream(admin, TOKEN)
    const b2 = backends[1] as TestBackend
    for (const n of ['b1', 'b3']) await api.call('PATCH', `/api/v1/pools/app/servers/${n}`, { state: 'disabled' })
    const slow = fetch(`${web}/slow?ms=700`, { headers: { connection: 'close' } }).then(async (r) => ({
      status: r.status,
      body: await r.text(),
      at: Date.now(),
    }))
    await waitFor(() => b2.requests.some((q) => q.url === '/slow?ms=700'), 'the slow request on b2')
    for (const n of ['b1', 'b3']) await api.call('PATCH', `/api/v1/pools/app/servers/${n}`, { state: 'active' })
    const r = await api.call('DELETE', '/api/v1/pools/app/servers/b2')
    assert.equal(r.status, 202)
    assert.equal(r.body.inFlight, 1, 'the worker that holds it reports it')
    assert.ok(!(await names(10)).includes('b2'))
    const done = await slow
    assert.deepEqual([done.status, done.body], [200, 'b2'])
    const removed = await events.next((e) => e.type === 'change' && e.action === 'removed', 'removed', 5000)
    assert.ok(Date.parse(removed.time) >= done.at - 5)
    const { servers } = await api.get('/api/v1/pools/app')
    assert.deepEqual(
      servers.map((s: { name: string }) => s.name),
      ['b1', 'b3'],
    )
    events.close()
  })

  it("streams a worker's ejection of a server that refuses connections", async () => {
    const events = await eventStream(admin, TOKEN)
    const port = await deadPort()
    assert.equal(
      (await api.call('POST', '/api/v1/pools/app/servers', { url: `http://127.0.0.1:${port}`, name: 'dead' })).status,
      201,
    )
    await waitFor(
      async () => {
        await fetch(`${web}/`, { headers: { connection: 'close' } }).then((r) => r.text())
        return events.events.some((e) => e.type === 'ejection')
      },
      'an ejection event',
      { timeoutMs: 5000 },
    )
    const e = events.events.find((x) => x.type === 'ejection') as { server: string; worker: number; ejected: boolean }
    assert.equal(e.server, 'dead')
    assert.equal(e.ejected, true)
    assert.ok(e.worker === 0 || e.worker === 1)
    const { servers } = await api.get('/api/v1/pools/app')
    const dead = servers.find((s: { name: string }) => s.name === 'dead')
    assert.equal(dead.state, 'ejected')
    assert.ok(dead.ejections >= 1, `ejections ${dead.ejections}`)
    assert.ok(dead.retries >= 1, 'the refused connects were retried on another server')
    events.close()
  })
})
