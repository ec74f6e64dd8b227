/**
 * The PROXY protocol in (`proxyProtocol: true`): v1 and v2 headers parsed; on `http` listeners (both
 * engines) and `tcp` listeners, the carried client address is the one ip-hash balances on and the
 * forwarding headers and access log name; a connection without a valid header is closed with nothing
 * sent to a server.
 */
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { readFileSync } from 'node:fs'
import { connect as h2connect } from 'node:http2'
import { type AddressInfo, connect, createServer, type Server } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { readProxyHeader } from '../src/listeners/proxy-protocol.js'
import { startBackends, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))

const V2_SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/** A v2 PROXY header for TCP over IPv4 (`family` 4) or IPv6 (6), or LOCAL. */
function v2(src: string, sport: number, family: 4 | 6 | 'local'): Buffer {
  if (family === 'local') return Buffer.concat([V2_SIG, Buffer.from([0x20, 0x00, 0x00, 0x00])])
  if (family === 4) {
    const block = Buffer.alloc(12)
    for (const [i, o] of src.split('.').entries()) block.writeUInt8(Number(o), i)
    block.writeUInt8(10, 4)
    block.writeUInt16BE(sport, 8)
    block.writeUInt16BE(80, 10)
    return Buffer.concat([V2_SIG, Buffer.from([0x21, 0x11, 0x00, 12]), block])
  }
  const block = Buffer.alloc(36)
  // src is written in full form, 8 groups.
  for (const [i, g] of src.split(':').entries()) block.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  block.writeUInt16BE(sport, 32)
  block.writeUInt16BE(80, 34)
  return Buffer.concat([V2_SIG, Buffer.from([0x21, 0x21, 0x00, 36]), block])
}

/** Sends `head` and a GET on one connection; the response text (empty when the connection closed first). */
function send(port: number, head: Buffer | string, path = '/'): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.write(head)
      s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`)
    })
    let out = ''
    s.on('data', (c: Buffer) => {
      out += c.toString()
    })
    s.once('close', () => resolve(out))
    s.on('error', () => {})
  })
}

describe('PROXY protocol headers', () => {
  it('parses v1 and v2, TCP over IPv4 and IPv6, and UNKNOWN and LOCAL', () => {
    assert.deepEqual(readProxyHeader(Buffer.from('PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\nGET')), {
      kind: 'header',
      length: 41,
      source: { address: '203.0.113.7', port: 5555 },
    })
    assert.deepEqual(readProxyHeader(Buffer.from('PROXY TCP6 2001:db8::1 ::1 1 2\r\n')), {
      kind: 'header',
      length: 32,
      source: { address: '2001:db8::1', port: 1 },
    })
    assert.deepEqual(readProxyHeader(Buffer.from('PROXY UNKNOWN\r\n')), {
      kind: 'header',
      length: 15,
      source: undefined,
    })
    assert.deepEqual(readProxyHeader(v2('198.51.100.9', 4444, 4)), {
      kind: 'header',
      length: 28,
      source: { address: '198.51.100.9', port: 4444 },
    })
    const six = readProxyHeader(v2('2001:db8:0:0:0:0:0:42', 7, 6))
    assert.deepEqual(six, { kind: 'header', length: 52, source: { address: '2001:db8::42', port: 7 } })
    assert.deepEqual(readProxyHeader(v2('', 0, 'local')), { kind: 'header', length: 16, source: undefined })
  })

  it('waits for a header cut short, and refuses malformed ones', () => {
    const full = v2('198.51.100.9', 4444, 4)
    for (const cut of [1, 11, 12, 15, 27]) assert.equal(readProxyHeader(full.subarray(0, cut)).kind, 'incomplete')
    assert.equal(readProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4')).kind, 'incomplete')
    for (const bad of [
      'GET / HTTP/1.1\r\n',
      'PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n',
      'PROXY TCP4 ::1 ::1 1 2\r\n',
      'PROXY TCP4 1.2.3.4\r\n',
      `PROXY TCP4 ${'1'.repeat(120)}`,
    ])
      assert.equal(readProxyHeader(Buffer.from(bad)).kind, 'invalid', bad)
  })
})

for (const engine of ['native', 'node'] as const) {
  describe(`PROXY protocol on an http listener (engine ${engine})`, () => {
    let backends: TestBackend[]
    let lb: LoadBalancer
    let port: number
    const log = memoryLogger()

    before(async () => {
      backends = await startBackends(3, (req, res, b) =>
        res.end(JSON.stringify({ server: b.name, xff: req.headers['x-forwarded-for'] ?? null })),
      )
      lb = createLoadBalancer(
        {
          listeners: [
            {
              name: 'l',
              listen: '127.0.0.1:0',
              engine,
              proxyProtocol: true,
              timeouts: { requestHeaders: '500ms' },
              routes: [{ pool: 'p' }],
            },
          ],
          pools: [{ name: 'p', balance: 'ip-hash', servers: backends.map((b) => b.url) }],
        },
        { logger: log.logger },
      )
      await lb.start()
      port = Object.values(lb.addresses())[0]!.port
    })

    after(async () => {
      await lb.close({ gracePeriodMs: 100 })
      await Promise.all(backends.map((b) => b.close()))
    })

    const body = (text: string) =>
      JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { server: string; xff: string }

    it('uses the carried client address for forwarding headers, the access log and ip-hash', async () => {
      const r1 = body(await send(port, 'PROXY TCP4 203.0.113.7 10.0.0.1 5555 80\r\n', '/v1'))
      assert.equal(r1.xff, '203.0.113.7')
      const r2 = body(await send(port, v2('198.51.100.9', 4444, 4), '/v2'))
      assert.equal(r2.xff, '198.51.100.9')
      const r3 = body(await send(port, v2('2001:db8:0:0:0:0:0:42', 7, 6), '/v2-6'))
      assert.equal(r3.xff, '2001:db8::42')
      await waitFor(() => log.lines.some((l) => l.url === '/v1'), 'the access line')
      assert.equal(log.lines.find((l) => l.url === '/v1')?.client, '203.0.113.7')
      // ip-hash: each carried address keeps its server over new connections; many addresses spread.
      const servers = new Map<string, Set<string>>()
      for (let i = 0; i < 30; i++) {
        const ip = `203.0.113.${i % 10}`
        const r = body(await send(port, `PROXY TCP4 ${ip} 10.0.0.1 ${1000 + i} 80\r\n`))
        servers.set(ip, (servers.get(ip) ?? new Set()).add(r.server))
      }
      for (const [ip, set] of servers) assert.equal(set.size, 1, `${ip} went to ${[...set]}`)
      assert.ok(new Set([...servers.values()].map((s) => [...s][0])).size > 1, 'addresses spread over servers')
    })

    it('keeps the real peer for UNKNOWN and LOCAL', async () => {
      assert.equal(body(await send(port, 'PROXY UNKNOWN\r\n')).xff, '127.0.0.1')
      assert.equal(body(await send(port, v2('', 0, 'local'))).xff, '127.0.0.1')
    })

    it('closes a connection without a valid header, and nothing reaches a server', async () => {
      const before = backends.reduce((n, b) => n + b.requests.length, 0)
      assert.equal(await send(port, ''), '')
      assert.equal(await send(port, 'PROXY TCP4 nonsense\r\n'), '')
      // A header that never comes: closed within timeouts.requestHeaders.
      const s = connect({ host: '127.0.0.1', port })
      await once(s, 'connect')
      s.write('PROXY TCP4 ')
      await once(s, 'close')
      assert.equal(
        backends.reduce((n, b) => n + b.requests.length, 0),
        before,
      )
    })
  })
}

for (const engine of ['native', 'node'] as const) {
  describe(`PROXY protocol on an https listener (engine ${engine})`, () => {
    it('reads the header before the TLS handshake, over HTTP/1.1 and HTTP/2, and refuses a connection without one', async () => {
      const [backend] = await startBackends(1, (req, res) =>
        res.end(JSON.stringify({ xff: req.headers['x-forwarded-for'] ?? null })),
      )
      const lb = createLoadBalancer({
        logging: { accessLog: false },
        listeners: [
          {
            name: 's',
            listen: '127.0.0.1:0',
            protocol: 'https',
            engine,
            http2: true,
            tls: { cert: fixture('cert.pem'), key: fixture('key.pem') },
            proxyProtocol: true,
            timeouts: { requestHeaders: '500ms' },
            routes: [{ pool: 'p' }],
          },
        ],
        pools: [{ name: 'p', servers: [(backend as TestBackend).url] }],
      })
      await lb.start()
      const port = Object.values(lb.addresses())[0]!.port
      try {
        // The header and the ClientHello leave together: written before the TCP connection is up.
        const viaTls = (header: Buffer | string, alpn: string) =>
          new Promise<{ alpn: string | false | null; text: string }>((resolve, reject) => {
            const raw = connect({ host: '127.0.0.1', port })
            raw.write(header)
            const t = tlsConnect({
              socket: raw,
              ca: readFileSync(fixture('cert.pem')),
              servername: 'localhost',
              ALPNProtocols: [alpn],
            })
            t.on('error', reject)
            t.once('secureConnect', () => {
              if (t.alpnProtocol === 'h2') {
                const session = h2connect('https://localhost', { createConnection: () => t })
                const stream = session.request({ ':path': '/h2' })
                let text = ''
                stream.on('data', (c: Buffer) => {
                  text += c.toString()
                })
                stream.on('end', () => {
                  session.close()
                  resolve({ alpn: 'h2', text })
                })
                stream.on('error', reject)
                return
              }
              t.write('GET /h1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
              let out = ''
              t.on('data', (c: Buffer) => {
                out += c.toString()
              })
              t.once('close', () => resolve({ alpn: t.alpnProtocol, text: out.slice(out.indexOf('\r\n\r\n') + 4) }))
            })
          })
        const h1 = await viaTls('PROXY TCP4 203.0.113.7 10.0.0.1 5555 443\r\n', 'http/1.1')
        assert.deepEqual(h1, { alpn: 'http/1.1', text: '{"xff":"203.0.113.7"}' })
        const h2 = await viaTls(v2('198.51.100.9', 4444, 4), 'h2')
        assert.deepEqual(h2, { alpn: 'h2', text: '{"xff":"198.51.100.9"}' })
        // No header: the ClientHello is refused as one, and the connection closed.
        await assert.rejects(viaTls(Buffer.alloc(0), 'http/1.1'))
        assert.equal((backend as TestBackend).requests.length, 2)
      } finally {
        await lb.close({ gracePeriodMs: 100 })
        await (backend as TestBackend).close()
      }
    })
  })
}

describe('PROXY protocol on a tcp listener', () => {
  let echo: Server
  let lb: LoadBalancer
  const log = memoryLogger()

  before(async () => {
    echo = createServer((s) => s.on('data', (d: Buffer) => s.write(d)))
    echo.listen(0, '127.0.0.1')
    await once(echo, 'listening')
    lb = createLoadBalancer(
      {
        listeners: [
          { name: 't', listen: '127.0.0.1:0', protocol: 'tcp', proxyProtocol: true, routes: [{ pool: 'p' }] },
        ],
        pools: [{ name: 'p', servers: [`tcp://127.0.0.1:${(echo.address() as AddressInfo).port}`] }],
      },
      { logger: log.logger },
    )
    await lb.start()
  })

  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    echo.close()
  })

  it('pipes what follows the header, and logs the carried client', async () => {
    const port = Object.values(lb.addresses())[0]!.port
    const got = await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () =>
        s.write(Buffer.concat([v2('192.0.2.44', 999, 4), Buffer.from('hi')])),
      )
      s.once('data', (d: Buffer) => {
        resolve(d.toString())
        s.end()
      })
    })
    assert.equal(got, 'hi', 'the header is not passed on')
    await waitFor(() => log.lines.some((l) => l.type === 'tcp'), 'the tcp line')
    assert.equal(log.lines.find((l) => l.type === 'tcp')?.client, '192.0.2.44')
  })
})
