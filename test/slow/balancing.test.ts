/**
 * Balancing against real backends: load-aware algorithms steer away from a slow server, and hashing
 * algorithms keep each key on one server, keyed on the request field that `hashOn` names.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import type { ConfigInput } from '../../src/index.js'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { type RunningLb, startLb } from '../helpers/lb.js'

/** Answers after `delayMs`, with its name. */
function delayed(name: string, delayMs: number): Promise<TestBackend> {
  return startBackend(name, (req, res, b) => {
    req.resume()
    setTimeout(() => res.end(b.name), delayMs)
  })
}

function pool(balance: ConfigInput['pools'][number]['balance'], backends: TestBackend[]): ConfigInput {
  return {
    logging: { level: 'warn' },
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', balance, servers: backends.map((b) => ({ url: b.url, name: b.name })) }],
  }
}

/** Sends `total` GETs, `concurrency` at a time; counts the responses per backend name. */
async function drive(
  url: string,
  total: number,
  concurrency: number,
  headers: (i: number) => Record<string, string> = () => ({}),
): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  const agent = new Agent({ connections: concurrency })
  let next = 0
  const worker = async () => {
    while (next < total) {
      const i = next++
      const res = await request(`${url}/r${i}`, { dispatcher: agent, headers: headers(i) })
      assert.equal(res.statusCode, 200)
      const name = await res.body.text()
      counts.set(name, (counts.get(name) ?? 0) + 1)
    }
  }
  try {
    await Promise.all(Array.from({ length: concurrency }, worker))
  } finally {
    await agent.close()
  }
  return counts
}

describe('load-aware balancing against a slow server', () => {
  let backends: TestBackend[]
  before(async () => {
    // Delays far above the proxy's own latency (several ms per request on a loaded machine), so that the
    // contrast the algorithms see is the servers' and not the proxy's: 2 ms against 20 ms was swamped.
    backends = [await delayed('fast-1', 5), await delayed('fast-2', 5), await delayed('slow', 200)]
  })
  after(async () => {
    for (const b of backends) await b.close()
  })

  for (const algorithm of ['least-connections', 'peak-ewma', 'least-request'] as const) {
    it(`${algorithm}: the server 40× slower gets under 15% of 900 requests, each fast one over 3× as many`, async (t) => {
      const lb: RunningLb = await startLb(pool(algorithm, backends))
      try {
        const counts = await drive(lb.url, 900, 12)
        const slowCount = counts.get('slow') ?? 0
        const slow = slowCount / 900
        t.diagnostic(`${algorithm}: ${JSON.stringify(Object.fromEntries(counts))} (slow ${(slow * 100).toFixed(1)}%)`)
        // Relative results, not exact shares: the split depends on timing, the ordering must not.
        assert.ok(slow < 0.15, `slow share ${slow}`)
        for (const fast of ['fast-1', 'fast-2'])
          assert.ok((counts.get(fast) ?? 0) > 3 * slowCount, `${fast} got ${counts.get(fast)}, slow ${slowCount}`)
        assert.equal(
          [...counts.values()].reduce((a, c) => a + c, 0),
          900,
        )
      } finally {
        await lb.close()
      }
    })
  }

  it('round-robin, for contrast, gives the slow server its third', async () => {
    const lb = await startLb(pool('round-robin', backends))
    try {
      const counts = await drive(lb.url, 300, 12)
      assert.equal(counts.get('slow'), 100)
    } finally {
      await lb.close()
    }
  })
})

describe('hashing on a request field', () => {
  let backends: TestBackend[]
  before(async () => {
    backends = await Promise.all(['h1', 'h2', 'h3', 'h4'].map((n) => delayed(n, 0)))
  })
  after(async () => {
    for (const b of backends) await b.close()
  })

  const cases: {
    balance: ConfigInput['pools'][number]['balance']
    headers: (user: number) => Record<string, string>
  }[] = [
    { balance: { algorithm: 'ring-hash', hashOn: 'header:X-User' }, headers: (u) => ({ 'x-user': `user-${u}` }) },
    { balance: { algorithm: 'maglev', hashOn: 'cookie:sid' }, headers: (u) => ({ cookie: `theme=dark; sid=s${u}` }) },
  ]
  for (const { balance, headers } of cases) {
    const label = JSON.stringify(balance)
    it(`${label}: 30 users × 10 requests each stay on one server, and the users spread over all servers`, async () => {
      const lb = await startLb(pool(balance, backends))
      try {
        const serverOf = new Map<number, Set<string>>()
        const agent = new Agent({ connections: 4 })
        try {
          for (let round = 0; round < 10; round++)
            await Promise.all(
              Array.from({ length: 30 }, async (_, user) => {
                const res = await request(`${lb.url}/`, { dispatcher: agent, headers: headers(user) })
                const name = await res.body.text()
                if (!serverOf.has(user)) serverOf.set(user, new Set())
                serverOf.get(user)!.add(name)
              }),
            )
        } finally {
          await agent.close()
        }
        for (const [user, names] of serverOf) assert.equal(names.size, 1, `user ${user} saw ${[...names].join(', ')}`)
        const used = new Set([...serverOf.values()].flatMap((s) => [...s]))
        assert.equal(used.size, 4)
      } finally {
        await lb.close()
      }
    })
  }

  it('falls back to the client address when the field is missing (all requests from 127.0.0.1: one server)', async () => {
    const lb = await startLb(pool({ algorithm: 'ring-hash', hashOn: 'query:user' }, backends))
    try {
      const counts = await drive(lb.url, 40, 4)
      assert.equal(counts.size, 1)
    } finally {
      await lb.close()
    }
  })
})
