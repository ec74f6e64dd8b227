import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type OutlierClock, OutlierDetector, type OutlierSettings } from './outlier.js'

/** A manual clock whose timers run when time is advanced past them. */
function manualClock(): OutlierClock & { advance(ms: number): void } {
  let now = 0
  let timers: { at: number; fn: () => void }[] = []
  return {
    now: () => now,
    after(ms, fn) {
      timers.push({ at: now + ms, fn })
    },
    advance(ms) {
      now += ms
      const due = timers.filter((t) => t.at <= now)
      timers = timers.filter((t) => t.at > now)
      for (const t of due) t.fn()
    },
  }
}

const settings: OutlierSettings = {
  consecutiveFailures: 3,
  errorRate: undefined,
  baseEjectionMs: 1000,
  maxEjectionMs: 2500,
  maxEjectionPercent: 50,
}

describe('outlier detection', () => {
  it('ejects after consecutive failures, for base × n (capped), and lets the server back after', () => {
    const clock = manualClock()
    let changes = 0
    const d = new OutlierDetector(settings, 4, () => changes++, clock)
    d.record('a', false)
    d.record('a', false)
    d.record('a', true) // resets the streak
    d.record('a', false)
    d.record('a', false)
    assert.equal(d.ejected.has('a'), false)
    d.record('a', false)
    assert.equal(d.ejected.has('a'), true)
    clock.advance(999)
    assert.equal(d.ejected.has('a'), true)
    clock.advance(1)
    assert.equal(d.ejected.has('a'), false)
    for (let i = 0; i < 3; i++) d.record('a', false)
    clock.advance(1999)
    assert.equal(d.ejected.has('a'), true, 'the second ejection lasts twice as long')
    clock.advance(1)
    assert.equal(d.ejected.has('a'), false)
    for (let i = 0; i < 3; i++) d.record('a', false)
    clock.advance(2500)
    assert.equal(d.ejected.has('a'), false, 'the third would last 3 s, capped at 2.5 s')
    assert.equal(changes, 6)
  })

  it('never ejects more than maxEjectionPercent of the servers', () => {
    const d = new OutlierDetector(settings, 4, () => {}, manualClock())
    for (const id of ['a', 'b', 'c']) for (let i = 0; i < 3; i++) d.record(id, false)
    assert.deepEqual([...d.ejected].sort(), ['a', 'b'])
  })

  it('ejects on a failure rate over a window once there are enough requests', () => {
    const clock = manualClock()
    const d = new OutlierDetector(
      { ...settings, consecutiveFailures: 100, errorRate: { threshold: 0.5, minRequests: 10, windowMs: 5000 } },
      4,
      () => {},
      clock,
    )
    // Alternating: never 100 in a row, but 50% over the window.
    for (let i = 0; i < 9; i++) d.record('a', i % 2 === 1)
    assert.equal(d.ejected.has('a'), false, 'fewer than minRequests')
    d.record('a', false)
    assert.equal(d.ejected.has('a'), true)
    // A fresh window after the ejection: old failures no longer count.
    clock.advance(1000)
    for (let i = 0; i < 10; i++) d.record('a', i !== 0)
    assert.equal(d.ejected.has('a'), false)
  })
})
