/**
 * Keep-alive race immunity. A backend closes idle keep-alive connections after 1 s without saying so;
 * clients send sporadic bursts spaced around that timeout, through a link with 5 ms of latency each
 * way (see helpers/keepalive-race.ts). Requests written to a connection the backend is closing never
 * reach the application, and Switchyard sends them again, whatever their method. The same traffic
 * through the npm `http-proxy` is measured by `npm run bench:keepalive-race` (docs/availability.md).
 */
import assert from 'node:assert/strict'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createServer } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { describe, it } from 'node:test'
import { request } from 'undici'
import { createLoadBalancer } from '../../src/index.js'
import { sporadicTraffic, startIdleClosingBackend, startLatencyLink } from '../helpers/keepalive-race.js'

function lbUrl(lb: ReturnType<typeof createLoadBalancer>): string {
  return `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
}

async function raceRun(keepAliveRace: boolean) {
  const backend = await startIdleClosingBackend(1000)
  const link = await startLatencyLink(backend.port, 5)
  const lb = createLoadBalancer({
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers: [{ url: link.url }], retries: { keepAliveRace } }],
  })
  await lb.start()
  let resends = 0
  const count = () => {
    resends++
  }
  subscribe('switchyard:keepalive:race', count)
  try {
    const result = await sporadicTraffic(lbUrl(lb), { sequences: 50, perSequence: 10, gapMs: [990, 1010] })
    const metrics = (await lb.metricsText()).body
    const counted = Number(
      /switchyard_upstream_retries_total\{[^}]*reason="keepalive-race"\} (\d+)/.exec(metrics)?.[1] ?? 0,
    )
    return { result, resends, counted, seen: backend.seen, idleCloses: backend.idleCloses() }
  } finally {
    unsubscribe('switchyard:keepalive:race', count)
    await lb.close({ gracePeriodMs: 200 })
    await link.close()
    await backend.close()
  }
}

describe('keep-alive race', () => {
  it('500 sporadic GETs and POSTs around a 1 s idle close: none fails, none reaches the application twice', async (t) => {
    // Whether a race is hit depends on timing: a loaded machine can shift every burst off the backend's
    // idle close. So the traffic runs again (up to 3 times) until some request has lost a race; every
    // run must pass in full.
    let resent = 0
    for (let run = 1; run <= 3 && resent === 0; run++) {
      const { result, resends, counted, seen, idleCloses } = await raceRun(true)
      t.diagnostic(
        `run ${run}: ${result.ok}/${result.sent} ok, failures ${JSON.stringify(Object.fromEntries(result.failures))}, ` +
          `${resends} requests resent after a lost race, ${idleCloses} idle closes by the backend`,
      )
      assert.equal(result.sent, 500)
      assert.deepEqual(Object.fromEntries(result.failures), {})
      assert.equal(result.ok, 500)
      assert.equal(counted, resends, 'every resend is in /metrics, as reason keepalive-race')
      // Every request reached the application once.
      assert.equal(seen.size, 500)
      assert.deepEqual(
        [...seen].filter(([, n]) => n !== 1),
        [],
      )
      resent += resends
    }
    // Races happened: the test exercised the resend.
    assert.ok(resent > 0, 'no request lost a race in 3 runs: the traffic did not exercise the resend')
  })

  it('without the resend (keepAliveRace: false), the same traffic fails requests with 502', async (t) => {
    // As above, the traffic runs again (up to 3 times) until a race is hit.
    let failed = 0
    for (let run = 1; run <= 3 && failed === 0; run++) {
      const { result, seen } = await raceRun(false)
      t.diagnostic(
        `run ${run}: ${result.ok}/${result.sent} ok, failures ${JSON.stringify(Object.fromEntries(result.failures))}`,
      )
      // The failed requests never reached the application: the lost ones are missing, none is doubled.
      assert.equal(seen.size, result.ok)
      failed += result.failures.get('502') ?? 0
    }
    assert.ok(failed > 0, 'the race was not hit in 3 runs: the first test proves nothing')
  })

  it('does not resend what the application may have read: a fresh connection, or a response begun', async () => {
    let served = 0
    const backend = createServer({ keepAliveTimeout: 0 }, (req, res) => {
      served++
      req.resume()
      const socket = req.socket as Socket
      if (req.headers['x-crash'] === 'silent') socket.destroy()
      else if (req.headers['x-crash'] === 'partial') {
        socket.write('HTTP/1.1 200 OK\r\ncontent-le')
        setTimeout(() => socket.destroy(), 20)
      } else res.end('ok')
    })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    const port = (backend.address() as AddressInfo).port
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [{ url: `http://127.0.0.1:${port}` }], connections: { maxPerServer: 1 } }],
    })
    await lb.start()
    try {
      // First request on a fresh connection, closed without a byte: the application read it.
      let res = await request(lbUrl(lb), { method: 'POST', body: 'a', headers: { 'x-crash': 'silent' } })
      assert.equal(res.statusCode, 502)
      assert.match(await res.body.text(), /SWY_UPSTREAM_RESET/)
      assert.equal(served, 1)
      // A reused connection whose response had begun: the application answered, so it read it.
      res = await request(lbUrl(lb))
      assert.equal(await res.body.text(), 'ok')
      res = await request(lbUrl(lb), { method: 'POST', body: 'b', headers: { 'x-crash': 'partial' } })
      assert.equal(res.statusCode, 502)
      await res.body.text()
      assert.equal(served, 3)
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      backend.closeAllConnections()
      await new Promise((resolve) => backend.close(resolve))
    }
  })
})

describe('idle upstream connections are retired before the server closes them', () => {
  async function connectionsFor(keepAliveHeaderS: number, config: Record<string, unknown>, gapMs: number) {
    let opened = 0
    let closedByServer = 0
    const backend = createServer((req, res) => {
      req.resume()
      res.end('ok')
    })
    // Node announces `Keep-Alive: timeout=N` for its keepAliveTimeout; 0 turns both off.
    backend.keepAliveTimeout = keepAliveHeaderS * 1000
    backend.on('connection', (s: Socket) => {
      opened++
      // Ended by the client (Switchyard retired it) before it closed; otherwise the server closed it.
      s.on('close', () => {
        if (!s.readableEnded) closedByServer++
      })
    })
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    const port = (backend.address() as AddressInfo).port
    const lb = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [{ url: `http://127.0.0.1:${port}` }], ...config }],
    })
    await lb.start()
    try {
      for (let i = 0; i < 2; i++) {
        // The idle time between the two requests is the thing under test, not a wait.
        if (i > 0) await new Promise((r) => setTimeout(r, gapMs))
        const res = await request(lbUrl(lb))
        assert.equal(await res.body.text(), 'ok')
      }
      return { opened, closedByServer }
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      backend.closeAllConnections()
      await new Promise((resolve) => backend.close(resolve))
    }
  }

  it("learns the server's Keep-Alive: timeout= and retires the connection well before it", async () => {
    // timeout=3: undici keeps the connection 2 s less (1 s); after 1.5 s idle a new one is opened.
    const { opened, closedByServer } = await connectionsFor(3, {}, 1500)
    assert.equal(opened, 2)
    assert.equal(closedByServer, 0)
  })

  it('uses connections.keepAlive for a server that announces no timeout', async () => {
    const kept = await connectionsFor(0, { connections: { keepAlive: '2s' } }, 300)
    assert.equal(kept.opened, 1, 'reused within keepAlive')
    const retired = await connectionsFor(0, { connections: { keepAlive: '200ms' } }, 500)
    assert.equal(retired.opened, 2, 'retired after keepAlive')
  })
})
