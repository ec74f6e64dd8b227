/** Black-box traffic splits through the real proxy to real loopback backends. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { startBackends, type TestBackend } from './helpers/backends.js'
import { type RunningLb, simpleConfig, startLb } from './helpers/lb.js'

async function countResponses(url: string, n: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (let i = 0; i < n; i++) {
    const res = await fetch(url)
    assert.equal(res.status, 200)
    const name = await res.text()
    counts[name] = (counts[name] ?? 0) + 1
  }
  return counts
}

describe('distribution over real backends', () => {
  let backends: TestBackend[]
  before(async () => {
    backends = await startBackends(3)
  })
  after(async () => {
    await Promise.all(backends.map((b) => b.close()))
  })

  for (const algorithm of ['round-robin', 'weighted-round-robin'] as const) {
    it(`${algorithm}: 300 requests over 3 equal servers give exactly 100 each`, async () => {
      let lb: RunningLb | undefined
      try {
        lb = await startLb({
          ...simpleConfig(backends.map((b) => b.url)),
          pools: [{ name: 'pool', balance: algorithm, servers: backends.map((b) => b.url) }],
        })
        assert.deepEqual(await countResponses(lb.url, 300), { b1: 100, b2: 100, b3: 100 })
      } finally {
        await lb?.close()
      }
    })

    it(`${algorithm}: weights 1:2:3 over 300 requests give 50/100/150`, async () => {
      let lb: RunningLb | undefined
      try {
        lb = await startLb({
          ...simpleConfig([]),
          pools: [
            { name: 'pool', balance: algorithm, servers: backends.map((b, i) => ({ url: b.url, weight: i + 1 })) },
          ],
        })
        assert.deepEqual(await countResponses(lb.url, 300), { b1: 50, b2: 100, b3: 150 })
      } finally {
        await lb?.close()
      }
    })
  }

  it('spreads concurrent requests evenly too (150 in flight at once)', async () => {
    const lb = await startLb(simpleConfig(backends.map((b) => b.url)))
    try {
      const names = await Promise.all(Array.from({ length: 150 }, () => fetch(lb.url).then((r) => r.text())))
      const counts: Record<string, number> = {}
      for (const n of names) counts[n] = (counts[n] ?? 0) + 1
      assert.deepEqual(counts, { b1: 50, b2: 50, b3: 50 })
    } finally {
      await lb.close()
    }
  })
})
