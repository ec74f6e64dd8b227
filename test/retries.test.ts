/**
 * Retries against real backends: a killed server costs no client request, statuses are retried only
 * for idempotent requests, and the retry budget caps how much a failing pool's load is multiplied.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer } from '../src/index.js'
import { deadPort, startBackend, type TestBackend } from './helpers/backends.js'

function lbUrl(lb: ReturnType<typeof createLoadBalancer>): string {
  return `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
}

async function upstreamTries(lb: ReturnType<typeof createLoadBalancer>): Promise<number> {
  const text = (await lb.metricsText()).body
  return [...text.matchAll(/^switchyard_upstream_requests_total\{[^}]*\} (\d+)/gm)].reduce(
    (a, m) => a + Number(m[1]),
    0,
  )
}

describe('retries', () => {
  it('kill 1 of 3 servers under 2,000 GETs at steady concurrency: no client request fails', async (t) => {
    const backends = await Promise.all(
      ['k1', 'k2', 'k3'].map((name) =>
        startBackend(name, (req, res, b) => {
          req.resume()
          setTimeout(() => res.end(b.name), 2)
        }),
      ),
    )
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: backends.map((b) => ({ url: b.url, name: b.name })),
          // One server of three fails at once: up to a third of the requests in flight need a retry.
          retries: { attempts: 2, on: ['connect-failure', 'reset'], budget: { percent: 50 } },
          healthCheck: { type: 'tcp', interval: '50ms', rise: 2, fall: 2 },
        },
      ],
    })
    await lb.start()
    const url = lbUrl(lb)
    const agent = new Agent({ connections: 16 })
    let sent = 0
    let failed = 0
    const statuses = new Map<number, number>()
    try {
      const worker = async () => {
        while (sent < 2000) {
          sent++
          if (sent === 500) await backends[1]!.close() // kill k2: refuses connections, resets open ones
          try {
            const res = await request(url, { dispatcher: agent })
            await res.body.text()
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
            if (res.statusCode !== 200) failed++
          } catch {
            failed++
          }
        }
      }
      await Promise.all(Array.from({ length: 16 }, worker))
      const m = (await lb.metricsText()).body
      t.diagnostic(
        `statuses ${JSON.stringify(Object.fromEntries(statuses))}; retried tries: ${(await upstreamTries(lb)) - 2000}`,
      )
      assert.equal(failed, 0)
      assert.match(m, /switchyard_server_up\{pool="p",server="k2"\} 0/)
    } finally {
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      for (const b of backends) await b.close().catch(() => {})
    }
  })

  it('retries a 503 for GET on another server, but relays it for POST', async () => {
    let unavailable = 0
    const sick = await startBackend('sick', (req, res) => {
      req.resume()
      unavailable++
      res.writeHead(503)
      res.end('sick')
    })
    const good = await startBackend('good')
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [
            { url: sick.url, name: 'sick' },
            { url: good.url, name: 'good' },
          ],
          retries: { on: ['connect-failure', '503'] },
        },
      ],
    })
    await lb.start()
    const url = lbUrl(lb)
    try {
      for (let i = 0; i < 10; i++) {
        const res = await request(url)
        assert.equal(res.statusCode, 200)
        assert.equal(await res.body.text(), 'good')
      }
      assert.equal(unavailable, 5, 'round-robin sent every other GET to the sick server first')
      const statuses: number[] = []
      for (let i = 0; i < 4; i++) {
        const res = await request(url, { method: 'POST', body: 'x' })
        await res.body.text()
        statuses.push(res.statusCode)
      }
      assert.deepEqual([...statuses].sort(), [200, 200, 503, 503])
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await sick.close()
      await good.close()
    }
  })

  it('caps amplification with the budget: all servers failing, tries stay within (1 + 20%) × requests', async (t) => {
    const ports = await Promise.all([deadPort(), deadPort(), deadPort()])
    const config: ConfigInput = {
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: ports.map((p) => `http://127.0.0.1:${p}`),
          retries: { attempts: 2, backoff: { base: '20ms', max: '20ms' }, budget: { percent: 20, minRetries: 0 } },
        },
      ],
    }
    const lb = createLoadBalancer(config)
    await lb.start()
    const url = lbUrl(lb)
    const agent = new Agent({ connections: 50 })
    try {
      let next = 0
      const worker = async () => {
        while (next < 500) {
          next++
          const res = await request(url, { dispatcher: agent })
          await res.body.text()
          assert.equal(res.statusCode, 502)
        }
      }
      await Promise.all(Array.from({ length: 50 }, worker))
      const tries = await upstreamTries(lb)
      t.diagnostic(`500 requests, ${tries} upstream tries (${((tries / 500 - 1) * 100).toFixed(1)}% retries)`)
      assert.ok(tries > 500, 'some requests were retried')
      assert.ok(tries <= 500 * 1.2, `${tries} tries`)
    } finally {
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('retries a body only when it was buffered: a POST to a server that resets', async () => {
    const resetting: TestBackend = await startBackend('reset', (req) => {
      req.on('data', () => req.socket.destroy())
    })
    const bodies: string[] = []
    const good = await startBackend('good', (req, res) => {
      let body = ''
      req.setEncoding('utf8')
      req.on('data', (c: string) => {
        body += c
      })
      req.on('end', () => {
        bodies.push(body)
        res.end('good')
      })
    })
    const config = (bufferBytes: number): ConfigInput => ({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [
            { url: resetting.url, name: 'reset' },
            { url: good.url, name: 'good' },
          ],
          retries: { on: ['connect-failure', 'reset'], retryNonIdempotent: true, bufferBytes },
        },
      ],
    })
    // Larger than bufferBytes: the body streamed to the resetting server, and cannot be sent again.
    const streaming = createLoadBalancer(config(4))
    await streaming.start()
    try {
      const res = await request(lbUrl(streaming), { method: 'POST', body: 'payload' })
      assert.equal(res.statusCode, 502)
      assert.match(await res.body.text(), /SWY_UPSTREAM_RESET/)
      assert.deepEqual(bodies, [])
    } finally {
      await streaming.close({ gracePeriodMs: 200 })
    }
    // Within bufferBytes (the default 64 KiB): read whole first, then sent again to the good server.
    const buffered = createLoadBalancer(config(65536))
    await buffered.start()
    try {
      const res = await request(lbUrl(buffered), { method: 'POST', body: 'payload' })
      assert.equal(res.statusCode, 200)
      assert.equal(await res.body.text(), 'good')
      assert.deepEqual(bodies, ['payload'])
    } finally {
      await buffered.close({ gracePeriodMs: 200 })
      await resetting.close()
      await good.close()
    }
  })

  it('gives each try perTryTimeout to answer, then retries idempotent requests elsewhere', async () => {
    const hanging = await startBackend('hang', (req) => req.resume())
    const good = await startBackend('good')
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          balance: 'round-robin',
          servers: [
            { url: hanging.url, name: 'hang' },
            { url: good.url, name: 'good' },
          ],
          retries: { on: ['connect-failure', 'timeout'], perTryTimeout: '150ms' },
          timeouts: { responseHeaders: '30s' },
        },
      ],
    })
    await lb.start()
    try {
      const results: string[] = []
      for (let i = 0; i < 4; i++) {
        const res = await request(lbUrl(lb))
        results.push(`${res.statusCode} ${await res.body.text()}`)
      }
      // Every GET ends at the good server, half of them after the hanging one timed out.
      assert.deepEqual(results, ['200 good', '200 good', '200 good', '200 good'])
      assert.equal(hanging.requests.length, 2)
      // A POST is not retried: the hanging server may be working on it. 504 after its one try.
      const statuses: number[] = []
      for (let i = 0; i < 2; i++) {
        const res = await request(lbUrl(lb), { method: 'POST', body: 'x' })
        const text = await res.body.text()
        statuses.push(res.statusCode)
        if (res.statusCode === 504) assert.match(text, /SWY_UPSTREAM_TIMEOUT/)
      }
      assert.deepEqual(statuses.sort(), [200, 504])
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await hanging.close()
      await good.close()
    }
  })
})
