/** TCP (layer 4) listeners: real TCP servers behind a real load balancer, real client sockets. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { deadPort } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

interface TcpBackend {
  readonly name: string
  readonly url: string
  readonly server: Server
  close(): Promise<void>
}

/** A TCP server on 127.0.0.1; `onConnection` gets each socket (allowHalfOpen). */
async function tcpBackend(name: string, onConnection: (s: Socket) => void): Promise<TcpBackend> {
  const sockets = new Set<Socket>()
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
    onConnection(s)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}

function tcpConfig(servers: string[], idle = '60s') {
  return {
    listeners: [
      { name: 'l4', listen: '127.0.0.1:0', protocol: 'tcp' as const, routes: [{ pool: 'p' }], timeouts: { idle } },
    ],
    pools: [{ name: 'p', servers }],
  }
}

async function startTcpLb(servers: string[], idle?: string): Promise<{ lb: LoadBalancer; port: number }> {
  const lb = createLoadBalancer(tcpConfig(servers, idle))
  await lb.start()
  return { lb, port: Object.values(lb.addresses())[0]!.port }
}

/** Connects, sends `data` (then FIN), and collects everything until the server's FIN. */
async function exchange(port: number, data: Buffer = Buffer.alloc(0)): Promise<{ body: Buffer; error?: string }> {
  const s = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
  const chunks: Buffer[] = []
  s.on('data', (c: Buffer) => chunks.push(c))
  await once(s, 'connect')
  s.end(data)
  const error = await new Promise<string | undefined>((resolve) => {
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code))
    s.once('end', () => resolve(undefined))
  })
  s.destroy()
  return { body: Buffer.concat(chunks), ...(error ? { error } : {}) }
}

describe('tcp listener', () => {
  let named: TcpBackend[]
  before(async () => {
    // Each answers its name and closes once the client has finished sending.
    named = await Promise.all(
      ['t1', 't2', 't3'].map((n) =>
        tcpBackend(n, (s) => {
          s.resume()
          s.on('end', () => s.end(n))
        }),
      ),
    )
  })
  after(async () => {
    await Promise.all(named.map((b) => b.close()))
  })

  it('spreads connections round-robin over the servers', async () => {
    const { lb, port } = await startTcpLb(named.map((b) => b.url))
    try {
      const seen: string[] = []
      for (let i = 0; i < 9; i++) seen.push((await exchange(port, Buffer.from('hi'))).body.toString())
      assert.deepEqual(
        ['t1', 't2', 't3'].map((n) => seen.filter((x) => x === n).length),
        [3, 3, 3],
      )
      const text = await lb.metrics.registry.metrics()
      assert.match(text, /switchyard_tcp_connections_total\{listener="l4",pool="p",outcome="ok"\} 9\n/)
      assert.match(text, /switchyard_tcp_bytes_total\{listener="l4",direction="in"\} 18\n/)
      assert.match(text, /switchyard_tcp_bytes_total\{listener="l4",direction="out"\} 18\n/)
      assert.match(text, /switchyard_tcp_connections_active\{listener="l4"\} 0\n/)
    } finally {
      await lb.close({ gracePeriodMs: 500 })
    }
  })

  it('pipes 32 MiB each way intact, with backpressure and half-close', async () => {
    // Echoes everything back, and ends its side after the client's FIN.
    const echo = await tcpBackend('echo', (s) => s.pipe(s))
    const { lb, port } = await startTcpLb([echo.url])
    try {
      const payload = randomBytes(32 * 1024 * 1024)
      const { body, error } = await exchange(port, payload)
      assert.equal(error, undefined)
      assert.equal(body.length, payload.length)
      assert.equal(createHash('sha256').update(body).digest('hex'), createHash('sha256').update(payload).digest('hex'))
    } finally {
      await lb.close({ gracePeriodMs: 500 })
      await echo.close()
    }
  })

  it('resets the client when the server refuses, and counts the failure', async () => {
    const { lb, port } = await startTcpLb([`http://127.0.0.1:${await deadPort()}`])
    try {
      const { body, error } = await exchange(port, Buffer.from('x'))
      assert.equal(body.length, 0)
      assert.equal(error, 'ECONNRESET')
      const text = await lb.metrics.registry.metrics()
      assert.match(text, /switchyard_tcp_connections_total\{listener="l4",pool="p",outcome="error"\} 1\n/)
    } finally {
      await lb.close({ gracePeriodMs: 500 })
    }
  })

  it('closes a connection idle for the idle timeout', async () => {
    const silent = await tcpBackend('silent', (s) => s.resume())
    const { lb, port } = await startTcpLb([silent.url], '300ms')
    try {
      const s = connect({ host: '127.0.0.1', port })
      const started = Date.now()
      await once(s, 'connect')
      await once(s, 'close')
      assert.ok(Date.now() - started >= 250, 'not before the idle timeout')
    } finally {
      await lb.close({ gracePeriodMs: 500 })
      await silent.close()
    }
  })

  it('drain lets an open connection finish, then closes what is left after the grace period', async () => {
    const { lb, port } = await startTcpLb(named.map((b) => b.url))
    const s = connect({ host: '127.0.0.1', port })
    await once(s, 'connect')
    await waitFor(() => lb.status().listeners[0]!.inFlight === 1, 'the connection at the load balancer')
    const started = Date.now()
    const closing = lb.close({ gracePeriodMs: 300 })
    // No new connections once draining.
    await waitFor(() => lb.addresses().l4 === undefined, 'the listener to stop accepting')
    const refused = await new Promise<string>((resolve) => {
      const c = connect({ host: '127.0.0.1', port })
      c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? ''))
      c.once('connect', () => resolve('connected'))
    })
    assert.equal(refused, 'ECONNREFUSED')
    await once(s, 'close')
    await closing
    assert.ok(Date.now() - started >= 250, 'the open connection had its grace period')
  })

  it('rejects HTTP-only settings on a tcp listener, https without certificates, and tcp:// servers behind HTTP', () => {
    const bad = validateConfig({
      listeners: [
        {
          name: 'a',
          listen: '127.0.0.1:0',
          protocol: 'tcp',
          routes: [{ match: { pathPrefix: '/x' }, pool: 'p' }, { pool: 'p' }],
        },
        { name: 'b', listen: '127.0.0.1:0', protocol: 'https', routes: [{ pool: 'p' }] },
        {
          name: 'c',
          listen: '127.0.0.1:0',
          protocol: 'https',
          tls: { cert: '/nonexistent.pem', key: '/nonexistent.key' },
          routes: [{ pool: 'p' }],
        },
      ],
      pools: [{ name: 'p', servers: ['tcp://127.0.0.1:1'] }],
    })
    assert.equal(bad.ok, false)
    const messages = bad.ok ? [] : bad.issues.map((i) => `${i.path}: ${i.message}`)
    // A tcp route matches on TLS server names (`sni`) only.
    assert.ok(
      messages.some((m) => m.startsWith('listeners[0].routes[0].match.pathPrefix: expected no')),
      messages.join('\n'),
    )
    assert.ok(
      messages.some((m) => m.startsWith('listeners[1]: expected a `tls` section')),
      messages.join('\n'),
    )
    assert.ok(
      messages.some((m) => m.startsWith('listeners[2].tls.cert: expected a readable PEM file')),
      messages.join('\n'),
    )
    assert.ok(
      messages.some((m) => m.startsWith('listeners[2].tls.key: expected a readable PEM file')),
      messages.join('\n'),
    )
  })
})

describe('tcp circuit breaking', () => {
  it('resets a connection that finds every server full (maxPerServer + maxPending)', async () => {
    const backend = await tcpBackend('full', (s) => {
      s.resume()
      s.on('end', () => s.end('full'))
    })
    const lb = createLoadBalancer({
      ...tcpConfig([backend.url]),
      pools: [
        { name: 'p', servers: [backend.url], connections: { maxPerServer: 1, maxPending: 0, maxClientShare: 1 } },
      ],
    })
    await lb.start()
    const port = Object.values(lb.addresses())[0]!.port
    try {
      // The first connection holds the server's one place until it ends.
      const held = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
      await once(held, 'connect')
      await waitFor(() => lb.status().listeners[0]!.inFlight === 1, 'the first connection at the load balancer')
      const refused = connect({ host: '127.0.0.1', port })
      const outcome = await new Promise<string>((resolve) => {
        refused.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
        refused.once('data', () => resolve('data'))
      })
      refused.destroy()
      assert.equal(outcome, 'ECONNRESET')
      const reply: Buffer[] = []
      held.on('data', (c: Buffer) => reply.push(c))
      held.end('y')
      await once(held, 'end')
      held.destroy()
      assert.equal(Buffer.concat(reply).toString(), 'full')
      // Its place is free again.
      await waitFor(() => lb.status().listeners[0]!.inFlight === 0, 'the first connection to end')
      assert.equal((await exchange(port, Buffer.from('z'))).body.toString(), 'full')
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      await backend.close()
    }
  })
})
