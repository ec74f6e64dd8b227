/**
 * TLS passthrough by SNI on a `tcp` listener: two TLS servers with certificates made for this test,
 * each completing its own handshake with clients routed to it by the name they ask for; Switchyard
 * never decrypts. A name no route takes is closed; a catch-all takes the rest and plain TCP.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { type AddressInfo, createServer as createTcpServer, type Server, connect as tcpConnect } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { connect, createServer as createTlsServer, type Server as TlsServer } from 'node:tls'
import { createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { readClientHello, sniMatches } from '../src/l4/client-hello.js'
import { certDir } from './helpers/certs.js'

const { makeCert, remove } = certDir('passthrough')
const certs = { a: makeCert('a', ['a.test']), b: makeCert('b', ['b.test', '*.b.test']) }

/** A TLS server that answers every line with its name and what it read. */
async function tlsServer(
  name: string,
  pair: { cert: string; key: string },
): Promise<{ server: TlsServer; port: number }> {
  const server = createTlsServer({ cert: readFileSync(pair.cert), key: readFileSync(pair.key) }, (s) =>
    s.on('data', (d: Buffer) => s.write(`${name}:${d.toString()}`)),
  )
  server.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  return { server, port: (server.address() as AddressInfo).port }
}

/** A TLS client for `servername`, trusting only `caFile`: what the server answers to `ping`. */
function ask(port: number, servername: string, caFile: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, servername, ca: readFileSync(caFile) }, () => s.write('ping'))
    s.once('data', (d: Buffer) => {
      resolve(d.toString())
      s.end()
    })
    s.once('error', reject)
    s.once('close', () => reject(new Error('closed')))
  })
}

describe('TLS passthrough by SNI', () => {
  let a: { server: TlsServer; port: number }
  let b: { server: TlsServer; port: number }
  let plain: Server
  let plainPort: number
  let lb: LoadBalancer
  let port: number

  before(async () => {
    a = await tlsServer('a', certs.a)
    b = await tlsServer('b', certs.b)
    plain = createTcpServer((s) => s.on('data', (d: Buffer) => s.write(`plain:${d.toString()}`)))
    plain.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => plain.once('listening', () => resolve()))
    plainPort = (plain.address() as AddressInfo).port
    lb = createLoadBalancer({
      listeners: [
        {
          name: 'tls',
          listen: '127.0.0.1:0',
          protocol: 'tcp',
          routes: [
            { match: { sni: ['a.test'] }, pool: 'a' },
            { match: { sni: ['b.test', '*.b.test'] }, pool: 'b' },
          ],
        },
        {
          name: 'mixed',
          listen: '127.0.0.1:0',
          protocol: 'tcp',
          routes: [{ match: { sni: ['a.test'] }, pool: 'a' }, { pool: 'plain' }],
        },
      ],
      pools: [
        { name: 'a', servers: [`tcp://127.0.0.1:${a.port}`] },
        { name: 'b', servers: [`tcp://127.0.0.1:${b.port}`] },
        { name: 'plain', servers: [`tcp://127.0.0.1:${plainPort}`] },
      ],
    })
    await lb.start()
    port = lb.addresses().tls!.port
  })

  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    a.server.close()
    b.server.close()
    plain.close()
    remove()
  })

  it('routes each name to its server, which completes its own handshake', async () => {
    assert.equal(await ask(port, 'a.test', certs.a.cert), 'a:ping')
    assert.equal(await ask(port, 'b.test', certs.b.cert), 'b:ping')
    assert.equal(await ask(port, 'api.b.test', certs.b.cert), 'b:ping', 'a wildcard route')
  })

  it('closes a connection whose name no route takes, with nothing sent to a server', async () => {
    await assert.rejects(ask(port, 'c.test', certs.a.cert))
  })

  it('sends other names and plain TCP to a catch-all route', async () => {
    const mixed = lb.addresses().mixed!.port
    assert.equal(await ask(mixed, 'a.test', certs.a.cert), 'a:ping')
    const text = await new Promise<string>((resolve, reject) => {
      const s = tcpConnect({ host: '127.0.0.1', port: mixed }, () => s.write('hello'))
      s.once('data', (d: Buffer) => {
        resolve(d.toString())
        s.end()
      })
      s.once('error', reject)
    })
    assert.equal(text, 'plain:hello')
  })

  it('reads the server name of a real ClientHello, split anywhere', async () => {
    // Capture the ClientHello Node sends for a name, then feed it in pieces.
    const hello = await new Promise<Buffer>((resolve) => {
      const srv = createTcpServer((s) =>
        s.once('data', (d: Buffer) => {
          resolve(d)
          s.destroy()
          srv.close()
        }),
      )
      srv.listen(0, '127.0.0.1', () => {
        const c = connect({
          host: '127.0.0.1',
          port: (srv.address() as AddressInfo).port,
          servername: 'Mixed.Case.test',
          ALPNProtocols: ['h2', 'acme-tls/1'],
        })
        c.on('error', () => {})
      })
    })
    assert.deepEqual(readClientHello(hello), {
      kind: 'hello',
      serverName: 'mixed.case.test',
      alpn: ['h2', 'acme-tls/1'],
    })
    for (const cut of [0, 1, 4, 5, 20, hello.length - 1])
      assert.equal(readClientHello(hello.subarray(0, cut)).kind, 'incomplete', `cut at ${cut}`)
    assert.equal(readClientHello(Buffer.from('GET / HTTP/1.1\r\n')).kind, 'not-tls')
    assert.ok(sniMatches(['*.b.test'], 'x.b.test'))
    assert.ok(!sniMatches(['*.b.test'], 'x.y.b.test'))
    assert.ok(!sniMatches(['*.b.test'], 'b.test'))
  })

  it('refuses a catch-all route before others in the config', () => {
    const r = validateConfig({
      listeners: [
        {
          name: 't',
          listen: '127.0.0.1:0',
          protocol: 'tcp',
          routes: [{ pool: 'a' }, { match: { sni: ['x'] }, pool: 'a' }],
        },
      ],
      pools: [{ name: 'a', servers: ['tcp://127.0.0.1:1'] }],
    })
    assert.equal(r.ok, false)
    assert.match(JSON.stringify(r), /no route after the catch-all route 0/)
  })
})
