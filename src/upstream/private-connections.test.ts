import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import type { Socket } from 'node:net'
import { describe, it } from 'node:test'
import type { ServerConnections, UpstreamHandler, UpstreamTry } from '../l7/upstream.js'
import { PrivateConnections } from './private-connections.js'

/** Connection sets that record what they were opened with and what was done to them. */
function recorder() {
  const made: { prefix: string; calls: number; closed: boolean; destroyed: boolean }[] = []
  const open = (prefix: Buffer): ServerConnections => {
    const entry = { prefix: prefix.toString('latin1'), calls: 0, closed: false, destroyed: false }
    let ended: () => void = () => {}
    made.push(entry)
    return {
      call: () => {
        entry.calls++
        return { active: true, abort() {}, resume() {}, send() {} } satisfies UpstreamTry
      },
      // As with a long stream still open: a graceful close ends only once destroyed.
      close: () => {
        entry.closed = true
        return new Promise<void>((resolve) => {
          ended = resolve
        })
      },
      destroy: async () => {
        entry.destroyed = true
        ended()
      },
    }
  }
  return { made, open }
}

function fakeClient(port: number): Socket {
  const s = new EventEmitter() as unknown as Socket & { destroyed: boolean }
  Object.assign(s, {
    remoteAddress: '192.0.2.7',
    remotePort: port,
    localAddress: '10.0.0.1',
    localPort: 443,
    destroyed: false,
  })
  return s
}

const handler = {} as UpstreamHandler

describe('connections private to each client (sendProxyProtocol)', () => {
  it('gives each client connection its own, with its header, reused, and closed with it', () => {
    const { made, open } = recorder()
    const pc = new PrivateConnections('v1', open)
    const a = fakeClient(1111)
    const b = fakeClient(2222)
    pc.call(handler, a)
    pc.call(handler, a)
    pc.call(handler, b)
    pc.call(handler)
    assert.deepEqual(
      made.map((m) => [m.prefix, m.calls]),
      [
        ['PROXY TCP4 192.0.2.7 10.0.0.1 1111 443\r\n', 2],
        ['PROXY TCP4 192.0.2.7 10.0.0.1 2222 443\r\n', 1],
        ['PROXY UNKNOWN\r\n', 1],
      ],
    )
    assert.equal(pc.clients, 2)
    ;(a as unknown as EventEmitter).emit('close')
    assert.equal(pc.clients, 1)
    assert.equal(made[0]?.closed, true)
  })

  it('destroys, after a close, every connection set it closed, and opens none after', async () => {
    const { made, open } = recorder()
    const pc = new PrivateConnections('v2', open)
    const a = fakeClient(1)
    const gone = fakeClient(2)
    pc.call(handler, a)
    pc.call(handler, gone)
    ;(gone as unknown as EventEmitter).emit('close')
    const closing = pc.close()
    assert.ok(made.every((m) => m.closed))
    await pc.destroy()
    await closing
    assert.ok(
      made.every((m) => m.destroyed),
      'each one, the retired one included',
    )
    const count = made.length
    pc.call(handler, fakeClient(3))
    // Closing: the try goes to a local set that is closed already (it refuses it), not a new private one.
    assert.equal(made.length, count + 1)
    assert.equal(made.at(-1)?.closed, true)
  })
})
