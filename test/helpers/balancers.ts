/** Balancer test helpers: backends, a seeded generator, a manual clock, and a closed-loop simulation. */
import assert from 'node:assert/strict'
import { type ALGORITHMS, type BalancerEnv, createBalancer, defaultOptions } from '../../src/balancer/index.js'
import type { Balancer } from '../../src/balancer/types.js'
import type { Backend } from '../../src/core/backend.js'

export function backend(id: string, weight = 1): Backend {
  return {
    id,
    pool: 'p',
    host: '127.0.0.1',
    port: 1000 + id.length,
    origin: `http://${id}`,
    weight,
    backup: false,
    draining: false,
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

export function make(algorithm: (typeof ALGORITHMS)[number], env: BalancerEnv = testEnv()): Balancer {
  return createBalancer(defaultOptions(algorithm), env)
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
    counts.set(first.value.id, counts.get(first.value.id)! + 1)
    b.onStart?.(first.value)
    inFlight.push(first.value)
    if (inFlight.length > hold) b.onEnd?.(inFlight.shift()!, 'success', 10)
    env.advance(1)
  }
  return new Map([...counts].map(([id, c]) => [id, c / picks]))
}
