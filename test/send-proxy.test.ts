/**
 * The PROXY protocol out (`sendProxyProtocol` on a pool): test servers that parse the header
 * themselves (with code of their own, not Switchyard's parser) and then serve HTTP, gRPC-free HTTP/2,
 * TLS or raw TCP behind it. Checked: the carried client address and port, v1 and v2, connections
 * private to each client connection on both HTTP/1.1 engines and over h2c, the header before the TLS
 * handshake, a PROXY header in passed on, and health checks sending LOCAL.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { createServer as createH2Server } from 'node:http2'
import { type AddressInfo, connect, createServer, type Server, type Socket } from 'node:net'
import { Duplex } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { proxyHeader } from '../src/upstream/send-proxy.js'
import { waitFor } from './helpers/wait.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))

interface Parsed {
  readonly version: 1 | 2
  /** `PROXY`/`TCP4`…, or `LOCAL`/`UNKNOWN`. */
  readonly command: string
  readonly source?: string | undefined
  readonly sourcePort?: number
  readonly destination?: string | undefined
  readonly destinationPort?: number
}

/** Reads one PROXY header off the front of `data` (written here from the spec); undefined until whole. */
function parseHeader(data: Buffer): { parsed: Parsed; length: number } | undefined {
  if (data.subarray(0, 6).toString('latin1') === 'PROXY ') {
    const end = data.indexOf('\r\n')
    if (end < 0) return undefined
    const [proto, src, dst, sport, dport] = data.subarray(6, end).toString('latin1').split(' ')
    if (proto === 'UNKNOWN') return { parsed: { version: 1, command: 'UNKNOWN' }, length: end + 2 }
    return {
      parsed: {
        version: 1,
        command: proto as string,
        source: src,
        destination: dst,
        sourcePort: Number(sport),
        destinationPort: Number(dport),
      },
      length: end + 2,
    }
  }
  if (data.length < 16) return undefined
  assert.equal(data.subarray(0, 12).toString('hex'), '0d0a0d0a000d0a515549540a', 'a v2 signature')
  const length = 16 + data.readUInt16BE(14)
  if (data.length < length) return undefined
  if ((data[12] as number) === 0x20) return { parsed: { version: 2, command: 'LOCAL' }, length }
  assert.equal(data[12], 0x21)
  const family = data[13]
  if (family === 0x11) {
    const ip = (at: number) => [...data.subarray(at, at + 4)].join('.')
    return {
      parsed: {
        version: 2,
        command: 'TCP4',
        source: ip(16),
        destination: ip(20),
        sourcePort: data.readUInt16BE(24),
        destinationPort: data.readUInt16BE(26),
      },
      length,
    }
  }
  assert.equal(family, 0x21)
  const ip6 = (at: number) => Array.from({ length: 8 }, (_, i) => data.readUInt16BE(at + 2 * i).toString(16)).join(':')
  return {
    parsed: {
      version: 2,
      command: 'TCP6',
      source: ip6(16),
      destination: ip6(32),
      sourcePort: data.readUInt16BE(48),
      destinationPort: data.readUInt16BE(50),
    },
    length,
  }
}

/**
 * `socket` as a JS stream, with `rest` read first: TLS and HTTP/2 servers read a net.Socket's handle
 * directly, past the bytes given back to its stream, which a JS stream keeps in front.
 */
function jsDuplex(socket: Socket, rest: Buffer): Duplex {
  const d = new Duplex({
    read() {
      socket.resume()
    },
    write(chunk, _encoding, cb) {
      socket.write(chunk, cb)
    },
    final(cb) {
      socket.end()
      cb()
    },
    destroy(err, cb) {
      socket.destroy(err ?? undefined)
      cb(err)
    },
  })
  if (rest.length > 0) d.push(rest)
  socket.on('data', (c: Buffer) => {
    if (!d.push(c)) socket.pause()
  })
  socket.on('end', () => d.push(null))
  socket.on('close', () => d.destroy())
  return d
}

interface ProxiedServer {
  readonly port: number
  /** The header of each connection, in order. */
  readonly headers: Parsed[]
  /** Connections open now. */
  open: number
  close(): Promise<void>
}

/**
 * A TCP server that takes a PROXY header off each connection, then hands the rest to `serve`
 * (an HTTP server's `connection` event, a TLS socket, ...). Connections without a header are reset.
 */
async function proxiedServer(serve: (socket: Socket, header: Parsed, rest: Buffer) => void): Promise<ProxiedServer> {
  const sockets = new Set<Socket>()
  const state = { port: 0, headers: [] as Parsed[], open: 0, close: async () => {} }
  const server: Server = createServer((socket) => {
    sockets.add(socket)
    state.open++
    socket.once('close', () => {
      sockets.delete(socket)
      state.open--
    })
    socket.on('error', () => {})
    let buffered = Buffer.alloc(0)
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      let found: ReturnType<typeof parseHeader>
      try {
        found = parseHeader(buffered)
      } catch {
        return socket.resetAndDestroy()
      }
      if (found === undefined) return
      socket.removeListener('data', onData)
      socket.pause()
      state.headers.push(found.parsed)
      serve(socket, found.parsed, buffered.subarray(found.length))
    }
    socket.on('data', onData)
  })
  server.listen(0, '127.0.0.1')
  await new Promise((r) => server.once('listening', r))
  state.port = (server.address() as AddressInfo).port
  state.close = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy()
      server.close(() => resolve())
    })
  return state
}

/** An HTTP server that answers with the PROXY header of the connection each request came on. */
function httpBehind(): { serve: (socket: Socket, header: Parsed, rest: Buffer) => void } {
  const byConnection = new WeakMap<Socket, Parsed>()
  const http = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify({ header: byConnection.get(req.socket), path: req.url }))
  })
  return {
    serve: (socket, header, rest) => {
      byConnection.set(socket, header)
      if (rest.length > 0) socket.unshift(rest)
      http.emit('connection', socket)
      socket.resume()
    },
  }
}

function config(url: string, pool: Partial<ConfigInput['pools'][number]> = {}, listener = {}): ConfigInput {
  return {
    logging: { accessLog: false },
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }], ...listener }],
    pools: [{ name: 'p', servers: [url], retries: { attempts: 0 }, ...pool }],
  }
}

async function withLb<T>(cfg: ConfigInput, fn: (port: number, lb: LoadBalancer) => Promise<T>): Promise<T> {
  const lb = createLoadBalancer(cfg)
  await lb.start()
  try {
    return await fn(Object.values(lb.addresses())[0]?.port as number, lb)
  } finally {
    await lb.close({ gracePeriodMs: 200 })
  }
}

/** A keep-alive client of its own (one connection), and its local port once it connected. */
function client(): { agent: Agent; port: () => number } {
  let local = 0
  const agent = new Agent({
    connections: 1,
    connect: (opts, cb) => {
      const socket = connect({ host: opts.hostname, port: Number(opts.port) }, () => {
        local = socket.localPort as number
        cb(null, socket)
      })
      socket.on('error', (err) => cb(err, null))
    },
  })
  return { agent, port: () => local }
}

async function getJson(port: number, path: string, agent: Agent): Promise<{ header: Parsed; path: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`, { dispatcher: agent })
  assert.equal(res.statusCode, 200)
  return (await res.body.json()) as { header: Parsed; path: string }
}

describe('PROXY protocol headers out', () => {
  it('writes v1 and v2 for IPv4 and IPv6, mapping a mixed pair to IPv6', () => {
    const v1 = proxyHeader('v1', { address: '203.0.113.7', port: 5555 }, { address: '10.0.0.1', port: 443 })
    assert.equal(v1.toString('latin1'), 'PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n')
    const v2 = proxyHeader('v2', { address: '::ffff:203.0.113.7', port: 5555 }, { address: '10.0.0.1', port: 443 })
    assert.deepEqual(parseHeader(v2)?.parsed, {
      version: 2,
      command: 'TCP4',
      source: '203.0.113.7',
      destination: '10.0.0.1',
      sourcePort: 5555,
      destinationPort: 443,
    })
    const six = proxyHeader('v2', { address: '2001:db8::7', port: 1 }, { address: '::1', port: 2 })
    assert.deepEqual(parseHeader(six)?.parsed, {
      version: 2,
      command: 'TCP6',
      source: '2001:db8:0:0:0:0:0:7',
      destination: '0:0:0:0:0:0:0:1',
      sourcePort: 1,
      destinationPort: 2,
    })
    const mixed = proxyHeader('v1', { address: '2001:db8::7', port: 1 }, { address: '10.0.0.1', port: 2 })
    assert.equal(mixed.toString('latin1'), 'PROXY TCP6 2001:db8::7 ::ffff:10.0.0.1 1 2\r\n')
    assert.equal(
      proxyHeader('v1', { address: 'nope', port: 1 }, { address: '::1', port: 2 }).toString(),
      'PROXY UNKNOWN\r\n',
    )
  })
})

for (const engine of ['native', 'node'] as const) {
  describe(`PROXY protocol to HTTP servers (engine ${engine})`, () => {
    let backend: ProxiedServer

    before(async () => {
      backend = await proxiedServer(httpBehind().serve)
    })

    after(() => backend.close())

    it('names each client in its own connections, reused by its later requests and closed with it', async () => {
      await withLb(config(`http://127.0.0.1:${backend.port}`, { engine, sendProxyProtocol: 'v1' }), async (port) => {
        const a = client()
        const b = client()
        const first = await getJson(port, '/a1', a.agent)
        assert.deepEqual(first.header, {
          version: 1,
          command: 'TCP4',
          source: '127.0.0.1',
          sourcePort: a.port(),
          destination: '127.0.0.1',
          destinationPort: port,
        })
        const headersBefore = backend.headers.length
        // The same client connection again: the same server connection, no new header.
        assert.equal((await getJson(port, '/a2', a.agent)).header.sourcePort, a.port())
        assert.equal(backend.headers.length, headersBefore)
        // Another client: a connection of its own, naming it.
        assert.equal((await getJson(port, '/b1', b.agent)).header.sourcePort, b.port())
        assert.equal(backend.headers.length, headersBefore + 1)
        assert.equal(backend.open, 2)
        await a.agent.close()
        await waitFor(() => backend.open === 1, "the first client's server connection to close with it")
        await b.agent.close()
        await waitFor(() => backend.open === 0, 'every server connection closed')
      })
    })

    it('connects with no connect timeout (timeouts.connect: 0)', async () => {
      await withLb(
        config(`http://127.0.0.1:${backend.port}`, { engine, sendProxyProtocol: 'v1', timeouts: { connect: 0 } }),
        async (port) => {
          const c = client()
          assert.equal((await getJson(port, '/no-timeout', c.agent)).header.sourcePort, c.port())
          await c.agent.close()
        },
      )
    })

    it('passes on the address a PROXY header in carried, in v2', async () => {
      await withLb(
        config(`http://127.0.0.1:${backend.port}`, { engine, sendProxyProtocol: 'v2' }, { proxyProtocol: true }),
        async (port) => {
          const answer = await new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port }, () => {
              s.write('PROXY TCP4 198.51.100.9 192.0.2.1 40000 80\r\n')
              s.write('GET /via HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
            })
            let out = ''
            s.on('data', (c: Buffer) => {
              out += c.toString()
            })
            s.once('close', () => resolve(out))
          })
          const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { header: Parsed }
          assert.equal(body.header.version, 2)
          assert.equal(body.header.source, '198.51.100.9')
          assert.equal(body.header.sourcePort, 40000)
        },
      )
    })
  })
}

describe('PROXY protocol to other servers', () => {
  it('sends the header before the TLS handshake to an https:// server', async () => {
    const http = createHttpServer((req, res) => res.end(`tls ${(req.socket as TLSSocket).encrypted === true}`))
    const backend = await proxiedServer((socket, _header, rest) => {
      const tls = new TLSSocket(jsDuplex(socket, rest) as Socket, {
        isServer: true,
        cert: readFileSync(fixture('cert.pem')),
        key: readFileSync(fixture('key.pem')),
      })
      tls.on('error', () => {})
      http.emit('connection', tls)
    })
    try {
      for (const engine of ['native', 'node'] as const)
        await withLb(
          config(`https://localhost:${backend.port}`, {
            engine,
            sendProxyProtocol: 'v2',
            tls: { ca: fixture('cert.pem') },
          }),
          async (port) => {
            const res = await request(`http://127.0.0.1:${port}/`)
            assert.equal(await res.body.text(), 'tls true', engine)
          },
        )
      assert.ok(backend.headers.length >= 2 && backend.headers.every((h) => h.command === 'TCP4'))
    } finally {
      await backend.close()
    }
  })

  it('opens h2c connections with the header, one per client connection', async () => {
    const h2 = createH2Server()
    h2.on('stream', (stream) => {
      stream.respond({ ':status': 200 })
      stream.end('h2')
    })
    const backend = await proxiedServer((socket, _header, rest) => h2.emit('connection', jsDuplex(socket, rest)))
    try {
      await withLb(
        config(`http://127.0.0.1:${backend.port}`, { protocol: 'h2c', sendProxyProtocol: 'v1' }),
        async (port) => {
          const a = client()
          assert.equal(await (await request(`http://127.0.0.1:${port}/`, { dispatcher: a.agent })).body.text(), 'h2')
          await (await request(`http://127.0.0.1:${port}/`, { dispatcher: a.agent })).body.text()
          const b = client()
          await (await request(`http://127.0.0.1:${port}/`, { dispatcher: b.agent })).body.text()
          assert.deepEqual(
            backend.headers.map((h) => h.sourcePort),
            [a.port(), b.port()],
          )
          await a.agent.close()
          await b.agent.close()
        },
      )
    } finally {
      await backend.close()
    }
  })

  it('sends the header on TCP pools', async () => {
    const backend = await proxiedServer((socket, header) => {
      socket.end(`hello ${header.source}:${header.sourcePort}`)
      socket.resume()
    })
    try {
      await withLb(
        {
          logging: { accessLog: false },
          listeners: [{ name: 't', listen: '127.0.0.1:0', protocol: 'tcp', routes: [{ pool: 'p' }] }],
          pools: [{ name: 'p', servers: [`tcp://127.0.0.1:${backend.port}`], sendProxyProtocol: 'v2' }],
        },
        async (port) => {
          let local = 0
          const answer = await new Promise<string>((resolve) => {
            const s = connect({ host: '127.0.0.1', port }, () => {
              local = s.localPort as number
            })
            let out = ''
            s.on('data', (c: Buffer) => {
              out += c.toString()
            })
            s.once('close', () => resolve(out))
          })
          assert.equal(answer, `hello 127.0.0.1:${local}`)
        },
      )
    } finally {
      await backend.close()
    }
  })

  it('health checks open with LOCAL (v2) and UNKNOWN (v1)', async () => {
    const backend = await proxiedServer(httpBehind().serve)
    try {
      for (const [version, command] of [
        ['v2', 'LOCAL'],
        ['v1', 'UNKNOWN'],
      ] as const) {
        const before = backend.headers.length
        await withLb(
          config(`http://127.0.0.1:${backend.port}`, {
            sendProxyProtocol: version,
            healthCheck: { type: 'http', interval: '20ms', rise: 1, fall: 1 },
          }),
          async () => {
            await waitFor(() => backend.headers.length > before, 'a health check')
          },
        )
        assert.equal(backend.headers[before]?.command, command)
      }
    } finally {
      await backend.close()
    }
  })
})
