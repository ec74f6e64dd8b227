/**
 * Several certificates on one `https` listener, chosen by SNI: three names and a wildcard, each with a
 * certificate made for this test by openssl, on both client-side engines; the first one serves
 * unknown names and clients that send no SNI; a reload that adds a certificate applies to new
 * handshakes.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { certDir } from './helpers/certs.js'

/** The CN of the certificate a handshake gets with `servername` (none: no SNI). */
function servedName(port: number, servername?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(
      { host: '127.0.0.1', port, rejectUnauthorized: false, ...(servername === undefined ? {} : { servername }) },
      () => {
        const cn = s.getPeerCertificate().subject.CN
        s.end()
        resolve(Array.isArray(cn) ? cn.join(',') : String(cn))
      },
    )
    s.once('error', reject)
  })
}

const { makeCert, remove } = certDir('sni')
const certs = {
  a: makeCert('a', ['a.test']),
  b: makeCert('b', ['b.test', 'www.b.test']),
  c: makeCert('c', ['c.test']),
  wild: makeCert('wild', ['*.wild.test']),
  late: makeCert('late', ['late.test']),
}

after(remove)

for (const engine of ['native', 'node'] as const) {
  describe(`certificates by SNI (engine ${engine})`, () => {
    let backend: TestBackend
    let lb: LoadBalancer
    let port: number
    const config = (extra: { cert: string; key: string }[] = []) => ({
      listeners: [
        {
          name: 'secure',
          listen: '127.0.0.1:0',
          protocol: 'https' as const,
          engine,
          tls: { certificates: [certs.a, certs.b, certs.c, certs.wild, ...extra] },
          routes: [{ pool: 'p' }],
        },
      ],
      pools: [{ name: 'p', servers: [backend.url] }],
    })

    before(async () => {
      backend = await startBackend('b')
      lb = createLoadBalancer(config())
      await lb.start()
      port = Object.values(lb.addresses())[0]!.port
    })

    after(async () => {
      await lb.close({ gracePeriodMs: 100 })
      await backend.close()
    })

    it('serves each name its own certificate, and a wildcard one label deep', async () => {
      assert.equal(await servedName(port, 'a.test'), 'a.test')
      assert.equal(await servedName(port, 'b.test'), 'b.test')
      assert.equal(await servedName(port, 'www.b.test'), 'b.test', 'a second subjectAltName')
      assert.equal(await servedName(port, 'C.TEST'), 'c.test', 'names compare without case')
      assert.equal(await servedName(port, 'x.wild.test'), '*.wild.test')
      assert.equal(await servedName(port, 'deep.x.wild.test'), 'a.test', 'a wildcard covers one label only')
    })

    it('serves the first certificate to unknown names and to clients without SNI', async () => {
      assert.equal(await servedName(port, 'unknown.test'), 'a.test')
      assert.equal(await servedName(port), 'a.test')
    })

    it('proxies requests over each certificate', async () => {
      const text = await new Promise<string>((resolve, reject) => {
        const s = connect({ host: '127.0.0.1', port, servername: 'x.wild.test', rejectUnauthorized: false }, () =>
          s.write('GET / HTTP/1.1\r\nHost: x.wild.test\r\nConnection: close\r\n\r\n'),
        )
        let out = ''
        s.on('data', (c: Buffer) => {
          out += c.toString()
        })
        s.once('end', () => resolve(out))
        s.once('error', reject)
      })
      assert.match(text, /^HTTP\/1\.1 200 /)
    })

    it('applies a certificate added by a reload to new handshakes', async () => {
      assert.equal(await servedName(port, 'late.test'), 'a.test')
      await lb.reload(config([certs.late]))
      assert.equal(await servedName(port, 'late.test'), 'late.test')
      assert.equal(await servedName(port, 'b.test'), 'b.test')
    })
  })
}
