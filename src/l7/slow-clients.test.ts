import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Lag, newLag, TICK_MS } from './slow-clients.js'

/** Ticks `lag` once a second over `samples` ([waiting, counter]); the tick numbers that judged it slow. */
function run(lag: Lag, samples: readonly [boolean, number][], rate = 512, windowMs = 10_000): number[] {
  const slow: number[] = []
  samples.forEach(([waiting, count], i) => {
    if (lag.tick(waiting, count, rate, windowMs)) slow.push(i + 1)
  })
  return slow
}

describe('slow-client rate', () => {
  it('a client that stops is judged one window after the first tick that waited on it', () => {
    // 4 MB went out before the first waiting tick (the kernel's buffers), then nothing.
    const samples: [boolean, number][] = [
      [false, 1000],
      [true, 4_000_000],
      ...Array.from({ length: 12 }, () => [true, 4_000_000] as [boolean, number]),
    ]
    assert.deepEqual(run(newLag(), samples), [11])
  })

  it('a client above the rate is never judged, even when it reads in bursts', () => {
    const steady: [boolean, number][] = Array.from({ length: 40 }, (_, i) => [true, (i + 1) * 1024])
    assert.deepEqual(run(newLag(), steady), [])
    // 16 KiB every other tick, waited on only at the ticks in between: 8 KiB/s on average.
    const bursts: [boolean, number][] = Array.from({ length: 40 }, (_, i) => [
      i % 2 === 1,
      Math.floor(i / 2 + 1) * 16_384,
    ])
    assert.deepEqual(run(newLag(), bursts), [])
  })

  it('a client below the rate is judged at the end of each window it stays below', () => {
    const trickle: [boolean, number][] = Array.from({ length: 25 }, (_, i) => [true, (i + 1) * 100])
    assert.deepEqual(run(newLag(), trickle), [10, 20])
    assert.equal(TICK_MS, 1000)
  })
})
