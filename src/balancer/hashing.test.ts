/**
 * Properties of the consistent-hashing algorithms: how many keys move when a server leaves, that
 * separately built instances agree, and that bounded loads cap a hot key's server.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { backend, seeded } from '../../test/helpers/balancers.js'
import type { Backend } from '../core/backend.js'
import { balanceObjectSchema, createBalancer, defaultOptions } from './index.js'
import type { Balancer } from './types.js'

const KEYS = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)

function mapping(b: Balancer): string[] {
  return KEYS.map((k) => [...b.pick({ clientIp: k, hashKey: k })][0]!.id)
}

function built(algorithm: 'ring-hash' | 'maglev' | 'ip-hash', servers: Backend[]): Balancer {
  const b = createBalancer(defaultOptions(algorithm))
  b.update(servers)
  return b
}

const TEN = Array.from({ length: 10 }, (_, i) => backend(`server-${i}`))

describe('consistent hashing', () => {
  for (const algorithm of ['ring-hash', 'maglev', 'ip-hash'] as const) {
    it(`${algorithm}: removing 1 server of 10 moves at most 12% of 10,000 keys`, (t) => {
      const before = mapping(built(algorithm, TEN))
      const removed = 'server-3'
      const after = mapping(
        built(
          algorithm,
          TEN.filter((s) => s.id !== removed),
        ),
      )
      const moved = before.filter((id, i) => id !== after[i]).length
      const movedOthers = before.filter((id, i) => id !== after[i] && id !== removed).length
      const onRemoved = before.filter((id) => id === removed).length
      t.diagnostic(
        `${algorithm}: ${moved} of 10,000 keys moved (${(moved / 100).toFixed(2)}%); ${onRemoved} were on the removed server; ${movedOthers} moved between servers that stayed`,
      )
      assert.ok(moved <= 1200, `${moved} keys moved`)
      // Every key of the removed server has to move.
      assert.ok(after.every((id) => id !== removed))
      if (algorithm !== 'maglev') assert.equal(movedOthers, 0, 'a ring moves only the keys of the server that left')
    })

    it(`${algorithm}: two instances built separately, from the list in another order, map 10,000 keys alike`, () => {
      const one = mapping(built(algorithm, TEN))
      const two = mapping(built(algorithm, [...TEN].reverse()))
      assert.deepEqual(two, one)
    })
  }

  it('ring-hash and maglev: weights set the shares of the keys', (t) => {
    const servers = [backend('a', 1), backend('b', 2), backend('c', 3)]
    for (const algorithm of ['ring-hash', 'maglev'] as const) {
      const ids = mapping(built(algorithm, servers))
      const share = (id: string) => ids.filter((x) => x === id).length / ids.length
      t.diagnostic(`${algorithm}: a ${share('a').toFixed(3)} b ${share('b').toFixed(3)} c ${share('c').toFixed(3)}`)
      assert.ok(Math.abs(share('a') - 1 / 6) < 0.02)
      assert.ok(Math.abs(share('b') - 2 / 6) < 0.02)
      assert.ok(Math.abs(share('c') - 3 / 6) < 0.02)
    }
  })

  it('maglev: the table size must be prime', () => {
    assert.equal(balanceObjectSchema.safeParse({ algorithm: 'maglev', tableSize: 65536 }).success, false)
    assert.equal(balanceObjectSchema.safeParse({ algorithm: 'maglev', tableSize: 655373 }).success, true)
  })
})

/** Draws key indices 0..n-1 with P(k) ∝ 1/(k+1)^s. */
function zipf(n: number, s: number, rand: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s
    cdf[k] = sum
  }
  return () => {
    const x = rand() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid]! > x) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}

describe('bounded loads', () => {
  /** 2,000 requests with Zipf(1.1) keys over 1,000 keys, all held in flight: each server's load. */
  function loads(hashBalanceFactor: number | undefined): number[] {
    const b = createBalancer({
      ...defaultOptions('ring-hash'),
      ...(hashBalanceFactor ? { hashBalanceFactor } : {}),
    } as never)
    b.update(TEN)
    const draw = zipf(1000, 1.1, seeded(11))
    const load = new Map<string, number>(TEN.map((s) => [s.id, 0]))
    for (let i = 0; i < 2000; i++) {
      const key = `key-${draw()}`
      const chosen = [...b.pick({ clientIp: '10.0.0.1', hashKey: key })][0]!
      b.onStart?.(chosen)
      load.set(chosen.id, load.get(chosen.id)! + 1)
    }
    return [...load.values()]
  }

  it('with hashBalanceFactor 1.25, no server holds more than 1.25 × the mean under Zipf(1.1) keys', (t) => {
    const bounded = loads(1.25)
    const free = loads(undefined)
    const mean = 2000 / 10
    t.diagnostic(`max load: ${Math.max(...bounded)} with the bound, ${Math.max(...free)} without (mean ${mean})`)
    assert.ok(Math.max(...bounded) <= 1.25 * mean, `max ${Math.max(...bounded)}`)
    // The skew is real: without the bound, the hot keys' servers are far above it.
    assert.ok(Math.max(...free) > 1.25 * mean)
  })

  it('keys move only while their server is full: a key returns to its server once it drains', () => {
    const b = createBalancer({ ...defaultOptions('ring-hash'), hashBalanceFactor: 1.25 } as never)
    b.update(TEN)
    const home = [...b.pick({ clientIp: '', hashKey: 'hot' })][0]!
    // Fill the home server far past its bound (other servers idle): the hot key moves on.
    for (let i = 0; i < 10; i++) b.onStart?.(home)
    assert.notEqual([...b.pick({ clientIp: '', hashKey: 'hot' })][0]!.id, home.id)
    for (let i = 0; i < 10; i++) b.onEnd?.(home, 'success', 1)
    assert.equal([...b.pick({ clientIp: '', hashKey: 'hot' })][0]!.id, home.id)
  })
})
