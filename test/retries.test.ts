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

  it('with the defaults alone, killing 1 of 3 servers under 2,000 GETs fails none of them', async (t) => {
    const backends = await Promise.all(
      ['d1', 'd2', 'd3'].map((name) =>
        startBackend(name, (req, res, b) => {
          req.resume()
          setTimeout(() => res.end(b.name), 2)
        }),
      ),
    )
    // No health check, no retry settings: what `--listen ... --to ... --to ... --to ...` gives.
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: backends.map((b) => ({ url: b.url, name: b.name })) }],
    })
    await lb.start()
    const url = lbUrl(lb)
    const agent = new Agent({ connections: 16 })
    let sent = 0
    const failures = new Map<string, number>()
    try {
      const worker = async () => {
        while (sent < 2000) {
          sent++
          if (sent === 500) await backends[1]!.close()
          try {
            const res = await request(url, { dispatcher: agent })
            const text = await res.body.text()
            if (res.statusCode !== 200) failures.set(text, (failures.get(text) ?? 0) + 1)
          } catch (err) {
            failures.set(String(err), (failures.get(String(err)) ?? 0) + 1)
          }
        }
      }
      await Promise.all(Array.from({ length: 16 }, worker))
      const m = (await lb.metricsText()).body
      const toDead = Number(/switchyard_upstream_requests_total\{pool="p",server="d2"\} (\d+)/.exec(m)?.[1] ?? -1)
      const retries = [...m.matchAll(/^switchyard_upstream_retries_total\{[^}]*\} (\d+)/gm)].reduce(
        (a, x) => a + Number(x[1]),
        0,
      )
      t.diagnostic(
        `failures ${JSON.stringify(Object.fromEntries(failures))}; tries to d2 ${toDead}; retries ${retries}`,
      )
      assert.deepEqual(Object.fromEntries(failures), {})
      // The refusing server left the rotation at once: it got about its third of the first 500 requests
      // and a handful of probes' worth after, not a third of the remaining 1,500.
      assert.ok(toDead < 500 / 3 + 100, `${toDead} tries to the dead server`)
      assert.ok(retries > 0, 'the requests that met the dead server were retried, and counted')
    } finally {
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      for (const b of backends) await b.close().catch(() => {})
    }
  })

  it('retries by default a GET whose fresh connection the server closes before answering', async (t) => {
    let n = 0
    const flaky = await startBackend('flaky', (req, res) => {
      req.resume()
      // One fresh connection in 5 is closed before a byte of the answer.
      if (n++ % 5 === 0) req.socket.destroy()
      else res.end('ok')
    })
    const other = await startBackend('other')
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [
            { url: flaky.url, name: 'flaky' },
            { url: other.url, name: 'other' },
          ],
          // A fresh connection for every request, so that no failure can pass for a keep-alive race.
          connections: { keepAlive: 0 },
        },
      ],
    })
    await lb.start()
    const agent = new Agent({ connections: 8 })
    let failed = 0
    try {
      let next = 0
      const worker = async () => {
        while (next < 600) {
          next++
          const res = await request(lbUrl(lb), { dispatcher: agent })
          await res.body.text()
          if (res.statusCode !== 200) failed++
        }
      }
      await Promise.all(Array.from({ length: 8 }, worker))
      const m = (await lb.metricsText()).body
      const resets = Number(
        /switchyard_upstream_retries_total\{pool="p",server="flaky",reason="reset"\} (\d+)/.exec(m)?.[1] ?? 0,
      )
      t.diagnostic(`failed ${failed} of 600; reset retries ${resets}`)
      assert.equal(failed, 0)
      assert.ok(resets > 0, 'resets were retried and counted by reason')
    } finally {
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      await flaky.close()
      await other.close()
    }
  })

  it('relays the last upstream 5xx when its retries give up, instead of answering 502', async () => {
    const calls: string[] = []
    const sick = await startBackend('sick', (req, res, b) => {
      req.resume()
      calls.push(b.name)
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '7' }).end(`busy ${b.name}`)
    })
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          // The second server refuses connections: the retry of the 503 fails to connect.
          servers: [
            { url: sick.url, name: 'sick' },
            { url: `http://127.0.0.1:${await deadPort()}`, name: 'dead' },
          ],
          balance: 'round-robin',
          retries: { on: ['connect-failure', '503'], backoff: { base: '1ms', max: '1ms' } },
        },
      ],
    })
    await lb.start()
    try {
      for (let i = 0; i < 4; i++) {
        const res = await request(lbUrl(lb))
        const text = await res.body.text()
        assert.equal(res.statusCode, 503, text)
        assert.equal(text, 'busy sick')
        assert.equal(res.headers['retry-after'], '7')
      }
      const m = (await lb.metricsText()).body
      assert.match(m, /switchyard_upstream_retries_total\{pool="p",server="sick",reason="status"\} [1-9]/)
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await sick.close()
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
          // The budget alone: with ejection (the default) refusing servers leave the rotation, and the
          // last one left gets no retry at all (see the next test).
          ejectOnConnectFailure: false,
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
