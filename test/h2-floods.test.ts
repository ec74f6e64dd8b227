/**
 * HTTP/2 floods against an h2c listener (docs/security.md#http2-floods), each from its own address and
 * bounded (at most 100,000 frames, 5 s): the rapid-reset pattern of CVE-2023-44487 (HEADERS then
 * RST_STREAM, over and over), a PING flood and a SETTINGS flood. Each must end in a GOAWAY and a closed
 * session within the bound, reach the backend with no more than a handful of requests, and leave
 * another client's session working throughout. Node's own protections (nghttp2's flood detection,
 * `maxSessionRejectedStreams`) do the detecting; the listener's liveness PING ends a session that nghttp2
 * stopped reading after its GOAWAY (Node 20 leaves it open, with no event, after a rapid reset).
 */
import assert from 'node:assert/strict'
import { connect as h2Connect } from 'node:http2'
import { connect, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { ConfigInput } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import {
  END_HEADERS,
  END_STREAM,
  GOAWAY,
  HEADERS,
  h2Frame,
  literal,
  PING,
  PREFACE,
  RST_STREAM,
  SETTINGS,
} from './helpers/h2-frames.js'
import { type RunningLb, startLb } from './helpers/lb.js'
import { waitFor } from './helpers/wait.js'
import { metric } from './helpers/ws.js'

type Flood = 'rapid-reset' | 'ping' | 'settings'

const MAX_FRAMES = 100_000
/** The listener's liveness PING every 1 s, unanswered after 1 s: a session nghttp2 stopped reading is gone within 2 s of it. */
const BOUND_MS = 5000

/** HEADERS for `GET /` on `streamId`, ending the stream (a complete request). */
function getHeaders(streamId: number): Buffer {
  const block = Buffer.concat([Buffer.from([0x82, 0x84, 0x86]), literal(1, 'flood.test')]) // GET, /, http
  return h2Frame(HEADERS, END_HEADERS | END_STREAM, streamId, block)
}

/** The frames of one step of `flood`, the `n`th. */
function step(flood: Flood, n: number): Buffer {
  switch (flood) {
    case 'rapid-reset': {
      const id = 2 * n + 1
      return Buffer.concat([getHeaders(id), h2Frame(RST_STREAM, 0, id, Buffer.from([0, 0, 0, 8]))]) // CANCEL
    }
    case 'ping':
      return h2Frame(PING, 0, 0, Buffer.alloc(8, n & 0xff))
    case 'settings':
      return h2Frame(SETTINGS, 0, 0, Buffer.from([0, 3, 0, 0, 0, 100])) // MAX_CONCURRENT_STREAMS 100
    default: {
      const unknown: never = flood
      throw new Error(`unknown flood ${String(unknown)}`)
    }
  }
}

/** Floods from `localAddress` until the server's GOAWAY and close, `MAX_FRAMES`, or `BOUND_MS`. */
function runFlood(
  port: number,
  flood: Flood,
  localAddress: string,
): Promise<{ goawayMs: number; closedMs: number; sent: number }> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ port, host: '127.0.0.1', localAddress })
    const t0 = performance.now()
    let goawayMs = Number.NaN
    let sent = 0
    let buffer = Buffer.alloc(0)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk])
      while (buffer.length >= 9) {
        const length = buffer.readUIntBE(0, 3)
        if (buffer.length < 9 + length) break
        if (buffer[3] === GOAWAY && Number.isNaN(goawayMs)) goawayMs = performance.now() - t0
        buffer = buffer.subarray(9 + length)
      }
    })
    const stop = setTimeout(() => socket.destroy(), BOUND_MS)
    socket.once('close', () => {
      clearTimeout(stop)
      resolve({ goawayMs, closedMs: performance.now() - t0, sent })
    })
    socket.once('connect', () => {
      socket.write(Buffer.concat([PREFACE, h2Frame(SETTINGS, 0, 0)]))
      const pump = () => {
        const parts: Buffer[] = []
        for (let i = 0; i < 500 && sent < MAX_FRAMES; i++) parts.push(step(flood, sent++))
        if (parts.length === 0 || socket.destroyed) return
        if (socket.write(Buffer.concat(parts))) setImmediate(pump)
        else socket.once('drain', pump)
      }
      pump()
    })
  })
}

describe('HTTP/2 floods', () => {
  let backend: TestBackend
  let lb: RunningLb
  before(async () => {
    backend = await startBackend('b')
    lb = await startLb({
      listeners: [
        {
          name: 'h2',
          listen: '127.0.0.1:0',
          http2: { pingInterval: '1s', pingTimeout: '1s' },
          routes: [{ pool: 'p' }],
        },
      ],
      pools: [{ name: 'p', servers: [backend.url] }],
    } as ConfigInput)
  })
  after(async () => {
    await lb.close()
    await backend.close()
  })

  for (const [flood, from] of [
    ['rapid-reset', '127.0.0.2'],
    ['ping', '127.0.0.4'],
    ['settings', '127.0.0.5'],
  ] as const) {
    it(`${flood}: GOAWAY and a closed session within ${BOUND_MS / 1000} s, while another client's session keeps working`, async () => {
      const other = h2Connect(`http://127.0.0.1:${lb.port}`, { localAddress: '127.0.0.3' } as never)
      other.on('error', () => {})
      const get = () =>
        new Promise<number>((resolve, reject) => {
          const req = other.request({ ':path': '/' })
          req.on('response', (h) => resolve(Number(h[':status'])))
          req.on('error', reject)
          req.resume()
          req.end()
        })
      try {
        assert.equal(await get(), 200)
        const seen = backend.requests.length
        const attacked = runFlood(lb.port, flood, from)
        // The other session, during the flood.
        assert.equal(await get(), 200)
        const r = await attacked
        process.stdout.write(
          `# ${flood}: ${r.sent} frames sent, GOAWAY after ${r.goawayMs.toFixed(0)} ms, closed after ${r.closedMs.toFixed(0)} ms; ${backend.requests.length - seen - 1} attack requests reached the backend\n`,
        )
        assert.ok(!Number.isNaN(r.goawayMs), 'a GOAWAY')
        assert.ok(r.closedMs < BOUND_MS, `closed by the server after ${r.closedMs.toFixed(0)} ms`)
        assert.ok(r.goawayMs < BOUND_MS, `GOAWAY after ${r.goawayMs.toFixed(0)} ms`)
        assert.ok(backend.requests.length - seen - 1 <= 200, 'at most a handful of attack requests upstream')
        // Only the other client's session is left, and it still works.
        await waitFor(
          async () => (await metric(lb.lb, 'switchyard_http2_sessions_active', 'listener="h2"')) === 1,
          'the attack session gone',
        )
        assert.equal(await get(), 200)
      } finally {
        other.close()
      }
    })
  }
})
