/**
 * Reloads under load, a soak: 20 reloads while clients send requests fail no request and leak neither
 * descriptors nor memory. (Moved out of test/availability.test.ts: it runs for about 10 s.)
 */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer } from '../../src/index.js'
import { waitFor } from '../helpers/wait.js'

function lbPort(lb: ReturnType<typeof createLoadBalancer>): number {
  return Object.values(lb.addresses())[0]!.port
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

function heapAfterGc(): number {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('reloads under load', () => {
  it('20 reloads in 10 s while clients send requests: none fails, no descriptor or memory growth', async (t) => {
    // Plain servers: the shared test backend keeps every request it saw, which would read as growth.
    const backends = await Promise.all(
      ['r1', 'r2', 'r3', 'r4'].map(async (name) => {
        const server = createServer((req, res) => {
          req.resume()
          setTimeout(() => res.end(name), 1)
        })
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
        const { port } = server.address() as AddressInfo
        return { name, url: `http://127.0.0.1:${port}`, server }
      }),
    )
    // Alternate between two configs: a server removed and added back, a weight and an algorithm changed,
    // a pool added and removed, a listener's routes changed. The listener's own config is the same in
    // both, so it is kept (with its port) across reloads.
    const config = (variant: number): ConfigInput => ({
      logging: { accessLog: false, level: 'warn' },
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: variant === 0 ? [{ pool: 'p' }] : [{ match: { path: '/other' }, pool: 'q' }, { pool: 'p' }],
        },
      ],
      pools: [
        {
          name: 'p',
          balance: variant === 0 ? 'round-robin' : 'least-request',
          servers: backends
            .slice(0, variant === 0 ? 4 : 3)
            .map((b, i) => ({ url: b.url, name: b.name, weight: variant === 1 && i === 0 ? 3 : 1 })),
          retries: { on: ['connect-failure', 'reset'] },
        },
        ...(variant === 1 ? [{ name: 'q', servers: [backends[3]!.url] }] : []),
      ],
    })
    const lb = createLoadBalancer(config(0))
    await lb.start()
    const url = `http://127.0.0.1:${lbPort(lb)}/`
    const agent = new Agent({ connections: 8 })
    let stop = false
    let sent = 0
    const failures: string[] = []
    const load = async () => {
      while (!stop && sent < 200_000) {
        sent++
        try {
          const res = await request(url, { dispatcher: agent })
          const body = await res.body.text()
          if (res.statusCode !== 200) failures.push(`${res.statusCode} ${body}`)
        } catch (err) {
          failures.push(String(err))
        }
      }
    }
    // Load for `ms`: the fixed times in this test are its scenario (so much traffic, a reload every
    // 500 ms), not waits for something to happen.
    const warmUp = async (ms: number) => {
      stop = false
      const workers = Array.from({ length: 8 }, load)
      await new Promise((r) => setTimeout(r, ms))
      stop = true
      await Promise.all(workers)
    }
    try {
      // Warm up (connections, JIT, both configs once), then measure at rest.
      await warmUp(300)
      await lb.reload(config(1))
      await warmUp(300)
      await lb.reload(config(0))
      await warmUp(300)
      // A settling time, not a wait for an event: the keep-alive sockets of the warm-up come and go, and
      // the descriptor count they leave is itself what is measured.
      await new Promise((r) => setTimeout(r, 200))
      const fdsBefore = openFds()
      const heapBefore = heapAfterGc()
      const sentBefore = sent

      stop = false
      const workers = Array.from({ length: 8 }, load)
      for (let i = 1; i <= 20; i++) {
        await new Promise((r) => setTimeout(r, 500))
        await lb.reload(config(i % 2))
      }
      stop = true
      await Promise.all(workers)
      // The last reload's retired pools close once their requests are done: wait (5 s at most) for the
      // descriptors to come back within the bound; the assertion below says by how much they missed.
      await waitFor(() => openFds() <= fdsBefore + 6, 'descriptors back to the start', { timeoutMs: 5000 }).catch(
        () => {},
      )
      const fdsAfter = openFds()
      const heapAfter = heapAfterGc()
      const requests = sent - sentBefore
      t.diagnostic(
        `${requests} requests during 20 reloads, ${failures.length} failed; ` +
          `descriptors ${fdsBefore} → ${fdsAfter}; heap after GC ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB`,
      )
      assert.deepEqual(failures.slice(0, 5), [])
      assert.ok(requests > 1000, `only ${requests} requests`)
      assert.equal(lb.status().generation, 23)
      // Every reload builds pools and may open connections; none may be left behind. A few descriptors
      // of slack: the client and backends are in this process too, and keep-alive sockets come and go.
      assert.ok(fdsAfter <= fdsBefore + 6, `descriptors grew from ${fdsBefore} to ${fdsAfter}`)
      assert.ok(heapAfter < heapBefore + 8e6, `heap grew from ${heapBefore} to ${heapAfter}`)
    } finally {
      stop = true
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      for (const b of backends) {
        b.server.closeAllConnections()
        b.server.close()
      }
    }
  })
})
