/**
 * Circuit breaking against real backends that hold requests until the test lets them go: per-server
 * connection and pending caps, the pool's in-flight cap, and its bounded, timed FIFO queue. Overflow is
 * answered 503 SWY_OVERLOADED; nothing ever exceeds a server's cap.
 */
import assert from 'node:assert/strict'
import type { ServerResponse } from 'node:http'
import { describe, it } from 'node:test'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

/** A backend that holds every request until `release()`; records its peak concurrency and arrivals. */
async function gatedBackend(name: string) {
  const held: ServerResponse[] = []
  const arrivals: string[] = []
  let current = 0
  let peak = 0
  const backend: TestBackend = await startBackend(name, (req, res) => {
    req.resume()
    current++
    peak = Math.max(peak, current)
    arrivals.push(String(req.headers['x-id'] ?? ''))
    res.on('close', () => current--)
    held.push(res)
  })
  return {
    backend,
    arrivals,
    held: () => held.length,
    peak: () => peak,
    /** Answers the `count` oldest held requests (all by default). */
    release(count = held.length) {
      for (const res of held.splice(0, count)) res.end(name)
    },
  }
}

type Gated = Awaited<ReturnType<typeof gatedBackend>>

/** Waits up to 5 s for `check`, failing with `what`. */
function until(check: () => boolean, what: string): Promise<void> {
  return waitFor(check, what, { timeoutMs: 5000 })
}

/** Requests the load balancer is handling now (queued ones included), over its listeners. */
function inFlight(lb: LoadBalancer): number {
  return lb.status().listeners.reduce((n, l) => n + l.inFlight, 0)
}

async function withLb(
  config: ConfigInput,
  run: (url: string, agent: Agent, lb: LoadBalancer) => Promise<void>,
): Promise<void> {
  const lb = createLoadBalancer(config)
  await lb.start()
  const agent = new Agent({ connections: 64 })
  try {
    await run(`http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`, agent, lb)
  } finally {
    await agent.close()
    await lb.close({ gracePeriodMs: 200 })
  }
}

function send(url: string, agent: Agent, id: string, headers: Record<string, string> = {}) {
  return request(url, { dispatcher: agent, headers: { 'x-id': id, ...headers } }).then(async (res) => ({
    id,
    status: res.statusCode,
    body: await res.body.text(),
    cookie: res.headers['set-cookie'],
  }))
}

/**
 * One pool over `gated`. Every request of these tests comes from one client address, which must be
 * able to fill the pool: `maxClientShare: 1` (the default, half, is tested in test/security.test.ts).
 */
function pool(gated: Gated[], extra: Record<string, unknown>): ConfigInput {
  const connections = { maxClientShare: 1, ...(extra.connections as Record<string, unknown> | undefined) }
  return {
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [
      {
        name: 'p',
        servers: gated.map((g) => ({ url: g.backend.url, name: g.backend.name })),
        ...extra,
        connections,
      },
    ],
  }
}

describe('circuit breaking', () => {
  it('caps each server at maxConnections + maxPending; without a queue, overflow gets 503 SWY_OVERLOADED', async () => {
    const gated = await Promise.all(['a', 'b'].map(gatedBackend))
    await withLb(pool(gated, { connections: { maxPerServer: 2, maxPending: 1 } }), async (url, agent) => {
      const pending = Array.from({ length: 8 }, (_, i) => send(url, agent, `r${i}`))
      // 2 connections per server reach it; 1 more per server waits for a connection; 2 are refused.
      await until(() => gated[0]!.held() + gated[1]!.held() === 4, 'four requests at the servers')
      // A fixed wait as the assertion: 300 ms on, the eight have not all ended (the held ones stay held).
      const refused = await Promise.race([
        Promise.all(pending.map((p) => p.then((r) => r))).then(() => 'all'),
        new Promise((r) => setTimeout(r, 300, 'waiting')),
      ])
      assert.equal(refused, 'waiting')
      for (const g of gated) g.release()
      await until(() => gated[0]!.held() + gated[1]!.held() === 2, 'the pending two')
      for (const g of gated) g.release()
      const results = await Promise.all(pending)
      const overloaded = results.filter((r) => r.status === 503)
      assert.equal(overloaded.length, 2)
      for (const r of overloaded) assert.match(r.body, /SWY_OVERLOADED/)
      assert.equal(results.filter((r) => r.status === 200).length, 6)
      assert.deepEqual(
        gated.map((g) => g.peak()),
        [2, 2],
      )
    })
    for (const g of gated) await g.backend.close()
  })

  it('queues requests when every server is full, and serves them in arrival order as others end', async () => {
    const gated = await Promise.all(['a'].map(gatedBackend))
    const config = pool(gated, {
      servers: [{ url: gated[0]!.backend.url, name: 'a', maxConnections: 2, maxPending: 0 }],
      queue: { size: 10 },
    })
    await withLb(config, async (url, agent, lb) => {
      const first = [send(url, agent, 'q0'), send(url, agent, 'q1')]
      await until(() => gated[0]!.held() === 2, 'the first two')
      const queued: ReturnType<typeof send>[] = []
      for (let i = 2; i < 7; i++) {
        queued.push(send(url, agent, `q${i}`))
        // Arrive in order: each is queued at the load balancer before the next is sent.
        await until(() => inFlight(lb) === i + 1, `q${i} queued`)
      }
      assert.equal(gated[0]!.held(), 2, 'the server got no more than its two connections')
      // One ends, one starts: the oldest waiting.
      for (let served = 2; served < 7; served++) {
        gated[0]!.release(1)
        await until(() => gated[0]!.arrivals.length === served + 1, `request ${served}`)
      }
      gated[0]!.release()
      const results = await Promise.all([...first, ...queued])
      assert.deepEqual(
        results.map((r) => r.status),
        [200, 200, 200, 200, 200, 200, 200],
      )
      assert.deepEqual(gated[0]!.arrivals, ['q0', 'q1', 'q2', 'q3', 'q4', 'q5', 'q6'])
      assert.equal(gated[0]!.peak(), 2)
    })
    await gated[0]!.backend.close()
  })

  it('answers 503 SWY_OVERLOADED when the queue is full, and after queue.timeout', async () => {
    const gated = await Promise.all(['a'].map(gatedBackend))
    const config = pool(gated, { queue: { maxInFlight: 1, size: 1, timeout: '300ms' } })
    await withLb(config, async (url, agent, lb) => {
      const held = send(url, agent, 'h')
      await until(() => gated[0]!.held() === 1, 'the first request')
      const waiting = send(url, agent, 'w')
      await until(() => inFlight(lb) === 2, 'w queued')
      // The queue (size 1) is taken: refused at once.
      const refused = await send(url, agent, 'x')
      assert.equal(refused.status, 503)
      assert.match(refused.body, /SWY_OVERLOADED/)
      // The waiting one gives up after 300 ms; the server never saw it.
      const timedOut = await waiting
      assert.equal(timedOut.status, 503)
      assert.match(timedOut.body, /SWY_OVERLOADED/)
      assert.deepEqual(gated[0]!.arrivals, ['h'])
      gated[0]!.release()
      assert.equal((await held).status, 200)
      // The pool is free again.
      const after = send(url, agent, 'after')
      await until(() => gated[0]!.held() === 1, 'the next request')
      gated[0]!.release()
      assert.equal((await after).status, 200)
    })
    await gated[0]!.backend.close()
  })

  it('frees the place of a client that leaves the queue', async () => {
    const gated = await Promise.all(['a'].map(gatedBackend))
    const config = pool(gated, { queue: { maxInFlight: 1, size: 1, timeout: '10s' } })
    await withLb(config, async (url, agent, lb) => {
      const held = send(url, agent, 'h')
      await until(() => gated[0]!.held() === 1, 'the first request')
      const controller = new AbortController()
      const leaving = request(url, { dispatcher: agent, signal: controller.signal }).catch((e: Error) => e.name)
      await until(() => inFlight(lb) === 2, 'the leaving request queued')
      controller.abort()
      assert.equal(await leaving, 'AbortError')
      await until(() => inFlight(lb) === 1, 'the load balancer to see the client leave')
      // Its place is free: this one waits (not refused), and is served once the first ends.
      const next = send(url, agent, 'next')
      await until(() => inFlight(lb) === 2, 'next queued')
      gated[0]!.release()
      await until(() => gated[0]!.held() === 1, 'the queued request')
      gated[0]!.release()
      assert.equal((await held).status, 200)
      assert.equal((await next).status, 200)
      assert.deepEqual(gated[0]!.arrivals, ['h', 'next'])
    })
    await gated[0]!.backend.close()
  })

  it('keeps a sticky client on its full server: it waits for it rather than move', async () => {
    const gated = await Promise.all(['a', 'b'].map(gatedBackend))
    const config = pool(gated, {
      sticky: { mode: 'cookie', secret: 'overload-test-secret-0123456789' },
      connections: { maxPerServer: 1, maxPending: 0 },
      queue: { size: 5 },
    })
    await withLb(config, async (url, agent, lb) => {
      // Bind a client, and learn its server.
      const first = send(url, agent, 'bind')
      await until(() => gated[0]!.held() + gated[1]!.held() === 1, 'the binding request')
      const home = gated[0]!.held() === 1 ? gated[0]! : gated[1]!
      const other = home === gated[0] ? gated[1]! : gated[0]!
      // Keep the home server busy with the binding request, and send the bound client again.
      const firstResult = send(url, agent, 'probe')
      await until(() => other.held() === 1, 'an unbound request on the other server')
      other.release()
      await firstResult
      home.release()
      const bound = await first
      const cookie = String(bound.cookie).split(';')[0]!
      const busy = send(url, agent, 'busy', { cookie })
      await until(() => home.held() === 1, 'the home server busy')
      const waiting = send(url, agent, 'waits', { cookie })
      await until(() => inFlight(lb) === 2, 'the bound request at the load balancer')
      // It does not move within 100 ms, though the other server is free: the wait is the assertion.
      await new Promise((r) => setTimeout(r, 100))
      assert.equal(other.held(), 0, 'the bound request moved to the free server')
      home.release()
      await until(() => home.held() === 1, 'the bound request at its own server')
      home.release()
      assert.equal((await busy).status, 200)
      const result = await waiting
      assert.equal(result.status, 200)
      assert.equal(result.body, home.backend.name)
    })
    for (const g of gated) await g.backend.close()
  })

  it('serves a request queued before a reload that changes its pool, from the new generation', async () => {
    const gated = await Promise.all(['a', 'b'].map(gatedBackend))
    const config = (servers: Gated[], slowStart: string) =>
      pool(servers, {
        servers: servers.map((g) => ({ url: g.backend.url, name: g.backend.name, maxConnections: 1, maxPending: 0 })),
        queue: { size: 10, timeout: '10s' },
        slowStart,
      })
    const lb = createLoadBalancer(config([gated[0]!], '0s'))
    await lb.start()
    const agent = new Agent({ connections: 8 })
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    try {
      const busy = send(url, agent, 'busy')
      await until(() => gated[0]!.held() === 1, 'the first request at the server')
      const queued = send(url, agent, 'queued')
      await new Promise((r) => setTimeout(r, 50)) // it reaches the queue (nothing to observe from outside)
      assert.equal(gated[0]!.held(), 1)
      // A new generation of the pool: a second server (and another setting). The queued request is
      // granted by it: it goes to the new, free server at once.
      await lb.reload(config(gated, '1s'))
      await until(() => gated[1]!.held() === 1, 'the queued request at the new server')
      gated[1]!.release()
      const result = await queued
      assert.equal(result.status, 200, result.body)
      assert.equal(result.body, 'b')
      gated[0]!.release()
      assert.equal((await busy).status, 200)
    } finally {
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      for (const g of gated) await g.backend.close()
    }
  })

  it('serves a retry that waited out its backoff across a reload, from the new generation', async () => {
    let lb: ReturnType<typeof createLoadBalancer> | undefined
    let reloadConfig: ConfigInput | undefined
    const answered: string[] = []
    // The first server answers 503, but only after a reload that changes the pool has committed.
    const sick = await startBackend('sick', async (req, res) => {
      req.resume()
      answered.push('sick')
      await lb!.reload(reloadConfig!)
      res.writeHead(503).end('sick')
    })
    const good = await startBackend('good', (req, res) => {
      req.resume()
      answered.push('good')
      res.end('good')
    })
    const config = (backoff: string): ConfigInput => ({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          balance: 'round-robin',
          servers: [
            { url: sick.url, name: 'sick' },
            { url: good.url, name: 'good' },
          ],
          retries: { on: ['connect-failure', '503'], backoff: { base: backoff, max: backoff } },
        },
      ],
    })
    reloadConfig = config('2ms')
    lb = createLoadBalancer(config('1ms'))
    await lb.start()
    try {
      const res = await request(`http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`)
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'good')
      assert.deepEqual(answered, ['sick', 'good'])
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await sick.close()
      await good.close()
    }
  })
})
