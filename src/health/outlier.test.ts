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

  it('is adopted by the next generation with its ejections and streaks, and forgets servers that left', () => {
    const clock = manualClock()
    let firstChanges = 0
    let nextChanges = 0
    const d = new OutlierDetector(settings, 4, () => firstChanges++, clock)
    for (let i = 0; i < 3; i++) d.record('a', false)
    d.record('b', false)
    d.record('b', false)
    assert.deepEqual([...d.ejected], ['a'])
    clock.advance(400)
    // A reload (or a runtime change) builds a new generation: a stricter streak, the same records.
    const next = OutlierDetector.adopt(d, { ...settings, consecutiveFailures: 2 }, 4, () => nextChanges++)
    assert.notEqual(next, d)
    assert.deepEqual([...next.ejected], ['a'])
    next.record('b', false) // b's third failure in a row, over a new limit of 2
    assert.deepEqual([...next.ejected].sort(), ['a', 'b'])
    assert.equal(nextChanges, 1)
    // The previous generation is untouched: it serves on if the new one is refused.
    assert.deepEqual([...d.ejected], ['a'])
    // The server that left is forgotten; its pending return does nothing.
    next.retain(new Set(['b', 'c', 'd']))
    assert.deepEqual([...next.ejected], ['b'])
    clock.advance(600) // a's ejection (1000 ms from its start) is over in both
    assert.deepEqual([...d.ejected], [])
    assert.deepEqual([...next.ejected], ['b'])
    clock.advance(400) // b's, 1000 ms after it began
    assert.deepEqual([...next.ejected], [])
    assert.equal(firstChanges, 2)
    // A new detector when there was none before.
    assert.notEqual(
      OutlierDetector.adopt(undefined, settings, 2, () => {}),
      d,
    )
  })

  it('caps ejections by the servers that remain after retain', () => {
    const clock = manualClock()
    const d = new OutlierDetector(settings, 4, () => {}, clock)
    d.retain(new Set(['a', 'b', 'c']))
    for (let i = 0; i < 3; i++) d.record('a', false)
    for (let i = 0; i < 3; i++) d.record('b', false)
    // 50% of 3 servers is 1 ejection at most (of 4 it would have been 2).
    assert.deepEqual([...d.ejected], ['a'])
  })
})
