/**
 * Automatic certificates against a real ACME server: Debian's pebble (with pebble-challtestsrv as its
 * DNS), which validates the http-01 challenge by connecting to Switchyard's own `http` listener. A
 * certificate is issued and served, kept in storage for the next start, and renewed when due; a CA that
 * cannot be reached is logged and tried again, while the listener runs. Also: certificate files that
 * change on disk are served without a restart, and a bad one leaves the running certificate in place.
 *
 * pebble is installed by .ci/run, which sets SWITCHYARD_REQUIRE_PEBBLE so that a missing pebble fails
 * there; elsewhere these tests are skipped when pebble is absent, with the reason.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { get as httpsGet } from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { ChallengeAnswers } from '../src/acme/index.js'
import { orderReason } from '../src/acme/manager.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { freePort, type Pebble, pebbleSkip, startPebble } from './helpers/acme.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { certDir } from './helpers/certs.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const skipAcme = await pebbleSkip()

/** The certificate a TLS handshake to `port` with SNI `name` gets, verified against `ca`; or the error. */
function handshake(port: number, name: string, ca: string | Buffer): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: name, ca }, () => {
      const raw = socket.getPeerX509Certificate()
      socket.end()
      if (raw === undefined) reject(new Error('no certificate'))
      else resolve(raw)
    })
    socket.on('error', reject)
  })
}

/** Waits until a handshake to `port` succeeds with a certificate that `accept` takes; gives it. */
async function served(
  port: number,
  name: string,
  ca: string | Buffer,
  accept: (c: X509Certificate) => boolean = () => true,
): Promise<X509Certificate> {
  let got: X509Certificate | undefined
  await waitFor(
    async () => {
      got = await handshake(port, name, ca).catch(() => undefined)
      return got !== undefined && accept(got)
    },
    `a certificate for ${name} on port ${port}`,
    { timeoutMs: 30_000, intervalMs: 50 },
  )
  return got as X509Certificate
}

describe('ACME (pebble)', { skip: skipAcme }, () => {
  let pebble: Pebble
  let root: string
  let httpPort: number
  let tlsPort: number
  let backend: TestBackend
  const storage = mkdtempSync(path.join(tmpdir(), 'switchyard-acme-'))

  const config = (renewBefore = '720h'): ConfigInput => ({
    logging: { accessLog: false },
    listeners: [
      // http-01 is validated here (pebble's httpPort): the answer comes before any route or rule.
      {
        name: 'plain',
        listen: `127.0.0.1:${httpPort}`,
        redirect: { scheme: 'https', status: 308 },
        routes: [{ pool: 'web' }],
      },
      {
        name: 'secure',
        listen: '127.0.0.1:0',
        protocol: 'https',
        tls: {
          acme: {
            domains: ['a.example.test', 'B.example.test'],
            email: 'ops@example.test',
            directory: pebble.directory,
            directoryCa: pebble.directoryCa,
            storage,
            renewBefore,
          },
        },
        routes: [{ pool: 'web' }],
      },
    ],
    pools: [{ name: 'web', servers: [backend.url] }],
  })

  before(async () => {
    httpPort = await freePort()
    tlsPort = await freePort()
    pebble = await startPebble({ httpPort, tlsPort })
    root = await pebble.root()
    backend = await startBackend('app')
  })

  after(async () => {
    await pebble?.stop()
    await backend?.close()
    rmSync(storage, { recursive: true, force: true })
  })

  it('obtains a certificate through the http-01 challenge on its own listener, serves it, keeps it, and renews it', async () => {
    const log = memoryLogger()
    const lb: LoadBalancer = createLoadBalancer(config(), { logger: log.logger })
    await lb.start()
    const port = lb.addresses().secure?.port as number
    let first: X509Certificate
    try {
      first = await served(port, 'a.example.test', root)
      assert.match(first.subject, /CN=a\.example\.test/)
      assert.match(String(first.subjectAltName), /DNS:b\.example\.test/)
      // Both names are served, verified against pebble's root.
      assert.equal((await handshake(port, 'b.example.test', root)).serialNumber, first.serialNumber)
      assert.ok(
        log.lines.some((l) => String(l.msg).startsWith('ACME: certificate for a.example.test, b.example.test issued')),
      )
      // Requests are served over it.
      assert.equal(await fetchText(port, 'a.example.test', root), 'app')
    } finally {
      await lb.close({ gracePeriodMs: 100 })
    }
    // Kept in storage: a new start serves the same certificate, with no new order.
    const again = createLoadBalancer(config(), { logger: memoryLogger().logger })
    await again.start()
    try {
      const port2 = again.addresses().secure?.port as number
      assert.equal((await served(port2, 'a.example.test', root)).serialNumber, first.serialNumber)
      // Due for renewal (pebble's certificates last 5 years): the stored one serves meanwhile, then the new one.
      await again.reload(config('50000h'))
      const renewed = await served(port2, 'a.example.test', root, (c) => c.serialNumber !== first.serialNumber)
      assert.match(renewed.subject, /CN=a\.example\.test/)
    } finally {
      await again.close({ gracePeriodMs: 100 })
    }
  })

  it('obtains a certificate through tls-alpn-01, answered in the handshake on the https listener itself', async () => {
    const store = mkdtempSync(path.join(tmpdir(), 'switchyard-acme-alpn-'))
    const log = memoryLogger()
    // No http listener: pebble validates by connecting to this one (its tlsPort) with ALPN acme-tls/1.
    const lb = createLoadBalancer(
      {
        logging: { accessLog: false },
        listeners: [
          {
            name: 'secure',
            listen: `127.0.0.1:${tlsPort}`,
            protocol: 'https',
            http2: true,
            tls: {
              acme: {
                domains: ['alpn.example.test'],
                directory: pebble.directory,
                directoryCa: pebble.directoryCa,
                storage: store,
                challenge: 'tls-alpn-01',
              },
            },
            routes: [{ pool: 'web' }],
          },
        ],
        pools: [{ name: 'web', servers: [backend.url] }],
      },
      { logger: log.logger },
    )
    await lb.start()
    try {
      const cert = await served(tlsPort, 'alpn.example.test', root)
      assert.match(cert.subject, /CN=alpn\.example\.test/)
      // Ordinary clients, HTTP/2 ones included, are served as before once it is issued.
      assert.equal(await fetchText(tlsPort, 'alpn.example.test', root), 'app')
      assert.ok(log.lines.some((l) => String(l.msg).startsWith('ACME: certificate for alpn.example.test issued')))
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      rmSync(store, { recursive: true, force: true })
    }
  })

  it('logs a CA it cannot reach and keeps trying, while the listener runs without a certificate', async () => {
    const log = memoryLogger()
    // A directory URL where no ACME server answers (404 for everything).
    const notAcme = createHttpServer((_req, res) => {
      res.statusCode = 404
      res.end('not here')
    })
    await new Promise<void>((resolve) => notAcme.listen(0, '127.0.0.1', resolve))
    const cfg = config()
    const secure = cfg.listeners[1] as { tls: { acme: Record<string, unknown> } }
    secure.tls.acme.directory = `http://127.0.0.1:${(notAcme.address() as { port: number }).port}/dir`
    secure.tls.acme.storage = mkdtempSync(path.join(tmpdir(), 'switchyard-acme-dead-'))
    const lb = createLoadBalancer(cfg, { logger: log.logger })
    await lb.start()
    try {
      await waitFor(
        () =>
          log.lines.some((l) =>
            /^ACME: ordering a certificate for .* failed .*trying again in \d+ s$/.test(String(l.msg)),
          ),
        'the failed order logged',
      )
      const port = lb.addresses().secure?.port as number
      await assert.rejects(handshake(port, 'a.example.test', root))
      // The plain listener still serves (here: its redirect rule).
      const res = await fetch(`http://127.0.0.1:${httpPort}/x`, { redirect: 'manual' })
      assert.equal(res.status, 308)
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      notAcme.close()
      rmSync(secure.tls.acme.storage as string, { recursive: true, force: true })
    }
  })
})

describe('ACME pieces', () => {
  it('answers only tokens being validated, from every storage directory', () => {
    const a = mkdtempSync(path.join(tmpdir(), 'switchyard-ch-'))
    const b = mkdtempSync(path.join(tmpdir(), 'switchyard-ch-'))
    try {
      writeFileSync(path.join(mkdirp(b, 'challenges'), 'tok_en-1'), 'tok_en-1.thumb')
      const answers = new ChallengeAnswers([a, b])
      assert.equal(answers.answer('/.well-known/acme-challenge/tok_en-1'), 'tok_en-1.thumb')
      assert.equal(answers.answer('/.well-known/acme-challenge/other'), undefined)
      assert.equal(answers.answer('/.well-known/acme-challenge/../../etc/passwd'), undefined)
      assert.equal(answers.answer('/.well-known/acme-challenge/'), undefined)
      assert.equal(answers.answer('/tok_en-1'), undefined)
    } finally {
      rmSync(a, { recursive: true, force: true })
      rmSync(b, { recursive: true, force: true })
    }
  })

  it('orders when there is no certificate, one that misses a name, or one due for renewal', () => {
    const settings = { domains: ['a.test', 'b.test'], renewBeforeMs: 30 * 86_400_000 }
    const now = Date.parse('2026-12-01T00:00:00Z')
    const later = (days: number) => now + days * 86_400_000
    assert.equal(orderReason(undefined, settings, now), 'no certificate yet')
    assert.equal(
      orderReason({ names: ['a.test'], notAfterMs: later(90) }, settings, now),
      'the certificate does not name b.test',
    )
    assert.match(String(orderReason({ names: ['a.test', 'b.test'], notAfterMs: later(29) }, settings, now)), /expires/)
    assert.equal(orderReason({ names: ['b.test', 'a.test'], notAfterMs: later(31) }, settings, now), undefined)
  })

  it('refuses acme beside certificate files, and a wildcard domain, naming the key', () => {
    const problems = (tls: unknown) => {
      const r = validateConfig({
        listeners: [{ name: 's', listen: '127.0.0.1:0', protocol: 'https', tls, routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: ['http://127.0.0.1:1'] }],
      })
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)
    }
    assert.deepEqual(problems({ acme: { domains: ['*.example.com'] } }), [
      'listeners[0].tls.acme.domains[0]: expected a domain name such as example.com (no wildcards: only dns-01 proves them, which is not offered), found "*.example.com"',
    ])
    const both = certDir('acme-both').makeCert('c', ['x.test'])
    assert.deepEqual(problems({ acme: { domains: ['x.test'] }, cert: both.cert, key: both.key }), [
      'listeners[0].tls.acme: expected either `acme` or certificate files (`cert`/`key`, `certificates`), found both',
    ])
    assert.deepEqual(problems({ acme: { domains: ['x.test'] } }), [])
  })
})

describe('certificate files changed on disk', () => {
  it('serves a replaced certificate without a restart, and keeps the running one when the new files are bad', async () => {
    const certs = certDir('watch')
    const one = certs.makeCert('one', ['site.test'])
    const two = certs.makeCert('two', ['site.test'])
    const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-watch-'))
    const cert = path.join(dir, 'cert.pem')
    const key = path.join(dir, 'key.pem')
    copyFileSync(one.cert, cert)
    copyFileSync(one.key, key)
    const backend = await startBackend('app')
    const log = memoryLogger()
    const lb = createLoadBalancer(
      {
        logging: { accessLog: false },
        listeners: [
          { name: 's', listen: '127.0.0.1:0', protocol: 'https', tls: { cert, key }, routes: [{ pool: 'p' }] },
        ],
        pools: [{ name: 'p', servers: [backend.url] }],
      },
      { logger: log.logger },
    )
    await lb.start()
    try {
      const port = lb.addresses().s?.port as number
      const serialOf = (file: string) => new X509Certificate(readFileSync(file)).serialNumber
      assert.equal((await handshake(port, 'site.test', readFileSync(one.cert))).serialNumber, serialOf(one.cert))
      // Replaced the way renewal tools do it: new files renamed over the old ones.
      copyFileSync(two.key, `${key}.new`)
      copyFileSync(two.cert, `${cert}.new`)
      renameSync(`${key}.new`, key)
      renameSync(`${cert}.new`, cert)
      await served(port, 'site.test', readFileSync(two.cert), (c) => c.serialNumber === serialOf(two.cert))
      // A bad file: refused, logged, and the certificate that serves stays.
      writeFileSync(cert, 'not a certificate')
      await waitFor(
        () => log.lines.some((l) => String(l.msg).startsWith('certificates not reloaded')),
        'the refused change logged',
      )
      assert.equal((await handshake(port, 'site.test', readFileSync(two.cert))).serialNumber, serialOf(two.cert))
    } finally {
      await lb.close({ gracePeriodMs: 100 })
      await backend.close()
      certs.remove()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

function mkdirp(base: string, sub: string): string {
  const dir = path.join(base, sub)
  mkdirSync(dir, { recursive: true })
  return dir
}

/** A GET over HTTPS to 127.0.0.1:`port` for `name`, verified against `ca`: the body. */
function fetchText(port: number, name: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    httpsGet({ host: '127.0.0.1', port, servername: name, ca, headers: { host: name }, path: '/' }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => {
        body += c
      })
      res.on('end', () => resolve(body))
    }).on('error', reject)
  })
}
