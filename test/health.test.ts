/**
 * Active health checks against real backends: servers go down after `fall` failed checks and come
 * back after `rise` passed ones, traffic avoids the ones that are down, transitions are logged once.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { request } from 'undici'
import { HealthTracker } from '../src/health/index.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

/** Polls `condition` every 20 ms until it holds; fails naming `what` after 10 s. */
function until(condition: () => boolean | Promise<boolean>, what: string): Promise<void> {
  return waitFor(condition, what, { intervalMs: 20 })
}

describe('health tracker', () => {
  it('goes down after `fall` failures in a row and up after `rise` passes in a row, reporting each change once', () => {
    const seen: string[] = []
    const t = new HealthTracker(2, 3, (x) => seen.push(`${x.server} ${x.state} after ${x.checks}: ${x.reason}`))
    t.track(['a', 'b'])
    t.report('a', false, 'ECONNREFUSED')
    t.report('a', false, 'ECONNREFUSED')
    t.report('a', true, 'passed') // breaks the streak
    t.report('a', false, 'status 503')
    t.report('a', false, 'status 503')
    assert.equal(t.isUp('a'), true)
    t.report('a', false, 'status 503')
    assert.equal(t.isUp('a'), false)
    assert.deepEqual([...t.down], ['a'])
    t.report('a', false, 'status 503') // no new transition
    t.report('a', true, 'passed')
    t.report('a', true, 'passed')
    assert.equal(t.isUp('a'), true)
    assert.deepEqual(seen, ['a down after 3: status 503', 'a up after 2: passed'])
    t.track(['b'])
    t.report('a', false, 'gone') // forgotten: ignored
    assert.deepEqual([...t.down], [])
  })
})

describe('active health checks', () => {
  let backends: TestBackend[]
  /** Per backend: whether its /healthz answers 200 (else 503). */
  const healthy = new Map<string, boolean>()
  const lines: string[] = []
  let lb: LoadBalancer
  let url: string

  before(async () => {
    backends = await Promise.all(
      ['b1', 'b2', 'b3'].map((name) =>
        startBackend(name, (req, res, b) => {
          req.resume()
          if (req.url === '/healthz') {
            const ok = healthy.get(b.name) !== false
            res.writeHead(ok ? 200 : 503)
            res.end(ok ? 'all good' : 'sick')
          } else res.end(b.name)
        }),
      ),
    )
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean))
        done()
      },
    })
    lb = createLoadBalancer(
      {
        listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [
          {
            name: 'web',
            servers: backends.map((b) => ({ url: b.url, name: b.name })),
            healthCheck: {
              type: 'http',
              path: '/healthz',
              expectStatus: ['200-299'],
              expectBody: 'good',
              interval: '40ms',
              unhealthyInterval: '40ms',
              timeout: '500ms',
              rise: 2,
              fall: 3,
            },
          },
        ],
      },
      { logger: pino({ level: 'info' }, sink) },
    )
    await lb.start()
    url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 500 })
    for (const b of backends) await b.close()
  })

  const serverUp = async (server: string) => {
    const m = (await lb.metricsText()).body
    return new RegExp(`switchyard_server_up\\{pool="web",server="${server}"\\} 1`).test(m)
  }

  it('takes a failing server out of rotation after `fall` checks, and logs it once', async () => {
    await until(async () => (await serverUp('b1')) && (await serverUp('b2')) && (await serverUp('b3')), 'all three up')
    healthy.set('b2', false)
    await until(async () => !(await serverUp('b2')), 'b2 down')
    const counts = new Map<string, number>()
    for (let i = 0; i < 60; i++) {
      const name = await (await request(`${url}/`)).body.text()
      counts.set(name, (counts.get(name) ?? 0) + 1)
    }
    assert.equal(counts.get('b2'), undefined)
    assert.equal(counts.get('b1'), 30)
    assert.equal(counts.get('b3'), 30)
    const down = lines.filter((l) => l.includes('server web/b2 DOWN'))
    assert.equal(down.length, 1)
    assert.match(down[0]!, /DOWN after 3 failed checks: status 503/)
  })

  it('brings it back after `rise` passed checks', async () => {
    healthy.set('b2', true)
    await until(() => serverUp('b2'), 'b2 up again')
    const seen = new Set<string>()
    for (let i = 0; i < 30; i++) seen.add(await (await request(`${url}/`)).body.text())
    assert.deepEqual([...seen].sort(), ['b1', 'b2', 'b3'])
    assert.equal(lines.filter((l) => l.includes('server web/b2 UP after 2 passed checks')).length, 1)
  })

  it('answers 503 SWY_NO_SERVER when every server is down', async () => {
    for (const b of backends) healthy.set(b.name, false)
    await until(
      async () => !(await serverUp('b1')) && !(await serverUp('b2')) && !(await serverUp('b3')),
      'all three down',
    )
    const res = await request(`${url}/`)
    assert.equal(res.statusCode, 503)
    assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'SWY_NO_SERVER')
    for (const b of backends) healthy.set(b.name, true)
    await until(async () => (await serverUp('b1')) && (await serverUp('b2')) && (await serverUp('b3')), 'all three up')
  })
})

describe('tcp health checks', () => {
  it('marks a server whose port refuses connections down, and up when it listens again; probes a separate check port', async () => {
    const backend = await startBackend('svc')
    // The check port: a plain TCP service that answers "+PONG" to "PING".
    const listen = (port: number) =>
      new Promise<Server>((resolve) => {
        const s = createServer((sock) =>
          sock.on('data', (d) => {
            if (d.toString().includes('PING')) sock.end('+PONG\r\n')
          }),
        )
        s.listen(port, '127.0.0.1', () => resolve(s))
      })
    let check = await listen(0)
    const checkPort = (check.address() as { port: number }).port
    const config: ConfigInput = {
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [{ url: backend.url, name: 'svc' }],
          healthCheck: {
            type: 'tcp',
            port: checkPort,
            send: 'PING\r\n',
            expect: '+PONG',
            interval: '30ms',
            timeout: '300ms',
            rise: 1,
            fall: 2,
          },
        },
      ],
    }
    const lb = createLoadBalancer(config)
    await lb.start()
    const up = async () => /switchyard_server_up\{pool="p",server="svc"\} 1/.test((await lb.metricsText()).body)
    try {
      await until(up, 'svc up')
      await new Promise<void>((r) => check.close(() => r()))
      await until(async () => !(await up()), 'svc down once its check port closed')
      const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
      assert.equal((await request(url)).statusCode, 503)
      check = await listen(checkPort)
      await until(up, 'svc up once its check port listens again')
      const res = await request(url)
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'svc')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await new Promise<void>((r) => check.close(() => r()))
      await backend.close()
    }
  })

  it('rejects a zero interval and an unknown check type, naming the key', () => {
    const bad = (healthCheck: unknown) =>
      validateConfig({
        listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: ['http://127.0.0.1:9'], healthCheck }],
      })
    const zero = bad({ type: 'http', interval: 0 })
    assert.ok(!zero.ok && zero.issues.some((i) => i.path === 'pools[0].healthCheck.interval'))
    const unknown = bad({ type: 'thrift' })
    assert.ok(!unknown.ok && unknown.issues.some((i) => i.path.startsWith('pools[0].healthCheck')))
  })
})

describe('passive health (outlier detection) and panic mode', () => {
  it('ejects a server that fails half of its requests: clients see under 1% errors over 1,000 requests', async (t) => {
    let n = 0
    const good = await Promise.all(['g1', 'g2'].map((name) => startBackend(name)))
    const bad = await startBackend('bad', (req, res) => {
      req.resume()
      res.writeHead(n++ % 2 === 0 ? 500 : 200)
      res.end('bad')
    })
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [...good, bad].map((b) => ({ url: b.url, name: b.name })),
          outlierDetection: {
            consecutiveFailures: 5,
            errorRate: { threshold: 0.4, minRequests: 10, window: '10s' },
            baseEjectionTime: '60s',
          },
        },
      ],
    })
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    try {
      let errors = 0
      let toBad = 0
      for (let i = 0; i < 1000; i++) {
        const res = await request(url)
        const body = await res.body.text()
        if (res.statusCode >= 500) errors++
        if (body === 'bad') toBad++
      }
      t.diagnostic(`errors seen by clients: ${errors} of 1,000; requests that reached the bad server: ${toBad}`)
      assert.ok(errors < 10, `${errors} errors`)
      assert.ok(toBad <= 12, 'ejected after about minRequests of its requests')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      for (const b of [...good, bad]) await b.close()
    }
  })

  it('panic mode: with fewer than panicThreshold % of the servers up, balances over all of them', async () => {
    const sick = new Set(['p2', 'p3'])
    const servers = await Promise.all(
      ['p1', 'p2', 'p3'].map((name) =>
        startBackend(name, (req, res, b) => {
          req.resume()
          if (req.url === '/healthz') res.writeHead(sick.has(b.name) ? 503 : 200)
          res.end(b.name)
        }),
      ),
    )
    const config = (panicThreshold: number): ConfigInput => ({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          panicThreshold,
          servers: servers.map((b) => ({ url: b.url, name: b.name })),
          healthCheck: { type: 'http', path: '/healthz', interval: '30ms', rise: 1, fall: 1 },
        },
      ],
    })
    const lb = createLoadBalancer(config(0))
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    const seen = async () => {
      const names = new Set<string>()
      for (let i = 0; i < 12; i++) names.add(await (await request(url)).body.text())
      return [...names].sort()
    }
    try {
      await until(async () => (await seen()).join() === 'p1', 'traffic only on p1')
      // 1 of 3 up is under 50%: panic spreads over all three again.
      await lb.reload(config(50))
      await until(async () => (await seen()).join() === 'p1,p2,p3', 'panic: traffic on all three')
      // Two of three up (67%) ends the panic: the one that is down is skipped again.
      sick.delete('p2')
      await until(async () => (await seen()).join() === 'p1,p2', 'panic over: traffic on p1 and p2')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      for (const b of servers) await b.close()
    }
  })
})
