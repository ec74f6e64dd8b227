/**
 * The balancer conformance suite (after hono's router suite): the checks every balancing algorithm
 * passes, whatever it is: the built-in ones (src/balancer/balancer.test.ts runs every entry of the
 * registry's table) and those a plugin adds, in the plugin's own tests:
 *
 *   import { balancerConformance } from 'switchyard-lb/testing'
 *   balancerConformance('least-time', (env) => new LeastTime(env))
 *
 * It registers node:test suites. Randomness and time are injected (a seeded generator and a manual
 * clock), so every run sees the same sequence.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Backend } from '../core/backend.js'
import type { Balancer, BalancerEnv, PickReport } from './types.js'

export interface ConformanceOptions {
  /**
   * Largest distance, in share points, between a server's share of 30,000 closed-loop picks and its
   * share of the weights. Default 0.02; algorithms that draw at random need about 0.05.
   */
  readonly tolerance?: number
}

/** A backend for balancer tests. */
export function backend(id: string, weight = 1): Backend {
  return {
    id,
    pool: 'p',
    host: '127.0.0.1',
    port: 1000 + id.length,
    origin: `http://${id}`,
    tls: false,
    weight,
    backup: false,
    draining: false,
    disabled: false,
  }
}

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A manual clock and a seeded generator. */
export function testEnv(seed = 1): BalancerEnv & { advance(ms: number): void } {
  let now = 0
  return {
    now: () => now,
    random: seeded(seed),
    advance(ms: number) {
      now += ms
    },
  }
}

/**
 * Closed-loop simulation: `picks` requests, each held in flight for `hold` further picks (so about
 * `hold` are in flight at once) and reported with the same latency. Returns each server's share.
 */
export function simulateShares(
  b: Balancer,
  servers: readonly Backend[],
  picks: number,
  hold = 30,
  env = testEnv(),
): Map<string, number> {
  const rand = seeded(99)
  const counts = new Map<string, number>(servers.map((s) => [s.id, 0]))
  const inFlight: Backend[] = []
  for (let i = 0; i < picks; i++) {
    const key = `k${Math.floor(rand() * 1e9)}`
    const chosen = b.pick({ clientIp: `10.${i % 250}.${(i >> 8) % 250}.${Math.floor(rand() * 250)}`, hashKey: key })
    const first = chosen[Symbol.iterator]().next()
    assert.equal(first.done, false)
    const id = (first.value as Backend).id
    counts.set(id, (counts.get(id) ?? 0) + 1)
    b.onStart?.(first.value as Backend)
    inFlight.push(first.value as Backend)
    if (inFlight.length > hold) b.onEnd?.(inFlight.shift() as Backend, 'success', 10)
    env.advance(1)
  }
  return new Map([...counts].map(([id, c]) => [id, c / picks]))
}

const ctx = { clientIp: '127.0.0.1' }

/**
 * Registers the conformance suite for one algorithm. `make(env)` builds a fresh balancer with the
 * given clock and randomness; its `algorithm` must be `name`.
 */
export function balancerConformance(
  name: string,
  make: (env?: BalancerEnv) => Balancer,
  options: ConformanceOptions = {},
): void {
  const tolerance = options.tolerance ?? 0.02
  describe(`balancer conformance: ${name}`, () => {
    it('reports its registered name', () => {
      assert.equal(make().algorithm, name)
    })

    it('yields nothing before update() and after update([])', () => {
      const b = make()
      assert.deepEqual([...b.pick(ctx)], [])
      b.update([backend('a')])
      b.update([])
      assert.deepEqual([...b.pick(ctx)], [])
    })

    it('always picks the only server', () => {
      const b = make()
      b.update([backend('only')])
      for (let i = 0; i < 10; i++)
        assert.deepEqual(
          [...b.pick({ clientIp: `10.0.0.${i}`, hashKey: `k${i}` })].map((x) => x.id),
          ['only'],
        )
    })

    it('yields every server with weight > 0 exactly once per pick, best first', () => {
      const b = make()
      b.update([backend('a', 1), backend('b', 2), backend('zero', 0), backend('c', 3)])
      for (let i = 0; i < 50; i++) {
        const ids = [...b.pick({ clientIp: `10.0.0.${i}`, hashKey: `key-${i}` })].map((x) => x.id)
        assert.equal(ids.length, 3)
        assert.deepEqual([...ids].sort(), ['a', 'b', 'c'])
      }
    })

    it('lets the caller skip an unavailable server: the next candidates cover the others', () => {
      const b = make()
      b.update([backend('a'), backend('down'), backend('c')])
      const counts: Record<string, number> = {}
      for (let i = 0; i < 300; i++) {
        let chosen: string | undefined
        for (const candidate of b.pick({ clientIp: `10.0.${i % 200}.${i % 7}`, hashKey: `k${i}` })) {
          if (candidate.id === 'down') continue // what the pool does with a server that cannot take requests
          chosen = candidate.id
          break
        }
        assert.ok(chosen, 'a candidate besides the unavailable one')
        counts[chosen] = (counts[chosen] ?? 0) + 1
        const server = backend(chosen)
        b.onStart?.(server)
        b.onEnd?.(server, 'success', 1)
      }
      assert.deepEqual(Object.keys(counts).sort(), ['a', 'c'])
    })

    it('never yields a server with weight 0, and yields nothing when all weights are 0', () => {
      const b = make()
      b.update([backend('a', 0), backend('b', 1)])
      for (let i = 0; i < 50; i++)
        assert.deepEqual(
          [...b.pick({ clientIp: `10.0.0.${i}`, hashKey: `k${i}` })].map((x) => x.id),
          ['b'],
        )
      b.update([backend('a', 0), backend('b', 0)])
      assert.deepEqual([...b.pick(ctx)], [])
    })

    it('follows a changed server list, and ignores feedback about servers it no longer has', () => {
      const b = make()
      const old = backend('a')
      b.update([old, backend('b')])
      b.onStart?.(old)
      b.update([backend('c'), backend('d'), backend('e')])
      b.onEnd?.(old, 'success', 5)
      const seen = new Set<string>()
      for (let i = 0; i < 200; i++)
        seen.add(([...b.pick({ clientIp: `10.0.${i}.1`, hashKey: `k${i}` })][0] as Backend).id)
      assert.deepEqual([...seen].sort(), ['c', 'd', 'e'])
    })

    it(`gives shares within ${tolerance * 100} points of the weights 1:2:3 over 30,000 picks (closed loop)`, (t) => {
      const env = testEnv(7)
      const b = make(env)
      const servers = [backend('a', 1), backend('b', 2), backend('c', 3)]
      b.update(servers)
      const shares = simulateShares(b, servers, 30_000, 30, env)
      t.diagnostic(`shares ${[...shares].map(([id, s]) => `${id}=${(s * 100).toFixed(2)}%`).join(' ')}`)
      const expected: Record<string, number> = { a: 1 / 6, b: 2 / 6, c: 3 / 6 }
      for (const [id, share] of shares)
        assert.ok(Math.abs(share - (expected[id] as number)) <= tolerance, `${id}: ${share} vs ${expected[id]}`)
    })

    it('describes a pick (when it has describe) in the order asked, and changes no pick that follows', (t) => {
      const servers = Array.from({ length: 5 }, (_, i) => backend(`s${i}`, 1 + (i % 2)))
      const env = testEnv(5)
      const quietEnv = testEnv(5)
      const asked = make(env)
      const quiet = make(quietEnv)
      if (asked.describe === undefined) return t.skip('no describe: explanations name its picks without scores')
      const describePick = asked.describe.bind(asked)
      asked.update(servers)
      quiet.update([...servers])
      for (let i = 0; i < 200; i++) {
        const c = { clientIp: `10.2.${i % 200}.9`, hashKey: `user-${i}` }
        const picked = [...asked.pick(c)]
        assert.deepEqual(
          picked.map((x) => x.id),
          [...quiet.pick(c)].map((x) => x.id),
        )
        const report: PickReport = describePick(c, picked)
        assert.ok(report.method.length > 0, 'a method')
        assert.deepEqual(
          report.servers.map((s) => s.id),
          picked.map((x) => x.id),
        )
        for (const s of report.servers) {
          assert.equal(typeof s.note, 'string')
          if (s.score !== undefined) assert.ok(Number.isFinite(s.score), `${s.id}: a finite score`)
        }
        const first = picked[0] as Backend
        for (const b of [asked, quiet]) {
          b.onStart?.(first)
          b.onEnd?.(first, i % 5 === 0 ? 'failure' : 'success', 1 + (i % 7))
        }
        env.advance(1)
        quietEnv.advance(1)
      }
    })

    it('picks in the same order after the same updates and inputs (two instances)', () => {
      const servers = Array.from({ length: 7 }, (_, i) => backend(`s${i}`, 1 + (i % 3)))
      const one = make(testEnv(3))
      const two = make(testEnv(3))
      one.update(servers)
      two.update([...servers])
      for (let i = 0; i < 500; i++) {
        const c = { clientIp: `10.1.${i % 200}.7`, hashKey: `user-${i}` }
        assert.deepEqual(
          [...one.pick(c)].map((x) => x.id),
          [...two.pick(c)].map((x) => x.id),
        )
      }
    })
  })
}
