/** HTTPS termination: TLS clients in front, plain HTTP backends behind, certificates swapped on reload. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Agent, request } from 'undici'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))
const ca = [readFileSync(fixture('cert.pem')), readFileSync(fixture('cert2.pem'))]

function config(backend: string, cert = 'cert.pem', key = 'key.pem') {
  return {
    listeners: [
      {
        name: 'secure',
        listen: '127.0.0.1:0',
        protocol: 'https' as const,
        tls: { cert: fixture(cert), key: fixture(key) },
        routes: [{ pool: 'p' }],
      },
    ],
    pools: [{ name: 'p', servers: [backend] }],
  }
}

/** The common name of the certificate a fresh TLS handshake gets. */
async function servedCommonName(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      const cn = s.getPeerCertificate().subject.CN
      s.end()
      resolve(Array.isArray(cn) ? cn.join(',') : String(cn))
    })
    s.once('error', reject)
  })
}

describe('https listener', () => {
  let backend: TestBackend
  let lb: LoadBalancer
  let port: number
  const agent = new Agent({ connect: { ca, servername: 'localhost' } })

  before(async () => {
    backend = await startBackend('b1', (req, res) => {
      req.resume()
      res.end(JSON.stringify({ xfp: req.headers['x-forwarded-proto'], forwarded: req.headers.forwarded }))
    })
    lb = createLoadBalancer(config(backend.url))
    await lb.start()
    port = Object.values(lb.addresses())[0]!.port
  })
  after(async () => {
    await agent.close()
    await lb.close({ gracePeriodMs: 500 })
    await backend.close()
  })

  it('terminates TLS and tells the backend the client used https', async () => {
    const r = await request(`https://localhost:${port}/x`, { dispatcher: agent })
    assert.equal(r.statusCode, 200)
    const seen = (await r.body.json()) as { xfp: string; forwarded: string }
    assert.equal(seen.xfp, 'https')
    assert.match(seen.forwarded, /proto=https/)
  })

  it('refuses plain HTTP on the TLS port without crashing', async () => {
    const plain = await fetch(`http://127.0.0.1:${port}/`).then(
      (r) => `status ${r.status}`,
      (e: Error) => `error ${(e.cause as NodeJS.ErrnoException | undefined)?.code ?? e.message}`,
    )
    assert.match(plain, /^error /)
    const again = await request(`https://localhost:${port}/`, { dispatcher: agent })
    assert.equal(again.statusCode, 200)
    await again.body.text()
  })

  it('serves a renewed certificate to new handshakes after a reload, keeping the listener', async () => {
    assert.equal(await servedCommonName(port), 'localhost')
    await lb.reload(config(backend.url, 'cert2.pem', 'key2.pem'))
    assert.equal(Object.values(lb.addresses())[0]!.port, port)
    assert.equal(await servedCommonName(port), 'rotated.localhost')
    const r = await request(`https://localhost:${port}/`, {
      dispatcher: new Agent({ connect: { ca, servername: 'localhost' } }),
    })
    assert.equal(r.statusCode, 200)
    await r.body.text()
  })

  it('rejects a reload whose key does not exist and keeps serving the old certificate', async () => {
    await assert.rejects(
      lb.reload(config(backend.url, 'cert.pem', 'missing-key.pem')),
      /tls\.key: expected a readable PEM file/,
    )
    assert.equal(await servedCommonName(port), 'rotated.localhost')
  })
})
