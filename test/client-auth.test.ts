/**
 * Mutual TLS from clients (`tls.clientAuth`), on both client-side engines: a client certificate
 * verified against the listener's CA is forwarded to the server in one header (hash and subject); a
 * client without one fails the handshake (`required`) or is served without the header (`optional`);
 * a client's own copy of the header never reaches the server.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { connect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))
const clientCert = readFileSync(fixture('cert2.pem'))
const clientKey = readFileSync(fixture('key2.pem'))
const expectedHash = new X509Certificate(clientCert).fingerprint256.replaceAll(':', '').toLowerCase()

/** The backend echoes the request headers it got as JSON. */
const echoHeaders = (req: { headers: Record<string, unknown> }, res: { end(s: string): void }) =>
  res.end(JSON.stringify(req.headers))

/** One request over a fresh TLS connection; `cert`: present the client certificate. */
function get(port: number, cert: boolean, extra = ''): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: readFileSync(fixture('cert.pem')),
        ...(cert ? { cert: clientCert, key: clientKey } : {}),
      },
      () => s.write(`GET / HTTP/1.1\r\nHost: localhost\r\n${extra}Connection: close\r\n\r\n`),
    )
    let out = ''
    s.on('data', (c: Buffer) => {
      out += c.toString()
    })
    s.once('end', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(out)?.[1] ?? 0)
      resolve({ status, body: out.slice(out.indexOf('\r\n\r\n') + 4) })
    })
    s.once('error', reject)
  })
}

for (const engine of ['native', 'node'] as const) {
  describe(`mutual TLS from clients (engine ${engine})`, () => {
    let backend: TestBackend
    const lbs: LoadBalancer[] = []
    const ports: Record<'required' | 'optional', number> = { required: 0, optional: 0 }

    before(async () => {
      backend = await startBackend('b', echoHeaders as never)
      for (const mode of ['required', 'optional'] as const) {
        const lb = createLoadBalancer({
          listeners: [
            {
              name: 'secure',
              listen: '127.0.0.1:0',
              protocol: 'https',
              engine,
              tls: {
                cert: fixture('cert.pem'),
                key: fixture('key.pem'),
                clientAuth: { ca: fixture('cert2.pem'), mode },
              },
              routes: [{ pool: 'p' }],
            },
          ],
          pools: [{ name: 'p', servers: [backend.url] }],
        })
        await lb.start()
        lbs.push(lb)
        ports[mode] = Object.values(lb.addresses())[0]!.port
      }
    })

    after(async () => {
      for (const lb of lbs) await lb.close({ gracePeriodMs: 100 })
      await backend.close()
    })

    it('forwards a verified client certificate as its hash and subject', async () => {
      const r = await get(ports.required, true)
      assert.equal(r.status, 200)
      const headers = JSON.parse(r.body) as Record<string, string>
      assert.equal(headers['x-client-cert'], `Hash=${expectedHash};Subject="CN=rotated.localhost"`)
    })

    it('fails the handshake of a client without a certificate when it is required', async () => {
      await assert.rejects(get(ports.required, false))
    })

    it('serves a client without a certificate when it is optional, without the header', async () => {
      const r = await get(ports.optional, false)
      assert.equal(r.status, 200)
      assert.equal((JSON.parse(r.body) as Record<string, string>)['x-client-cert'], undefined)
      const withCert = await get(ports.optional, true)
      assert.match((JSON.parse(withCert.body) as Record<string, string>)['x-client-cert'] ?? '', /^Hash=[0-9a-f]{64};/)
    })

    it("removes a client's own x-client-cert header", async () => {
      const spoofed = 'X-Client-Cert: Hash=00;Subject="CN=admin"\r\n'
      const anonymous = await get(ports.optional, false, spoofed)
      assert.equal((JSON.parse(anonymous.body) as Record<string, string>)['x-client-cert'], undefined)
      const verified = await get(ports.optional, true, spoofed)
      assert.equal(
        (JSON.parse(verified.body) as Record<string, string>)['x-client-cert'],
        `Hash=${expectedHash};Subject="CN=rotated.localhost"`,
      )
    })
  })
}
