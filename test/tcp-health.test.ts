/**
 * Health checks apply to the pools of `tcp` listeners too (docs/tcp.md): a server that fails its
 * checks gets no new connections until it passes again.
 */
import assert from 'node:assert/strict'
import { connect, createServer, type Server } from 'node:net'
import { describe, it } from 'node:test'
import { createLoadBalancer } from '../src/index.js'

/** A TCP server that answers each connection with its name, then closes it. */
function named(name: string, port = 0): Promise<Server> {
  return new Promise((resolve) => {
    const s = createServer((sock) => {
      sock.on('error', () => {}) // health probes may reset
      sock.end(name)
    })
    s.listen(port, '127.0.0.1', () => resolve(s))
  })
}

const portOf = (s: Server) => (s.address() as { port: number }).port

/** What one connection through the listener reads before it closes ('' when it was reset). */
function readOne(port: number): Promise<string> {
  return new Promise((resolve) => {
    let got = ''
    const c = connect(port, '127.0.0.1')
    c.setEncoding('utf8')
    c.on('data', (d: string) => {
      got += d
    })
    c.on('error', () => {})
    c.on('close', () => resolve(got))
  })
}

async function until(condition: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('tcp listener with health checks', () => {
  it('sends no connection to a server that is down by its checks, and uses it again once up', async () => {
    const a = await named('a')
    let b = await named('b')
    const bPort = portOf(b)
    const lb = createLoadBalancer({
      listeners: [{ name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [
            { url: `tcp://127.0.0.1:${portOf(a)}`, name: 'a' },
            { url: `tcp://127.0.0.1:${bPort}`, name: 'b' },
          ],
          healthCheck: { type: 'tcp', interval: '30ms', timeout: '300ms', rise: 1, fall: 1 },
        },
      ],
    })
    await lb.start()
    const port = lb.addresses().db!.port
    const up = async (server: string) =>
      new RegExp(`switchyard_server_up\\{pool="p",server="${server}"\\} 1`).test((await lb.metricsText()).body)
    try {
      await until(async () => (await up('a')) && (await up('b')))
      await new Promise<void>((r) => b.close(() => r()))
      await until(async () => !(await up('b')))
      const down: string[] = []
      for (let i = 0; i < 6; i++) down.push(await readOne(port))
      assert.deepEqual(down, ['a', 'a', 'a', 'a', 'a', 'a'], 'no connection went to the down server')
      b = await named('b', bPort)
      await until(async () => up('b'))
      const back = new Set<string>()
      for (let i = 0; i < 6; i++) back.add(await readOne(port))
      assert.deepEqual([...back].sort(), ['a', 'b'])
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await Promise.all([a, b].map((s) => new Promise<void>((r) => s.close(() => r()))))
    }
  })
})
