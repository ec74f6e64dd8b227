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
