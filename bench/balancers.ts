// What one balancing decision costs, per algorithm, in nanoseconds: `pick()` and taking its first
// candidate, plus the `onStart`/`onEnd` feedback that load-aware algorithms get for every request,
// with 100 and with 10,000 servers (weights 1 to 3). In-process, on the real balancers, with a fresh
// key and client address per pick (drawn from a pool of 4,096, so hashing sees realistic strings).
// Also reports how long `update()` (building schedules, rings, tables) takes for each size.
// Usage: npm run bench:balancers
import { ALGORITHMS, createBalancer, defaultOptions } from '../src/balancer/index.js'
import type { Backend } from '../src/core/backend.js'

const SIZES = [100, 10_000] as const
const ROUNDS = 5
/** Picks per round: enough for about 50 ms of work at the slowest sizes. */
const PICKS: Record<(typeof SIZES)[number], number> = { 100: 500_000, 10000: 50_000 }

function servers(n: number): Backend[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `s${i}`,
    pool: 'p',
    host: '10.0.0.1',
    port: 10_000 + i,
    origin: `http://10.0.0.1:${10_000 + i}`,
    tls: false,
    weight: 1 + (i % 3),
    backup: false,
    draining: false,
    disabled: false,
  }))
}

const KEYS = Array.from({ length: 4096 }, (_, i) => ({
  clientIp: `10.${(i >> 8) & 255}.${i & 255}.${(i * 7) & 255}`,
  hashKey: `session-${(i * 2654435761) >>> 0}`,
}))

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

interface Row {
  algorithm: string
  size: number
  pickNs: number
  updateMs: number
}

const rows: Row[] = []
for (const size of SIZES) {
  const list = servers(size)
  for (const algorithm of ALGORITHMS) {
    const b = createBalancer(defaultOptions(algorithm))
    const u0 = performance.now()
    b.update(list)
    const updateMs = performance.now() - u0
    const picks = PICKS[size]
    const perRound: number[] = []
    // Requests stay in flight for 64 picks, so load-aware algorithms see varied counts.
    const ring: Backend[] = new Array(64)
    for (let round = 0; round <= ROUNDS; round++) {
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < picks; i++) {
        const chosen = b
          .pick(KEYS[i & 4095]!)
          [Symbol.iterator]()
          .next().value as Backend
        b.onStart?.(chosen)
        const slot = i & 63
        const old = ring[slot]
        if (old !== undefined) b.onEnd?.(old, 'success', 5)
        ring[slot] = chosen
      }
      const ns = Number(process.hrtime.bigint() - t0) / picks
      if (round > 0) perRound.push(ns) // round 0 warms the JIT up
    }
    for (const old of ring) if (old !== undefined) b.onEnd?.(old, 'success', 5)
    rows.push({ algorithm, size, pickNs: median(perRound), updateMs })
  }
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits })
console.log(`Node ${process.version}, ${ROUNDS} rounds, median ns per pick (+ feedback)\n`)
console.log('| algorithm | pick, 100 servers | pick, 10,000 servers | update(), 100 | update(), 10,000 |')
console.log('| --- | --: | --: | --: | --: |')
for (const algorithm of ALGORITHMS) {
  const small = rows.find((r) => r.algorithm === algorithm && r.size === 100)!
  const large = rows.find((r) => r.algorithm === algorithm && r.size === 10_000)!
  console.log(
    `| \`${algorithm}\` | ${fmt(small.pickNs)} ns | ${fmt(large.pickNs)} ns | ${fmt(small.updateMs, 2)} ms | ${fmt(large.updateMs, 1)} ms |`,
  )
}
