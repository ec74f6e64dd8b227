/**
 * WebSocket at full size (slow suite, on the default engine, which CI runs once per engine): 1,000 concurrent echo sessions over 3 servers; 10,000 open/close cycles on each engine, closed by the client,
 * by the server, or reset mid-handshake, must bring file descriptors, tunnels and server connections
 * back to where they were (node-http-proxy's chronic leak, #1510); a drain of 1,000 tunnels closes each
 * with 1001, spread over its window.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { defaultEngine } from '../../src/config/schema.js'
import { createLoadBalancer } from '../../src/index.js'
import { waitFor } from '../helpers/wait.js'
import { closed, metric, open, openFds, wsBackend } from '../helpers/ws.js'

/** Every session comes from one address, which must be able to hold more than half the pool. */
const ONE_CLIENT = { maxClientShare: 1 }

// One engine per run: the default, which `.ci/run` sets to each engine in turn (SWITCHYARD_ENGINE).
const engine = defaultEngine()
describe(`WebSocket leaks and drains (engine ${engine})`, () => {
  it('carries 1,000 concurrent echo sessions, balanced across 3 servers', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(wsBackend))
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }] }],
      pools: [
        { name: 'p', balance: 'least-connections', servers: backends.map((b) => b.url), connections: ONE_CLIENT },
      ],
    })
    await lb.start()
    const url = `ws://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    try {
      const n = 1000
      const sessions = await Promise.all(Array.from({ length: n }, () => open(url)))
      const per = new Map<string, number>()
      for (const s of sessions) per.set(s.greeting, (per.get(s.greeting) ?? 0) + 1)
      assert.equal(per.size, 3)
      // Open tunnels count as connections: least-connections keeps the three within a few of each other.
      for (const count of per.values()) assert.ok(Math.abs(count - n / 3) <= 20, `per server: ${[...per.values()]}`)
      const echoes = await Promise.all(
        sessions.map(async ({ ws }, i) => {
          ws.send(`m${i}`)
          const [data] = (await once(ws, 'message')) as [Buffer]
          return data.toString()
        }),
      )
      for (const [i, e] of echoes.entries()) assert.equal(e, `m${i}`)
      await Promise.all(
        sessions.map(({ ws }) => {
          const c = closed(ws)
          ws.close(1000)
          return c
        }),
      )
    } finally {
      await lb.close({ gracePeriodMs: 1000 })
      await Promise.all(backends.map((b) => b.close()))
    }
  })

  it('10,000 open/close cycles leave no descriptor, tunnel or server connection behind', async () => {
    const backends = await Promise.all(['a', 'b', 'c'].map(wsBackend))
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: backends.map((b) => b.url), connections: ONE_CLIENT }],
    })
    await lb.start()
    const port = Object.values(lb.addresses())[0]!.port
    const url = `ws://127.0.0.1:${port}/`
    try {
      const fdsBefore = openFds()
      const cycles = Number(process.env.WS_CYCLES ?? 10_000)
      const batch = 100
      for (let i = 0; i < cycles; i += batch) {
        await Promise.all(
          Array.from({ length: batch }, async (_, j) => {
            const kind = (i + j) % 5
            if (kind === 4) {
              const s = connect({ host: '127.0.0.1', port })
              await once(s, 'connect')
              s.write('GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
              s.resetAndDestroy()
              await once(s, 'close')
              return
            }
            const { ws } = await open(url)
            const c = closed(ws)
            if (kind === 0) ws.close(1000)
            else if (kind === 1) ws.send('close-me')
            else if (kind === 2) ws.terminate()
            // The server goes first, without a close frame.
            else ws.send('terminate-me')
            await c
          }),
        )
      }
      await waitFor(async () => (await metric(lb, 'switchyard_tunnels_active', 'pool="p"')) === 0, 'tunnels closed', {
        timeoutMs: 20_000,
      })
      await waitFor(() => backends.every((b) => b.wss.clients.size === 0), 'server WebSockets closed')
      await waitFor(async () => {
        const counts = await Promise.all(
          backends.map((b) => new Promise<number>((r) => b.http.getConnections((_e, n) => r(n)))),
        )
        return counts.every((n) => n === 0)
      }, 'server sockets closed')
      await waitFor(() => openFds() <= fdsBefore, `descriptors back to ${fdsBefore} (now ${openFds()})`, {
        timeoutMs: 20_000,
      })
      assert.ok((await metric(lb, 'switchyard_tunnels_total', 'pool="p"')) >= cycles * 0.7)
    } finally {
      await lb.close({ gracePeriodMs: 1000 })
      await Promise.all(backends.map((b) => b.close()))
    }
  })

  it('a drain closes 1,000 tunnels with 1001, spread over its window', async () => {
    const backend = await wsBackend('drain')
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url], connections: ONE_CLIENT }],
      shutdown: { tunnelCloseWindow: '4s' },
    })
    await lb.start()
    const url = `ws://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    const n = 1000
    const sessions = await Promise.all(Array.from({ length: n }, () => open(url)))
    const start = performance.now()
    const ends = Promise.all(
      sessions.map(async ({ ws }) => ({ ...(await closed(ws)), atMs: performance.now() - start })),
    )
    const closing = lb.close({ gracePeriodMs: 20_000 })
    const results = await ends
    await closing
    await backend.close()
    assert.ok(
      results.every((r) => r.code === 1001),
      `codes: ${[...new Set(results.map((r) => r.code))]}`,
    )
    const times = results.map((r) => r.atMs).sort((a, b) => a - b)
    // Uniform over 4 s: each second of the window closes about a quarter of them.
    const perSecond = [0, 1, 2, 3].map((s) => times.filter((t) => t >= s * 1000 && t < (s + 1) * 1000).length)
    for (const count of perSecond) assert.ok(count >= n * 0.1, `closes per second of the window: ${perSecond}`)
  })
})
