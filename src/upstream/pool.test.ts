/** The pool around the balancers: backup servers and slow start (no traffic: selection only). */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { testEnv } from '../../test/helpers/balancers.js'
import { validateConfig } from '../config/index.js'
import { Metrics } from '../metrics/index.js'
import { ConnectionRegistry } from './connections.js'
import { UpstreamPool } from './pool.js'

const registry = new ConnectionRegistry()
after(() => registry.closeAll(0))

function poolConfig(servers: unknown[], extra: Record<string, unknown> = {}) {
  const result = validateConfig({
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers, ...extra }],
  })
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues))
  return result.config.pools[0]!
}

function firstChoices(pool: UpstreamPool, picks: number): Record<string, number> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < picks; i++) {
    const id = pool.select({ clientIp: '10.0.0.1' })?.backend.id ?? 'none'
    counts[id] = (counts[id] ?? 0) + 1
  }
  return counts
}

describe('backup servers', () => {
  it('get nothing while a primary can take requests, and everything when none can', () => {
    const withPrimary = new UpstreamPool(
      poolConfig([
        { url: 'http://127.0.0.1:1', name: 'main' },
        { url: 'http://127.0.0.1:2', name: 'spare', backup: true },
      ]),
      registry,
      new Metrics(),
    )
    assert.deepEqual(firstChoices(withPrimary, 20), { main: 20 })
    // A primary with weight 0 takes no new requests: the backup does.
    const drained = new UpstreamPool(
      poolConfig([
        { url: 'http://127.0.0.1:1', name: 'main', weight: 0 },
        { url: 'http://127.0.0.1:2', name: 'spare', backup: true },
        { url: 'http://127.0.0.1:3', name: 'spare2', backup: true },
      ]),
      registry,
      new Metrics(),
    )
    assert.deepEqual(firstChoices(drained, 20), { spare: 10, spare2: 10 })
  })
})

describe('slow start', () => {
  const servers = [
    { url: 'http://127.0.0.1:1', name: 'a' },
    { url: 'http://127.0.0.1:2', name: 'b' },
  ]

  it('ramps a server added by a reload linearly, from 5% of its share to all of it', (t) => {
    const env = testEnv(5)
    const before = new UpstreamPool(poolConfig(servers.slice(0, 1), { slowStart: '10s' }), registry, new Metrics(), {
      env,
    })
    // A new pool starts at full weight: nothing to ramp.
    assert.equal(before.rampingServers().size, 0)
    const after = new UpstreamPool(poolConfig(servers, { slowStart: '10s' }), registry, new Metrics(), {
      previous: before,
      env,
    })
    const shareOfB = () => (firstChoices(after, 4000).b ?? 0) / 4000
    const start = shareOfB()
    env.advance(5000)
    const half = shareOfB()
    env.advance(5000)
    const full = shareOfB()
    t.diagnostic(`b's share at 0 s ${start}, 5 s ${half}, 10 s ${full} (ideal 0.025, 0.25, 0.5)`)
    // Round-robin offers b half of the requests; b takes max(elapsed / 10 s, 5%) of those.
    assert.ok(Math.abs(start - 0.025) < 0.015, `start ${start}`)
    assert.ok(Math.abs(half - 0.25) < 0.03, `half ${half}`)
    assert.equal(full, 0.5)
    assert.equal(after.rampingServers().size, 0)
  })

  it('keeps ramping across a further reload, and leaves servers that stay alone', () => {
    const env = testEnv(6)
    const first = new UpstreamPool(poolConfig(servers.slice(0, 1), { slowStart: '10s' }), registry, new Metrics(), {
      env,
    })
    const second = new UpstreamPool(poolConfig(servers, { slowStart: '10s' }), registry, new Metrics(), {
      previous: first,
      env,
    })
    env.advance(4000)
    const third = new UpstreamPool(
      poolConfig([...servers, { url: 'http://127.0.0.1:3', name: 'c' }], { slowStart: '10s' }),
      registry,
      new Metrics(),
      { previous: second, env },
    )
    const ramping = third.rampingServers()
    assert.deepEqual([...ramping.keys()].sort(), ['b', 'c'])
    assert.equal(ramping.get('b'), 0.4)
    assert.equal(ramping.get('c'), 0.05)
  })
})

describe('leases', () => {
  it('admit answers go, wait or reject; every end() is idempotent', () => {
    const pool = new UpstreamPool(
      poolConfig([{ url: 'http://127.0.0.1:1', name: 'a' }], { queue: { maxInFlight: 1, size: 1 } }),
      registry,
      new Metrics(),
    )
    const request = { ctx: { clientIp: '10.0.0.1' }, keySource: undefined }
    const first = pool.admit(request)
    assert.equal(first.kind, 'go')
    if (first.kind !== 'go') return
    const attempt = first.lease.begin(first.lease.first, false)
    assert.equal(first.lease.first.load.inFlight, 1)
    attempt.end('success', 1)
    attempt.end('success', 1)
    assert.equal(first.lease.first.load.inFlight, 0, 'a try ended twice counts once')
    // The pool is at its in-flight cap: without a waiter, rejected; with one, queued.
    const rejected = pool.admit(request)
    assert.deepEqual(rejected.kind === 'reject' && rejected.code, 'SWY_OVERLOADED')
    let granted: unknown
    const waiter = { sticky: false, granted: (l: unknown) => (granted = l), rejected: () => {} }
    const queued = pool.admit(request, waiter)
    assert.equal(queued.kind, 'wait')
    first.lease.end()
    first.lease.end()
    return new Promise<void>((resolve) =>
      queueMicrotask(() => {
        // The ended lease's place went to the waiter, once: the second end() freed nothing more.
        assert.ok(granted !== undefined, 'the waiter got the place')
        const third = pool.admit(request)
        assert.equal(third.kind, 'reject')
        if (queued.kind === 'wait') queued.cancel()
        resolve()
      }),
    )
  })

  it('rejects with SWY_NO_SERVER when no server is available at all', () => {
    const pool = new UpstreamPool(poolConfig([{ url: 'http://127.0.0.1:1', weight: 0 }]), registry, new Metrics())
    const r = pool.admit({ ctx: { clientIp: '10.0.0.1' }, keySource: undefined })
    assert.equal(r.kind, 'reject')
    assert.equal(r.kind === 'reject' && r.code, 'SWY_NO_SERVER')
  })
})
