/**
 * Conformance suite: every registered algorithm passes the same checks (after hono's router suite).
 * Adding an algorithm to the registry adds it here automatically.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Backend } from '../core/backend.js'
import { ALGORITHMS, createBalancer } from './index.js'

function backend(id: string, weight = 1): Backend {
  return { id, pool: 'p', host: '127.0.0.1', port: 1000 + id.length, origin: `http://${id}`, weight }
}

const ctx = { clientIp: '127.0.0.1' }

function firstChoices(algorithm: (typeof ALGORITHMS)[number], backends: Backend[], picks: number): Map<string, number> {
  const b = createBalancer({ algorithm })
  b.update(backends)
  const counts = new Map<string, number>()
  for (let i = 0; i < picks; i++) {
    const first = b.pick(ctx)[Symbol.iterator]().next()
    assert.equal(first.done, false)
    counts.set(first.value.id, (counts.get(first.value.id) ?? 0) + 1)
  }
  return counts
}

for (const algorithm of ALGORITHMS) {
  describe(`balancer conformance: ${algorithm}`, () => {
    it('reports its registered name', () => {
      assert.equal(createBalancer({ algorithm }).algorithm, algorithm)
    })

    it('yields nothing before update() and after update([])', () => {
      const b = createBalancer({ algorithm })
      assert.deepEqual([...b.pick(ctx)], [])
      b.update([backend('a')])
      b.update([])
      assert.deepEqual([...b.pick(ctx)], [])
    })

    it('always picks the only server', () => {
      const b = createBalancer({ algorithm })
      b.update([backend('only')])
      for (let i = 0; i < 10; i++)
        assert.deepEqual(
          [...b.pick(ctx)].map((x) => x.id),
          ['only'],
        )
    })

    it('yields every server with weight > 0 exactly once per pick, best first', () => {
      const b = createBalancer({ algorithm })
      b.update([backend('a', 1), backend('b', 2), backend('zero', 0), backend('c', 3)])
      for (let i = 0; i < 20; i++) {
        const ids = [...b.pick(ctx)].map((x) => x.id)
        assert.equal(ids.length, 3)
        assert.deepEqual([...ids].sort(), ['a', 'b', 'c'])
      }
    })

    it('gives equal shares with equal weights (300 picks over 3 → 100 each)', () => {
      const counts = firstChoices(algorithm, [backend('a'), backend('b'), backend('c')], 300)
      assert.deepEqual(Object.fromEntries(counts), { a: 100, b: 100, c: 100 })
    })

    it('gives exact weighted shares (1:2:3 over 600 picks → 100/200/300)', () => {
      const counts = firstChoices(algorithm, [backend('a', 1), backend('b', 2), backend('c', 3)], 600)
      assert.deepEqual(Object.fromEntries(counts), { a: 100, b: 200, c: 300 })
    })

    it('spreads weighted picks smoothly (no server twice in a row when it holds under half the weight)', () => {
      const b = createBalancer({ algorithm })
      b.update([backend('a', 1), backend('b', 1), backend('c', 2)])
      let prev = ''
      for (let i = 0; i < 40; i++) {
        const id = [...b.pick(ctx)][0]!.id
        if (id !== 'c') assert.notEqual(id, prev, `pick ${i} repeated ${id}`)
        prev = id
      }
    })

    it('never yields a server with weight 0, and yields nothing when all weights are 0', () => {
      const counts = firstChoices(algorithm, [backend('a', 0), backend('b', 1)], 50)
      assert.deepEqual(Object.fromEntries(counts), { b: 50 })
      const b = createBalancer({ algorithm })
      b.update([backend('a', 0), backend('b', 0)])
      assert.deepEqual([...b.pick(ctx)], [])
    })

    it('follows a changed server list', () => {
      const b = createBalancer({ algorithm })
      b.update([backend('a'), backend('b')])
      b.pick(ctx)
      b.update([backend('c'), backend('d'), backend('e')])
      const seen = new Set<string>()
      for (let i = 0; i < 30; i++) seen.add([...b.pick(ctx)][0]!.id)
      assert.deepEqual([...seen].sort(), ['c', 'd', 'e'])
    })

    it('handles a very long weight cycle without a precomputed table blow-up', () => {
      const many = Array.from({ length: 200 }, (_, i) => backend(`s${i}`, 997 - (i % 3)))
      const counts = firstChoices(algorithm, many, 2000)
      assert.equal(
        [...counts.values()].reduce((a, c) => a + c, 0),
        2000,
      )
      assert.ok(Math.max(...counts.values()) <= 11, 'no server picked far more than its share')
    })
  })
}
