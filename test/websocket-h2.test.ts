/**
 * WebSockets over HTTP/2 (RFC 8441 extended CONNECT): the listener announces
 * SETTINGS_ENABLE_CONNECT_PROTOCOL; a CONNECT with `:protocol: websocket` is routed like a GET, sent to
 * the server as an HTTP/1.1 upgrade (with the key HTTP/2 clients do not send), answered 200 once the
 * server switched, and its stream carries the WebSocket frames both ways. The client here is node:http2
 * with frames written by hand (RFC 6455 §5.2); the server is `ws`.
 */
import assert from 'node:assert/strict'
import { type ClientHttp2Session, type ClientHttp2Stream, connect as h2connect } from 'node:http2'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'
import { metric, type WsBackend, wsBackend } from './helpers/ws.js'

/** A client frame: FIN, the opcode, masked (RFC 6455 §5.3), payload under 126 bytes. */
function clientFrame(opcode: number, payload: Buffer): Buffer {
  const mask = Buffer.from([0x12, 0x34, 0x56, 0x78])
  const masked = Buffer.from(payload.map((b, i) => b ^ (mask[i % 4] as number)))
  return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | payload.length]), mask, masked])
}

/** Reads whole server frames (unmasked, payload under 126 bytes) off a stream. */
function frames(stream: ClientHttp2Stream): { next(): Promise<{ opcode: number; payload: Buffer }> } {
  let buffered = Buffer.alloc(0)
  const waiting: ((f: { opcode: number; payload: Buffer }) => void)[] = []
  const ready: { opcode: number; payload: Buffer }[] = []
  stream.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk])
    while (buffered.length >= 2) {
      const length = (buffered[1] as number) & 0x7f
      assert.ok(length < 126, 'short frames only in this test')
      if (buffered.length < 2 + length) break
      const frame = { opcode: (buffered[0] as number) & 0x0f, payload: buffered.subarray(2, 2 + length) }
      buffered = buffered.subarray(2 + length)
      const w = waiting.shift()
      if (w) w(frame)
      else ready.push(frame)
    }
  })
  return {
    next: () => {
      const f = ready.shift()
      return f ? Promise.resolve(f) : new Promise((resolve) => waiting.push(resolve))
    },
  }
}

describe('WebSocket over HTTP/2 (RFC 8441)', () => {
  let backend: WsBackend
  let lb: LoadBalancer
  let session: ClientHttp2Session
  let enabled: boolean | undefined
  const log = memoryLogger()

  before(async () => {
    backend = await wsBackend('a')
    lb = createLoadBalancer(
      {
        listeners: [{ name: 'l', listen: '127.0.0.1:0', http2: true, routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: [backend.url] }],
      },
      { logger: log.logger },
    )
    await lb.start()
    session = h2connect(`http://127.0.0.1:${lb.addresses().l?.port}`)
    await new Promise<void>((resolve) =>
      session.once('remoteSettings', (s) => {
        enabled = s.enableConnectProtocol
        resolve()
      }),
    )
  })

  after(async () => {
    session.close()
    await lb.close({ gracePeriodMs: 200 })
    await backend.close()
  })

  it('announces extended CONNECT, and tunnels a WebSocket to an HTTP/1.1 server', async () => {
    assert.equal(enabled, true)
    const stream = session.request(
      {
        ':method': 'CONNECT',
        ':protocol': 'websocket',
        ':scheme': 'http',
        ':path': '/room?x=1',
        ':authority': 'chat.test',
        'sec-websocket-version': '13',
        'sec-websocket-protocol': 'chat.v1',
      },
      { endStream: false },
    )
    const head = await new Promise<Record<string, unknown>>((resolve, reject) => {
      stream.once('response', resolve)
      stream.once('error', reject)
    })
    assert.equal(head[':status'], 200)
    assert.equal(head['sec-websocket-protocol'], 'chat.v1')
    assert.equal(head['sec-websocket-accept'], undefined)
    assert.equal(head.upgrade, undefined)
    // The server saw an HTTP/1.1 upgrade, with a key made for it.
    const seen = backend.seen.at(-1)
    assert.equal(seen?.method, 'GET')
    assert.equal(seen?.url, '/room?x=1')
    assert.equal(seen?.headers.upgrade, 'websocket')
    assert.match(String(seen?.headers['sec-websocket-key']), /^[A-Za-z0-9+/]{22}==$/)
    assert.equal(seen?.headers.host, 'chat.test')
    const read = frames(stream)
    assert.deepEqual(await read.next(), { opcode: 1, payload: Buffer.from('hello from a') })
    stream.write(clientFrame(1, Buffer.from('over h2')))
    assert.deepEqual(await read.next(), { opcode: 1, payload: Buffer.from('over h2') })
    assert.equal(await metric(lb, 'switchyard_tunnels_active', 'pool="p"'), 1)
    // A close handshake ends the stream.
    const code = Buffer.alloc(2)
    code.writeUInt16BE(1000)
    stream.write(clientFrame(8, code))
    const close = await read.next()
    assert.equal(close.opcode, 8)
    assert.equal(close.payload.readUInt16BE(0), 1000)
    // The server closed its connection: the stream is ended from Switchyard's side; the client ends its own.
    await new Promise((resolve) => stream.once('end', resolve))
    stream.end()
    await new Promise((resolve) => stream.once('close', resolve))
    await waitFor(async () => (await metric(lb, 'switchyard_tunnels_active', 'pool="p"')) === 0, 'the tunnel closed')
    // One access line for the tunnel, when it closed, as for an HTTP/1.1 WebSocket: 101, not a client abort.
    await waitFor(() => log.lines.some((l) => l.url === '/room?x=1'), 'the access line')
    const line = log.lines.find((l) => l.url === '/room?x=1')
    assert.equal(line?.status, 101)
    assert.equal(line?.code, undefined)
  })

  it('still answers a plain CONNECT 501', async () => {
    const stream = session.request({ ':method': 'CONNECT', ':authority': 'example.test:443' }, { endStream: false })
    const head = await new Promise<Record<string, unknown>>((resolve) => stream.once('response', resolve))
    assert.equal(head[':status'], 501)
    stream.close()
  })
})
