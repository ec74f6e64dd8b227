/**
 * WebSocket (and any HTTP/1.1 Upgrade) through Switchyard, on both client-side engines: real `ws`
 * servers and clients on 127.0.0.1, raw sockets where the bytes matter. Balancing, subprotocols and
 * extensions, large messages, answers other than 101, the access log and metrics of a tunnel, idle and
 * drain closes with 1001 frames spread over the window, and a leak check over open/close cycles. The
 * slow suite runs the same at full size (test/slow/websocket.test.ts).
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import WebSocket from 'ws'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { deadPort } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'
import { closed, metric, open, openFds, type WsBackend, wsBackend } from './helpers/ws.js'

for (const engine of ['native', 'node'] as const) {
  describe(`WebSocket through Switchyard (engine ${engine})`, () => {
    let backends: WsBackend[]
    let lb: LoadBalancer
    let base: string
    let port: number
    const log = memoryLogger()

    before(async () => {
      backends = await Promise.all(['a', 'b', 'c'].map(wsBackend))
      lb = createLoadBalancer(
        {
          listeners: [
            {
              name: 'main',
              listen: '127.0.0.1:0',
              engine,
              routes: [{ pool: 'ws' }],
              requestId: { echo: true },
            },
          ],
          pools: [{ name: 'ws', balance: 'round-robin', servers: backends.map((b) => b.url) }],
        },
        { logger: log.logger },
      )
      await lb.start()
      port = Object.values(lb.addresses())[0]!.port
      base = `ws://127.0.0.1:${port}`
    })

    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await Promise.all(backends.map((b) => b.close()))
    })

    it('carries concurrent echo sessions, spread evenly over the servers', async () => {
      const n = engine === 'native' ? 200 : 100
      const sessions = await Promise.all(Array.from({ length: n }, () => open(`${base}/echo`)))
      const per = new Map<string, number>()
      for (const s of sessions) per.set(s.greeting, (per.get(s.greeting) ?? 0) + 1)
      assert.deepEqual(
        [...per.keys()].sort(),
        ['hello from a', 'hello from b', 'hello from c'],
        'every server got sessions',
      )
      for (const count of per.values()) assert.ok(Math.abs(count - n / 3) <= 2, `round-robin: ${[...per.values()]}`)
      assert.equal(await metric(lb, 'switchyard_tunnels_active', 'pool="ws"'), n)
      // Each session echoes its own message back, and only its own.
      const echoes = await Promise.all(
        sessions.map(async ({ ws }, i) => {
          ws.send(`message ${i}`)
          const [data] = (await once(ws, 'message')) as [Buffer]
          return data.toString()
        }),
      )
      for (const [i, e] of echoes.entries()) assert.equal(e, `message ${i}`)
      await Promise.all(
        sessions.map(({ ws }) => {
          const c = closed(ws)
          ws.close(1000)
          return c
        }),
      )
      await waitFor(
        async () => (await metric(lb, 'switchyard_tunnels_active', 'pool="ws"')) === 0,
        'every tunnel closed',
      )
    })

    it('carries a 10 MiB message each way, compressed by permessage-deflate, with the subprotocol chosen', async () => {
      const { ws } = await open(`${base}/big`, ['chat.v2', 'chat.v1'])
      assert.equal(ws.protocol, 'chat.v1')
      assert.match(ws.extensions, /permessage-deflate/)
      const big = Buffer.alloc(10 * 1024 * 1024)
      for (let i = 0; i < big.length; i += 4) big.writeUInt32LE((i * 2654435761) >>> 0, i)
      ws.send(big, { binary: true })
      const [echo] = (await once(ws, 'message')) as [Buffer]
      assert.equal(echo.length, big.length)
      assert.ok(echo.equals(big), 'the echo is the message, byte for byte')
      const c = closed(ws)
      ws.close(1000)
      assert.equal((await c).code, 1000)
    })

    it('passes the handshake headers through and answers with the server 101', async () => {
      const { ws } = await open(`${base}/headers?x=1`, ['chat.v1'])
      const req = backends.flatMap((b) => b.seen).find((r) => r.url === '/headers?x=1')
      assert.ok(req !== undefined)
      assert.equal(req.url, '/headers?x=1')
      assert.equal(req.headers.upgrade, 'websocket')
      assert.match(String(req.headers.connection), /upgrade/i)
      assert.ok(req.headers['sec-websocket-key'])
      assert.equal(req.headers['sec-websocket-protocol'], 'chat.v1')
      assert.match(String(req.headers['sec-websocket-extensions']), /permessage-deflate/)
      assert.ok(req.headers['x-forwarded-for'], 'forwarding headers added as for any request')
      ws.close()
      await closed(ws)
    })

    it('relays an answer other than 101 as a normal response, and closes', async () => {
      const ws = new WebSocket(`${base}/forbidden`)
      ws.on('error', () => {})
      const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage]
      assert.equal(res.statusCode, 403)
      let body = ''
      for await (const chunk of res) body += chunk
      assert.equal(body, 'no way')
      ws.terminate()
    })

    it('carries bytes sent right behind the handshake, both ways', async () => {
      // A raw client: the 101 and the server's greeting may come in one read; a frame sent in the same
      // write as the request head must reach the server.
      const s = connect({ host: '127.0.0.1', port })
      await once(s, 'connect')
      const key = Buffer.from('0123456789abcdef').toString('base64')
      const masked = (text: string) => {
        const payload = Buffer.from(text)
        const mask = Buffer.from([1, 2, 3, 4])
        const out = Buffer.alloc(6 + payload.length)
        out[0] = 0x81
        out[1] = 0x80 | payload.length
        mask.copy(out, 2)
        for (let i = 0; i < payload.length; i++) out[6 + i] = (payload[i] as number) ^ (mask[i % 4] as number)
        return out
      }
      const head = `GET /raw HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
      s.write(Buffer.concat([Buffer.from(head), masked('early')]))
      let got = Buffer.alloc(0)
      s.on('data', (c: Buffer) => {
        got = Buffer.concat([got, c])
      })
      // The greeting, then the echo of 'early' (unmasked text frames from the server).
      await waitFor(() => got.includes('early'), 'the echo of the early frame')
      const text = got.toString('latin1')
      assert.match(text, /^HTTP\/1\.1 101 /)
      assert.match(text, /\r\nupgrade: websocket\r\n/i)
      assert.match(text, /\r\nconnection: upgrade\r\n/i)
      assert.match(text, /\r\nx-request-id: /i)
      assert.doesNotMatch(text, /content-length|transfer-encoding|keep-alive/i)
      s.destroy()
    })

    it('answers 502 SWY_UPSTREAM_CONNECT when no server takes the handshake', async () => {
      const dead = await deadPort()
      const lb2 = createLoadBalancer({
        listeners: [{ name: 'l', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: [`http://127.0.0.1:${dead}`], retries: { attempts: 0 } }],
      })
      await lb2.start()
      try {
        const ws = new WebSocket(`ws://127.0.0.1:${Object.values(lb2.addresses())[0]!.port}/`)
        ws.on('error', () => {})
        const [, res] = (await once(ws, 'unexpected-response')) as [unknown, IncomingMessage]
        assert.equal(res.statusCode, 502)
        let body = ''
        for await (const chunk of res) body += chunk
        assert.match(body, /SWY_UPSTREAM_CONNECT/)
        ws.terminate()
      } finally {
        await lb2.close({ gracePeriodMs: 100 })
      }
    })

    it('logs one access line per tunnel when it closes, with its status, bytes and duration', async () => {
      const { ws } = await open(`${base}/logged`)
      // Random bytes: permessage-deflate cannot make them smaller.
      ws.send(randomBytes(2000))
      await once(ws, 'message')
      assert.equal(
        log.lines.filter((l) => l.type === 'access' && l.url === '/logged').length,
        0,
        'nothing is logged while the tunnel is open',
      )
      const c = closed(ws)
      ws.close(1000)
      await c
      await waitFor(() => log.lines.some((l) => l.type === 'access' && l.url === '/logged'), 'the access line')
      const line = log.lines.find((l) => l.type === 'access' && l.url === '/logged') as unknown as Record<
        string,
        number
      >
      assert.equal(line.status, 101)
      assert.ok(Number(line.bytesIn) > 2000, `bytesIn ${line.bytesIn}`)
      assert.ok(Number(line.bytesOut) > 2000, `bytesOut ${line.bytesOut}`)
      assert.ok(Number(line.durationMs) > 0)
      assert.ok((await metric(lb, 'switchyard_tunnel_bytes_total', 'pool="ws",direction="in"')) > 2000)
      assert.ok((await metric(lb, 'switchyard_tunnels_total', 'pool="ws"')) > 0)
    })

    it('brings file descriptors and server connections back to where they were after open/close cycles', async () => {
      const fdsBefore = openFds()
      const cycles = 200
      for (let i = 0; i < cycles; i += 20) {
        await Promise.all(
          Array.from({ length: 20 }, async (_, j) => {
            const kind = (i + j) % 4
            if (kind === 3) {
              // Reset mid-handshake: the request head, then a reset before any answer is read.
              const s = connect({ host: '127.0.0.1', port })
              await once(s, 'connect')
              s.write('GET /reset HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n')
              s.resetAndDestroy()
              await once(s, 'close')
              return
            }
            const { ws } = await open(`${base}/cycle`)
            const c = closed(ws)
            if (kind === 0) ws.close(1000)
            else if (kind === 1) ws.send('close-me')
            else ws.terminate()
            await c
          }),
        )
      }
      await waitFor(
        async () => (await metric(lb, 'switchyard_tunnels_active', 'pool="ws"')) === 0,
        'every tunnel closed',
      )
      await waitFor(() => backends.every((b) => b.wss.clients.size === 0), 'every server connection closed')
      const serverSockets = await Promise.all(
        backends.map((b) => new Promise<number>((r) => b.http.getConnections((_e, n) => r(n)))),
      )
      await waitFor(async () => {
        const counts = await Promise.all(
          backends.map((b) => new Promise<number>((r) => b.http.getConnections((_e, n) => r(n)))),
        )
        return counts.every((n) => n === 0)
      }, `server sockets closed (${serverSockets})`)
      await waitFor(() => openFds() <= fdsBefore, `file descriptors back to ${fdsBefore} (now ${openFds()})`)
    })
  })
}

describe('tunnel timeouts and drains', () => {
  it('closes an idle WebSocket with 1001 after timeouts.tunnelIdle', async () => {
    const backend = await wsBackend('idle')
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }], timeouts: { tunnelIdle: '300ms' } }],
      pools: [{ name: 'p', servers: [backend.url] }],
    })
    await lb.start()
    try {
      const { ws } = await open(`ws://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`)
      const { code } = await closed(ws)
      assert.equal(code, 1001)
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      await backend.close()
    }
  })

  it('closes tunnels on a drain with 1001 close frames, spread over the window, not at once', async () => {
    const backend = await wsBackend('drain')
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url] }],
      shutdown: { tunnelCloseWindow: '1500ms' },
    })
    await lb.start()
    const url = `ws://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`
    const n = 100
    const sessions = await Promise.all(Array.from({ length: n }, () => open(url)))
    const start = performance.now()
    const ends = Promise.all(
      sessions.map(async ({ ws }) => {
        const { code } = await closed(ws)
        return { code, atMs: performance.now() - start }
      }),
    )
    const closing = lb.close({ gracePeriodMs: 10_000 })
    const results = await ends
    await closing
    await backend.close()
    assert.ok(
      results.every((r) => r.code === 1001),
      `every client got 1001: ${[...new Set(results.map((r) => r.code))]}`,
    )
    const times = results.map((r) => r.atMs).sort((a, b) => a - b)
    const spreadMs = (times.at(-1) as number) - (times[0] as number)
    assert.ok(spreadMs >= 500, `closes spread over the window, not at once (spread ${spreadMs.toFixed(0)} ms)`)
    // Spread, not bunched at either end: the middle half of the closes spans a good part of it.
    const quartiles = (times[Math.floor(n * 0.75)] as number) - (times[Math.floor(n * 0.25)] as number)
    assert.ok(quartiles >= 250, `the middle half spans ${quartiles.toFixed(0)} ms`)
  })
})
