import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Deadline } from './deadline.js'

function fired(d: { at: number }): Promise<void> {
  return new Promise((resolve) => {
    const check = () => (d.at > 0 ? resolve() : setTimeout(check, 5))
    check()
  })
}

describe('Deadline', () => {
  it('fires once, no earlier than due, and a later due time moves it without a new timer', async () => {
    const seen = { at: 0, count: 0 }
    const d = new Deadline(() => {
      seen.at = performance.now()
      seen.count++
    })
    d.set(30)
    // Moved later: the first Node timer (30 ms) fires early for the new due time and is set again.
    // The bound is measured from this second set(): a 10 ms setTimeout can itself resolve a little
    // before 10 ms of performance.now() have passed, since Node's loop clock lags it.
    await new Promise((r) => setTimeout(r, 10))
    const moved = performance.now()
    d.set(60)
    assert.equal(d.armed, true)
    await fired(seen)
    assert.ok(seen.at - moved >= 60, `fired ${seen.at - moved} ms after set(60)`)
    assert.equal(seen.count, 1)
    assert.equal(d.armed, false)
  })

  it('an earlier due time replaces the scheduled timer; clear() and dispose() stop it', async () => {
    const seen = { at: 0 }
    const d = new Deadline(() => {
      seen.at = performance.now()
    })
    const start = performance.now()
    d.set(10_000)
    d.set(20)
    await fired(seen)
    assert.ok(seen.at - start < 5000)
    let count = 0
    const quiet = new Deadline(() => count++)
    quiet.set(5)
    quiet.clear()
    const gone = new Deadline(() => count++)
    gone.set(5)
    gone.dispose()
    await new Promise((r) => setTimeout(r, 30)) // asserting that nothing happens within it
    assert.equal(count, 0)
  })
})
