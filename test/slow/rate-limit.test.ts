/**
 * A client held over its rate limit for 10 s (docs/security.md): with `rate: 100, per: 1s, burst: 50`,
 * it gets `100 × 10 + 50` requests accepted (plus the first, GCRA's conforming one), within 2%, while
 * another client address keeps being served. Bounded: 10 s of requests from 8 connections, then stop.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import type { ConfigInput } from '../../src/index.js'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { type RunningLb, startLb } from '../helpers/lb.js'

const HOLD_MS = 10_000
const RATE = 100
const BURST = 50

describe('rate limit held for 10 s', () => {
  let backend: TestBackend
  let lb: RunningLb
  before(async () => {
    backend = await startBackend('b')
    lb = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [{ pool: 'p' }],
          rateLimit: { rate: RATE, per: '1s', burst: BURST },
        },
      ],
      pools: [{ name: 'p', servers: [backend.url] }],
    } as ConfigInput)
  })
  after(async () => {
    await lb.close()
    await backend.close()
  })

  it(`accepts rate × 10 s + burst within 2%, and another address is unaffected`, async () => {
    const attacker = new Agent({ localAddress: '127.0.0.2', connections: 8, pipelining: 1 })
    const other = new Agent({ localAddress: '127.0.0.3' })
    let accepted = 0
    let refused = 0
    let otherOk = 0
    let otherFailed = 0
    const started = performance.now()
    let firstMs = Number.NaN
    let lastMs = 0
    const worker = async () => {
      while (performance.now() - started < HOLD_MS) {
        const t = performance.now()
        const res = await request(lb.url, { dispatcher: attacker })
        await res.body.dump()
        if (res.statusCode === 200) {
          accepted++
          if (Number.isNaN(firstMs)) firstMs = t
          lastMs = performance.now()
        } else if (res.statusCode === 429) refused++
        else throw new Error(`unexpected status ${res.statusCode}`)
      }
    }
    const bystander = async () => {
      while (performance.now() - started < HOLD_MS) {
        const res = await request(lb.url, { dispatcher: other })
        await res.body.dump()
        if (res.statusCode === 200) otherOk++
        else otherFailed++
        // About 20 requests a second: well under the limit.
        await new Promise((r) => setTimeout(r, 50))
      }
    }
    try {
      await Promise.all([...Array.from({ length: 8 }, worker), bystander()])
    } finally {
      await attacker.close()
      await other.close()
    }
    const heldMs = lastMs - firstMs
    const expected = (RATE * heldMs) / 1000 + BURST + 1
    process.stdout.write(
      `# held ${heldMs.toFixed(0)} ms: ${accepted} accepted, ${refused} refused; expected ${expected.toFixed(1)}; other address ${otherOk} ok, ${otherFailed} failed\n`,
    )
    assert.ok(refused > accepted, 'the client was held over its limit')
    assert.ok(Math.abs(accepted - expected) / expected < 0.02, `${accepted} accepted, expected ${expected.toFixed(1)}`)
    assert.equal(otherFailed, 0)
    assert.ok(otherOk > 50)
  })
})
