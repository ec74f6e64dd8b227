/**
 * Conformance suite: every registered algorithm passes the same checks (after hono's router suite).
 * The suite iterates the registry's table itself, so adding an algorithm there adds it here. Randomness and time are injected
 * (a seeded generator and a manual clock), so every run sees the same sequence.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backend, make, simulateShares, testEnv } from '../../test/helpers/balancers.js'
import type { Backend } from '../core/backend.js'
import { ALGORITHMS, BALANCERS, type BalancerTable, balanceObjectSchema, createBalancer } from './index.js'
import { RoundRobin } from './round-robin.js'

type Algorithm = (typeof ALGORITHMS)[number]

const ctx = { clientIp: '127.0.0.1' }

/** Deterministic rotations: exact shares over a weight cycle, whatever the feedback. */
const ROTATIONS: readonly Algorithm[] = ['round-robin', 'weighted-round-robin']
/** Algorithms whose choice depends on a key: the fairness runs give each request a new key. */
const HASHING: readonly Algorithm[] = ['ip-hash', 'ring-hash', 'maglev']
/** Random draws: shares within 5 points instead of 2. */
const RANDOMIZED: readonly Algorithm[] = ['random', 'least-request', 'peak-ewma']

describe('balancer registry', () => {
  it('derives the names and the config union from the one table', () => {
    assert.deepEqual(ALGORITHMS, Object.keys(BALANCERS))
    for (const [name, entry] of Object.entries(BALANCERS)) {
      assert.equal(entry.schema.shape.algorithm.value, name, `${name}: its schema's algorithm literal`)
      assert.equal(balanceObjectSchema.safeParse({ algorithm: name }).success, true, name)
    }
  })

  it('looks an algorithm up in a caller-given table (room for plugins)', () => {
    const custom = new RoundRobin()
    const table: BalancerTable = { ...BALANCERS, 'round-robin': { ...BALANCERS['round-robin'], create: () => custom } }
    assert.equal(createBalancer({ algorithm: 'round-robin' }, undefined, table), custom)
    assert.notEqual(createBalancer({ algorithm: 'round-robin' }), custom)
    assert.throws(() => createBalancer({ algorithm: 'maglev' } as never, undefined, {}), /unknown algorithm "maglev"/)
  })
})

for (const algorithm of Object.keys(BALANCERS) as Algorithm[]) {
  describe(`balancer conformance: ${algorithm}`, () => {
    it('reports its registered name', () => {
      assert.equal(make(algorithm).algorithm, algorithm)
    })

    it('yields nothing before update() and after update([])', () => {
      const b = make(algorithm)
      assert.deepEqual([...b.pick(ctx)], [])
      b.update([backend('a')])
      b.update([])
      assert.deepEqual([...b.pick(ctx)], [])
    })

    it('always picks the only server', () => {
      const b = make(algorithm)
      b.update([backend('only')])
      for (let i = 0; i < 10; i++)
        assert.deepEqual(
          [...b.pick({ clientIp: `10.0.0.${i}`, hashKey: `k${i}` })].map((x) => x.id),
          ['only'],
        )
    })

    it('yields every server with weight > 0 exactly once per pick, best first', () => {
      const b = make(algorithm)
      b.update([backend('a', 1), backend('b', 2), backend('zero', 0), backend('c', 3)])
      for (let i = 0; i < 50; i++) {
        const ids = [...b.pick({ clientIp: `10.0.0.${i}`, hashKey: `key-${i}` })].map((x) => x.id)
        assert.equal(ids.length, 3)
        assert.deepEqual([...ids].sort(), ['a', 'b', 'c'])
      }
    })

    it('lets the caller skip an unavailable server: the next candidates cover the others', () => {
      const b = make(algorithm)
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
      const b = make(algorithm)
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
      const b = make(algorithm)
      const old = backend('a')
      b.update([old, backend('b')])
      b.onStart?.(old)
      b.update([backend('c'), backend('d'), backend('e')])
      b.onEnd?.(old, 'success', 5)
      const seen = new Set<string>()
      for (let i = 0; i < 200; i++) seen.add([...b.pick({ clientIp: `10.0.${i}.1`, hashKey: `k${i}` })][0]!.id)
      assert.deepEqual([...seen].sort(), ['c', 'd', 'e'])
    })

    const tolerance = RANDOMIZED.includes(algorithm) ? 0.05 : 0.02
    it(`gives shares within ${tolerance * 100} points of the weights 1:2:3 over 30,000 picks (closed loop)`, (t) => {
      const env = testEnv(7)
      const b = make(algorithm, env)
      const servers = [backend('a', 1), backend('b', 2), backend('c', 3)]
      b.update(servers)
      const shares = simulateShares(b, servers, 30_000, 30, env)
      t.diagnostic(`shares ${[...shares].map(([id, s]) => `${id}=${(s * 100).toFixed(2)}%`).join(' ')}`)
      const expected: Record<string, number> = { a: 1 / 6, b: 2 / 6, c: 3 / 6 }
      for (const [id, share] of shares)
        assert.ok(Math.abs(share - expected[id]!) <= tolerance, `${id}: ${share} vs ${expected[id]}`)
    })

    it('picks in the same order after the same updates and inputs (two instances)', () => {
      const servers = Array.from({ length: 7 }, (_, i) => backend(`s${i}`, 1 + (i % 3)))
      const one = make(algorithm, testEnv(3))
      const two = make(algorithm, testEnv(3))
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

describe('rotations', () => {
  for (const algorithm of ROTATIONS) {
    const firstChoices = (backends: Backend[], picks: number) => {
      const b = make(algorithm)
      b.update(backends)
      const counts: Record<string, number> = {}
      for (let i = 0; i < picks; i++) {
        const id = [...b.pick(ctx)][0]!.id
        counts[id] = (counts[id] ?? 0) + 1
      }
      return counts
    }

    it(`${algorithm}: exact shares (1:2:3 over 600 picks → 100/200/300)`, () => {
      assert.deepEqual(firstChoices([backend('a', 1), backend('b', 2), backend('c', 3)], 600), {
        a: 100,
        b: 200,
        c: 300,
      })
    })

    it(`${algorithm}: smooth (no server twice in a row when it holds under half the weight)`, () => {
      const b = make(algorithm)
      b.update([backend('a', 1), backend('b', 1), backend('c', 2)])
      let prev = ''
      for (let i = 0; i < 40; i++) {
        const id = [...b.pick(ctx)][0]!.id
        if (id !== 'c') assert.notEqual(id, prev, `pick ${i} repeated ${id}`)
        prev = id
      }
    })

    it(`${algorithm}: a very long weight cycle needs no precomputed table blow-up`, () => {
      const many = Array.from({ length: 200 }, (_, i) => backend(`s${i}`, 997 - (i % 3)))
      const counts = firstChoices(many, 2000)
      assert.equal(
        Object.values(counts).reduce((a, c) => a + c, 0),
        2000,
      )
      assert.ok(Math.max(...Object.values(counts)) <= 11, 'no server picked far more than its share')
    })
  }
})

describe('hashing algorithms', () => {
  for (const algorithm of HASHING) {
    it(`${algorithm}: the same key always reaches the same server`, () => {
      const b = make(algorithm)
      b.update(Array.from({ length: 5 }, (_, i) => backend(`s${i}`)))
      for (let i = 0; i < 100; i++) {
        const c = { clientIp: `10.0.0.${i}`, hashKey: `user-${i}` }
        const first = [...b.pick(c)][0]!.id
        for (let k = 0; k < 3; k++) assert.equal([...b.pick(c)][0]!.id, first)
      }
    })
  }
})
