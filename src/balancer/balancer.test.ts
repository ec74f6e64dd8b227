/**
 * Conformance suite: every registered algorithm passes the same checks (after hono's router suite).
 * The suite iterates the registry's table itself, so adding an algorithm there adds it here. Randomness and time are injected
 * (a seeded generator and a manual clock), so every run sees the same sequence.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backend, make } from '../../test/helpers/balancers.js'
import type { Backend } from '../core/backend.js'
import { balancerConformance } from './conformance.js'
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

  it('gives every built-in algorithm a describe(), for explanations', () => {
    for (const name of ALGORITHMS)
      assert.equal(typeof createBalancer(balanceObjectSchema.parse({ algorithm: name })).describe, 'function', name)
  })

  it('looks an algorithm up in a caller-given table (room for plugins)', () => {
    const custom = new RoundRobin()
    const table: BalancerTable = { ...BALANCERS, 'round-robin': { ...BALANCERS['round-robin'], create: () => custom } }
    assert.equal(createBalancer({ algorithm: 'round-robin' }, undefined, table), custom)
    assert.notEqual(createBalancer({ algorithm: 'round-robin' }), custom)
    assert.throws(() => createBalancer({ algorithm: 'maglev' } as never, undefined, {}), /unknown algorithm "maglev"/)
  })
})

const RANDOMIZED_SET: ReadonlySet<string> = new Set(RANDOMIZED)
for (const algorithm of Object.keys(BALANCERS) as Algorithm[])
  balancerConformance(algorithm, (env) => make(algorithm, env), {
    tolerance: RANDOMIZED_SET.has(algorithm) ? 0.05 : 0.02,
  })

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
