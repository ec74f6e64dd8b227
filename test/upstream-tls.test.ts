/**
 * TLS to servers (`https://` server URLs and the pool `tls`), on both pool engines: real node:https
 * servers on 127.0.0.1 with the committed test certificates, verification on and off, a wrong CA, SNI,
 * a client certificate for mutual TLS, health checks over TLS, and a WebSocket over TLS.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import type { TLSSocket } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import WebSocket, { WebSocketServer } from 'ws'
import { type ConfigInput, createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))

interface TlsBackend {
  readonly port: number
  readonly server: Server
  /** SNI names the server was sent, one per handshake. */
  readonly snis: (string | false)[]
  close(): Promise<void>
}

/**
 * An HTTPS server with cert.pem (CN localhost; SAN localhost and 127.0.0.1). It answers with JSON: the
 * SNI it got and the client certificate's CN, if any. With `clientCa`, it requires a client
 * certificate signed by it. It also echoes WebSocket messages.
 */
async function tlsBackend(clientCa?: string): Promise<TlsBackend> {
  const snis: (string | false)[] = []
  const server = createServer(
    {
      cert: readFileSync(fixture('cert.pem')),
      key: readFileSync(fixture('key.pem')),
      ...(clientCa === undefined ? {} : { ca: readFileSync(fixture(clientCa)), requestCert: true }),
    },
    (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket as TLSSocket
      const peer = socket.getPeerCertificate()
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ sni: socket.servername, client: peer?.subject?.CN ?? null, path: req.url }))
    },
  )
  server.on('secureConnection', (s: TLSSocket) => snis.push(s.servername ?? false))
  const wss = new WebSocketServer({ server })
  wss.on('connection', (ws) => ws.on('message', (data, binary) => ws.send(data, { binary })))
  server.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  return {
    port: (server.address() as AddressInfo).port,
    server,
    snis,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      server.closeAllConnections()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

function poolConfig(
  url: string,
  engine: 'native' | 'node',
  tls: NonNullable<ConfigInput['pools'][number]['tls']> | undefined,
  extra: Partial<ConfigInput['pools'][number]> = {},
): ConfigInput {
  return {
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [
      {
        name: 'p',
        engine,
        servers: [url],
        retries: { attempts: 0 },
        ...(tls === undefined ? {} : { tls }),
        ...extra,
      },
    ],
  }
}

async function withLb<T>(config: ConfigInput, fn: (base: string, lb: LoadBalancer) => Promise<T>, logger?: unknown) {
  const lb = createLoadBalancer(config, logger === undefined ? {} : { logger: logger as never })
  await lb.start()
  try {
    return await fn(`http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`, lb)
  } finally {
    await lb.close({ gracePeriodMs: 200 })
  }
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await request(url)
  return { status: res.statusCode, body: await res.body.text() }
}

for (const engine of ['native', 'node'] as const) {
  describe(`TLS to servers (pool engine ${engine})`, () => {
    let plain: TlsBackend
    let mutual: TlsBackend

    before(async () => {
      plain = await tlsBackend()
      mutual = await tlsBackend('cert2.pem')
    })

    after(async () => {
      await plain.close()
      await mutual.close()
    })

    it('verifies the server against the given CA, and sends the URL host as SNI', async () => {
      await withLb(poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert.pem') }), async (base) => {
        const before = plain.snis.length
        const r = await get(`${base}/hello`)
        assert.equal(r.status, 200)
        assert.deepEqual(JSON.parse(r.body), { sni: 'localhost', client: null, path: '/hello' })
        assert.ok(plain.snis.slice(before).includes('localhost'))
      })
    })

    it('sends `servername` as SNI, and checks the certificate against it, for an IP address URL', async () => {
      await withLb(
        poolConfig(`https://127.0.0.1:${plain.port}`, engine, { ca: fixture('cert.pem'), servername: 'localhost' }),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 200)
          assert.equal(JSON.parse(r.body).sni, 'localhost')
        },
      )
    })

    it('refuses a server the system CAs do not trust: 502 SWY_UPSTREAM_TLS, with the reason logged', async () => {
      const log = memoryLogger()
      await withLb(
        poolConfig(`https://localhost:${plain.port}`, engine, undefined),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 502)
          assert.match(r.body, /SWY_UPSTREAM_TLS/)
          await waitFor(() => log.lines.some((l) => l.code === 'SWY_UPSTREAM_TLS'), 'the access line')
          const line = log.lines.find((l) => l.code === 'SWY_UPSTREAM_TLS') as { error: string }
          assert.match(line.error, /SELF_SIGNED|self.signed|certificate/i)
        },
        log.logger,
      )
    })

    it('refuses a server whose certificate another CA signed: 502 SWY_UPSTREAM_TLS', async () => {
      await withLb(
        poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert2.pem') }),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 502)
          assert.match(r.body, /SWY_UPSTREAM_TLS/)
        },
      )
    })

    it('refuses a certificate for another name: 502 SWY_UPSTREAM_TLS', async () => {
      await withLb(
        poolConfig(`https://127.0.0.1:${plain.port}`, engine, { ca: fixture('cert.pem'), servername: 'other.test' }),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 502)
          assert.match(r.body, /SWY_UPSTREAM_TLS/)
        },
      )
    })

    it('accepts any certificate with insecureSkipVerify, and warns at start', async () => {
      const log = memoryLogger()
      await withLb(
        poolConfig(`https://localhost:${plain.port}`, engine, { insecureSkipVerify: true }),
        async (base) => {
          assert.equal((await get(`${base}/`)).status, 200)
          assert.ok(log.lines.some((l) => l.level === 40 && /insecureSkipVerify/.test(String(l.msg))))
        },
        log.logger,
      )
    })

    it('presents a client certificate to a server that requires one (mutual TLS)', async () => {
      await withLb(
        poolConfig(`https://localhost:${mutual.port}`, engine, {
          ca: fixture('cert.pem'),
          cert: fixture('cert2.pem'),
          key: fixture('key2.pem'),
        }),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 200)
          assert.equal(JSON.parse(r.body).client, 'rotated.localhost')
        },
      )
      // Without one, the server ends the handshake.
      await withLb(
        poolConfig(`https://localhost:${mutual.port}`, engine, { ca: fixture('cert.pem') }),
        async (base) => {
          const r = await get(`${base}/`)
          assert.equal(r.status, 502)
          assert.match(r.body, /SWY_UPSTREAM_(TLS|RESET)/)
        },
      )
    })

    it('reuses connections over TLS: many requests, few handshakes', async () => {
      await withLb(poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert.pem') }), async (base) => {
        const before = plain.snis.length
        for (let i = 0; i < 20; i++) assert.equal((await get(`${base}/${i}`)).status, 200)
        assert.ok(plain.snis.length - before <= 2, `${plain.snis.length - before} handshakes for 20 requests`)
      })
    })

    it('checks health over TLS with the same settings', async () => {
      const check = { type: 'http' as const, interval: '100ms', timeout: '1s', rise: 1, fall: 1 }
      const up = (lb: LoadBalancer) => async () =>
        /switchyard_server_up\{pool="p",server="[^"]+"\} 1/.test((await lb.metricsText()).body)
      await withLb(
        poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert.pem') }, { healthCheck: check }),
        async (_base, lb) => waitFor(up(lb), 'the server up by a TLS check'),
      )
      await withLb(
        poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert2.pem') }, { healthCheck: check }),
        async (_base, lb) =>
          waitFor(
            async () => /switchyard_server_up\{pool="p",server="[^"]+"\} 0/.test((await lb.metricsText()).body),
            'the server down: its certificate fails verification',
          ),
      )
    })

    it('carries a WebSocket to a TLS server', async () => {
      await withLb(poolConfig(`https://localhost:${plain.port}`, engine, { ca: fixture('cert.pem') }), async (base) => {
        const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`)
        await new Promise((resolve, reject) => {
          ws.once('open', resolve)
          ws.once('error', reject)
        })
        ws.send('over tls')
        const [data] = await new Promise<[Buffer]>((resolve) => ws.once('message', (d: Buffer) => resolve([d])))
        assert.equal(data.toString(), 'over tls')
        ws.close()
      })
    })
  })
}

describe('TLS to servers: config', () => {
  it('accepts https:// servers, and refuses a tls section no https:// server uses, or a cert without its key', () => {
    const base = (pool: Record<string, unknown>) => ({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', ...pool }],
    })
    assert.ok(validateConfig(base({ servers: ['https://api.example.com'] })).ok)
    const noHttps = validateConfig(base({ servers: ['http://127.0.0.1:1'], tls: { ca: 'x.pem' } }))
    assert.equal(noHttps.ok, false)
    assert.match(JSON.stringify(noHttps), /an https:\/\/ server for `tls`/)
    const noKey = validateConfig(base({ servers: ['https://127.0.0.1:1'], tls: { cert: 'c.pem' } }))
    assert.equal(noKey.ok, false)
    assert.match(JSON.stringify(noKey), /a `key` with the client `cert`/)
  })

  it('refuses to start when a TLS file cannot be read, naming the pool and the file', async () => {
    const lb = createLoadBalancer(poolConfig('https://127.0.0.1:1', 'native', { ca: '/nonexistent/ca.pem' }))
    await assert.rejects(lb.start(), /pool p: cannot read the TLS CA file \/nonexistent\/ca\.pem/)
    await lb.close({ gracePeriodMs: 0 }).catch(() => {})
  })
})
