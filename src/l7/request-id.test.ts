import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { newRequestId } from './request-id.js'

describe('request ids', () => {
  it('are version 4 UUIDs, all different, across pool refills', () => {
    const seen = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const id = newRequestId()
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
      seen.add(id)
    }
    assert.equal(seen.size, 2000)
  })

  it('spread their random digits evenly', () => {
    // The 30 random hex digits of each id (version and variant nibbles left out): each of the 16
    // digits should come up about 1/16 of the time.
    const counts = new Array<number>(16).fill(0)
    const n = 4000
    for (let i = 0; i < n; i++) {
      const hex = newRequestId().replaceAll('-', '')
      for (let k = 0; k < 32; k++) if (k !== 12 && k !== 16) counts[Number.parseInt(hex[k]!, 16)]!++
    }
    const expected = (n * 30) / 16
    for (const c of counts) assert.ok(Math.abs(c - expected) < expected * 0.1, `digit count ${c} near ${expected}`)
  })
})
