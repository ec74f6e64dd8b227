/**
 * HTTP/2 to servers (`protocol: h2c` and `h2`) for plain HTTP traffic: real node:http2 servers on
 * 127.0.0.1, HTTP/1.1 clients (undici) in front. Multiplexing over few connections within
 * `maxConcurrentStreams` and `maxPerServer`, flow control end to end, trailers, a refused stream sent
 * again, timeouts, idle connections closed, ALPN refusal, and config checks.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import {
  createServer as createH2Server,
  createSecureServer,
  type Http2Server,
  type Http2Session,
  constants as h2constants,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from 'node:http2'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { type ConfigInput, createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { waitFor } from './helpers/wait.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))

type Handler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => void

interface H2Backend {
  readonly port: number
  readonly server: Http2Server
  /** Sessions opened to it, and the most streams each had open at once. */
  readonly sessions: { session: Http2Session; open: number; peak: number; closed: boolean }[]
  handler: Handler
  close(): Promise<void>
}

async function h2Backend(handler: Handler, secure = false): Promise<H2Backend> {
  const server = secure
    ? createSecureServer({ cert: readFileSync(fixture('cert.pem')), key: readFileSync(fixture('key.pem')) })
    : createH2Server()
  const state: H2Backend = {
    port: 0,
    server: server as Http2Server,
    sessions: [],
    handler,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of state.sessions) s.session.destroy()
        server.close(() => resolve())
      }),
  }
  server.on('session', (session: Http2Session) => {
    const entry = { session, open: 0, peak: 0, closed: false }
    state.sessions.push(entry)
    session.on('close', () => {
      entry.closed = true
    })
    session.on('stream', (stream: ServerHttp2Stream) => {
      entry.open++
      entry.peak = Math.max(entry.peak, entry.open)
      stream.on('close', () => entry.open--)
    })
  })
  server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
    stream.on('error', () => {})
    state.handler(stream, headers)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return Object.assign(state, { port: (server.address() as AddressInfo).port })
}

function config(url: string, pool: Partial<ConfigInput['pools'][number]> = {}): ConfigInput {
  return {
    logging: { accessLog: false },
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', protocol: 'h2c', servers: [url], ...pool }],
  }
}

async function withLb<T>(cfg: ConfigInput, fn: (base: string, lb: LoadBalancer) => Promise<T>): Promise<T> {
  const lb: LoadBalancer = createLoadBalancer(cfg)
  await lb.start()
  try {
    return await fn(`http://127.0.0.1:${Object.values(lb.addresses())[0]?.port}`, lb)
  } finally {
    await lb.close({ gracePeriodMs: 200 })
  }
}

const echoHead: Handler = (stream, headers) => {
  stream.respond({ ':status': 200, 'content-type': 'application/json' })
  stream.end(
    JSON.stringify({
      method: headers[':method'],
      path: headers[':path'],
      authority: headers[':authority'],
      scheme: headers[':scheme'],
      xff: headers['x-forwarded-for'],
      connection: headers.connection ?? null,
    }),
  )
}

describe('HTTP/2 to servers (h2c)', () => {
  let backend: H2Backend

  before(async () => {
    backend = await h2Backend(echoHead)
  })

  after(() => backend.close())

  it('sends HTTP/1.1 requests on as HTTP/2 streams, with pseudo-headers and forwarding headers', async () => {
    await withLb(config(`http://127.0.0.1:${backend.port}`), async (base) => {
      const res = await request(`${base}/a/b?c=1`, { headers: { connection: 'keep-alive', host: 'app.example' } })
      assert.equal(res.statusCode, 200)
      const seen = (await res.body.json()) as Record<string, unknown>
      assert.deepEqual(seen, {
        method: 'GET',
        path: '/a/b?c=1',
        authority: 'app.example',
        scheme: 'http',
        xff: '127.0.0.1',
        connection: null,
      })
    })
  })

  it('multiplexes requests over few connections: maxConcurrentStreams per connection, maxPerServer connections', async () => {
    const held: ServerHttp2Stream[] = []
    const release = () => {
      for (const s of held.splice(0)) {
        s.respond({ ':status': 200 })
        s.end('ok')
      }
    }
    backend.handler = (stream) => {
      held.push(stream)
    }
    const before = backend.sessions.length
    try {
      await withLb(
        config(`http://127.0.0.1:${backend.port}`, {
          connections: { maxConcurrentStreams: 5, maxPerServer: 2, maxClientShare: 1 },
        }),
        async (base) => {
          const all = Array.from({ length: 20 }, (_, i) => request(`${base}/${i}`).then((r) => r.body.text()))
          // 2 connections × 5 streams are in flight at most; the other 10 requests wait.
          await waitFor(() => held.length === 10, '10 streams open')
          const mine = backend.sessions.slice(before)
          assert.equal(mine.length, 2)
          release()
          // The queued ones follow, on the same two connections.
          await waitFor(() => held.length === 10, 'the 10 queued requests')
          release()
          const bodies = await Promise.all(all)
          assert.ok(bodies.every((b) => b === 'ok'))
          assert.equal(backend.sessions.slice(before).length, 2)
          assert.ok(
            mine.every((s) => s.peak <= 5),
            `peaks ${mine.map((s) => s.peak)}`,
          )
        },
      )
    } finally {
      backend.handler = echoHead
    }
  })

  it('keeps one connection for many requests (maxConcurrentStreams 100 by default)', async () => {
    const before = backend.sessions.length
    await withLb(config(`http://127.0.0.1:${backend.port}`), async (base) => {
      const all = await Promise.all(
        Array.from({ length: 50 }, (_, i) => request(`${base}/${i}`).then((r) => r.body.json())),
      )
      assert.equal(all.length, 50)
    })
    assert.equal(backend.sessions.length - before, 1)
  })

  it('respects flow control end to end: a client that does not read holds the server back', async () => {
    const total = 16 * 1024 * 1024
    const chunk = Buffer.alloc(64 * 1024, 7)
    let written = 0
    let blocked = false
    backend.handler = (stream) => {
      stream.respond({ ':status': 200, 'content-length': String(total) })
      const pump = () => {
        while (written < total) {
          written += chunk.length
          if (!stream.write(chunk)) {
            blocked = true
            return void stream.once('drain', pump)
          }
        }
        stream.end()
      }
      pump()
    }
    try {
      await withLb(config(`http://127.0.0.1:${backend.port}`), async (base) => {
        const res = await request(`${base}/big`)
        // The client reads nothing yet: the server soon cannot write more.
        await waitFor(() => blocked, 'the server to be blocked')
        // A fixed wait, only to show that nothing moves while the client does not read.
        await new Promise((r) => setTimeout(r, 300))
        assert.ok(written < total / 2, `the server wrote ${written} of ${total} bytes to a client that read none`)
        const hash = createHash('sha256')
        let got = 0
        for await (const part of res.body) {
          hash.update(part as Buffer)
          got += (part as Buffer).length
        }
        assert.equal(got, total)
        assert.equal(hash.digest('hex'), createHash('sha256').update(Buffer.alloc(total, 7)).digest('hex'))
      })
    } finally {
      backend.handler = echoHead
    }
  })

  it('streams a large upload to the server intact, and relays response trailers', async () => {
    backend.handler = (stream) => {
      const hash = createHash('sha256')
      let bytes = 0
      stream.on('data', (c: Buffer) => {
        hash.update(c)
        bytes += c.length
      })
      stream.on('end', () => {
        stream.respond({ ':status': 200 }, { waitForTrailers: true })
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-digest': hash.digest('hex') }))
        stream.end(String(bytes))
      })
    }
    try {
      await withLb(config(`http://127.0.0.1:${backend.port}`), async (base) => {
        const body = Buffer.alloc(5 * 1024 * 1024, 3)
        const res = await request(`${base}/up`, { method: 'POST', body })
        assert.equal(res.statusCode, 200)
        assert.equal(await res.body.text(), String(body.length))
        assert.equal(res.trailers['x-digest'], createHash('sha256').update(body).digest('hex'))
      })
    } finally {
      backend.handler = echoHead
    }
  })

  it('sends a refused stream (REFUSED_STREAM) again: the client never sees it, /metrics counts it', async () => {
    let streams = 0
    backend.handler = (stream, headers) => {
      if (++streams === 1) return stream.close(h2constants.NGHTTP2_REFUSED_STREAM)
      echoHead(stream, headers)
    }
    try {
      await withLb(config(`http://127.0.0.1:${backend.port}`, { retries: { attempts: 0 } }), async (base, lb) => {
        const res = await request(`${base}/once`, { method: 'POST', body: 'hello' })
        assert.equal(res.statusCode, 200)
        assert.equal(((await res.body.json()) as { path: string }).path, '/once')
        assert.equal(streams, 2)
        const m = (await lb.metricsText()).body
        assert.match(m, /switchyard_upstream_retries_total\{pool="p",server="[^"]+",reason="refused-stream"\} 1\n/)
        assert.match(m, /switchyard_upstream_requests_total\{pool="p",server="[^"]+"\} 1\n/, 'one try, sent twice')
      })
    } finally {
      backend.handler = echoHead
    }
  })

  it('answers 504 SWY_UPSTREAM_TIMEOUT when no response head comes in time, and resets the stream', async () => {
    let reset = false
    backend.handler = (stream) => {
      stream.on('close', () => {
        reset = stream.rstCode === h2constants.NGHTTP2_CANCEL
      })
    }
    try {
      await withLb(
        config(`http://127.0.0.1:${backend.port}`, {
          retries: { attempts: 0 },
          timeouts: { responseHeaders: '100ms' },
        }),
        async (base) => {
          const res = await request(`${base}/slow`)
          assert.equal(res.statusCode, 504)
          assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'SWY_UPSTREAM_TIMEOUT')
          await waitFor(() => reset, 'the server to see RST_STREAM CANCEL')
        },
      )
    } finally {
      backend.handler = echoHead
    }
  })

  it('lets a request in flight finish when the load balancer shuts down', async () => {
    const held: ServerHttp2Stream[] = []
    backend.handler = (stream) => {
      held.push(stream)
    }
    try {
      const lb = createLoadBalancer(config(`http://127.0.0.1:${backend.port}`))
      await lb.start()
      const base = `http://127.0.0.1:${Object.values(lb.addresses())[0]?.port}`
      const pending = request(`${base}/held`).then(async (r) => ({ status: r.statusCode, body: await r.body.text() }))
      await waitFor(() => held.length === 1, 'the request at the server')
      const closed = lb.close({ gracePeriodMs: 5000 })
      const stream = held[0] as ServerHttp2Stream
      stream.respond({ ':status': 200 })
      stream.end('finished')
      assert.deepEqual(await pending, { status: 200, body: 'finished' })
      await closed
    } finally {
      backend.handler = echoHead
    }
  })

  it('retries a request on another server when an HTTP/2 connection dies under it (not a cancellation)', async () => {
    const dying = await h2Backend((stream) => stream.session?.destroy())
    try {
      await withLb(
        {
          logging: { accessLog: false },
          listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
          pools: [
            {
              name: 'p',
              protocol: 'h2c',
              balance: { algorithm: 'round-robin' },
              servers: [`http://127.0.0.1:${dying.port}`, `http://127.0.0.1:${backend.port}`],
              retries: { attempts: 1, backoff: { base: '1ms', max: '1ms' } },
              ejectOnConnectFailure: false,
            },
          ],
        },
        async (base) => {
          for (let i = 0; i < 4; i++) {
            const res = await request(`${base}/r${i}`)
            assert.equal(res.statusCode, 200, `request ${i}`)
            assert.equal(((await res.body.json()) as { path: string }).path, `/r${i}`)
          }
        },
      )
    } finally {
      await dying.close()
    }
  })

  it('serves the queue, then closes, when closed while its first connection is being made', async () => {
    const { Http2Connections } = await import('../src/http2/upstream.js')
    const before = backend.sessions.length
    const pool = new Http2Connections({
      host: '127.0.0.1',
      port: backend.port,
      authority: `127.0.0.1:${backend.port}`,
      tls: undefined,
      maxConnections: 4,
      maxConcurrentStreams: 100,
      keepAliveMs: 60_000,
      connectMs: 5000,
      maxRequestsPerConnection: 0,
    })
    const done = new Promise<number>((resolve, reject) => {
      const call = pool.call({
        onUpstreamHead: (status) => {
          resolve(status)
          return true
        },
        onUpstreamData: () => true,
        onUpstreamEnd: () => {},
        onUpstreamError: reject,
        onUpstreamSocket: () => {},
      })
      call.send({
        method: 'GET',
        path: '/q',
        headers: ['host', 'q.test'],
        body: null,
        headersTimeoutMs: 5000,
        bodyTimeoutMs: 5000,
        closeAfter: false,
      })
    })
    const closed = pool.close()
    assert.equal(await done, 200)
    await closed
    assert.equal(backend.sessions.length - before, 1, 'one connection, not one per turn of a loop')
    await waitFor(() => backend.sessions.slice(before).every((s) => s.closed), 'the connection closed')
  })

  it('closes a connection idle for connections.keepAlive', async () => {
    const before = backend.sessions.length
    await withLb(config(`http://127.0.0.1:${backend.port}`, { connections: { keepAlive: '50ms' } }), async (base) => {
      await (await request(`${base}/`)).body.text()
      const mine = backend.sessions[before]
      assert.ok(mine)
      await waitFor(() => mine.closed, 'the idle connection to close')
    })
  })
})

describe('HTTP/2 to servers over TLS (h2)', () => {
  it('agrees on h2 by ALPN with a TLS server, verified against the CA', async () => {
    const backend = await h2Backend(echoHead, true)
    try {
      await withLb(
        config(`https://localhost:${backend.port}`, { protocol: 'h2', tls: { ca: fixture('cert.pem') } }),
        async (base) => {
          const res = await request(`${base}/tls`)
          assert.equal(res.statusCode, 200)
          const seen = (await res.body.json()) as { scheme: string; path: string }
          assert.equal(seen.scheme, 'https')
          assert.equal(seen.path, '/tls')
        },
      )
    } finally {
      await backend.close()
    }
  })

  it('refuses a server the system CAs do not trust: 502 SWY_UPSTREAM_TLS', async () => {
    const backend = await h2Backend(echoHead, true)
    try {
      await withLb(
        config(`https://localhost:${backend.port}`, {
          protocol: 'h2',
          retries: { attempts: 0 },
          ejectOnConnectFailure: false,
        }),
        async (base) => {
          const res = await request(`${base}/`)
          assert.equal(res.statusCode, 502)
          assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'SWY_UPSTREAM_TLS')
        },
      )
    } finally {
      await backend.close()
    }
  })

  it('answers 502 SWY_UPSTREAM_PROTOCOL when the server does not agree to h2', async () => {
    // A TLS server that ignores ALPN (one that offers other protocols refuses the handshake instead).
    const server = createTlsServer(
      { cert: readFileSync(fixture('cert.pem')), key: readFileSync(fixture('key.pem')) },
      (s) => s.end('HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n'),
    )
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    try {
      const port = (server.address() as AddressInfo).port
      await withLb(
        config(`https://localhost:${port}`, {
          protocol: 'h2',
          tls: { ca: fixture('cert.pem') },
          retries: { attempts: 0 },
          ejectOnConnectFailure: false,
        }),
        async (base) => {
          const res = await request(`${base}/`)
          assert.equal(res.statusCode, 502)
          assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'SWY_UPSTREAM_PROTOCOL')
        },
      )
    } finally {
      server.close()
    }
  })
})

describe('HTTP/2 pool config', () => {
  it('refuses an http:// server with protocol h2 and an https:// one with h2c, naming the key', () => {
    const problems = (protocol: 'h2' | 'h2c', url: string) => {
      const r = validateConfig({
        listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', protocol, servers: [url] }],
      })
      return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)
    }
    assert.deepEqual(problems('h2', 'http://127.0.0.1:1'), [
      'pools[0].servers[0]: expected an https:// URL with protocol h2 (HTTP/2 over TLS; h2c is HTTP/2 in clear), found "http://127.0.0.1:1"',
    ])
    assert.deepEqual(problems('h2c', 'https://127.0.0.1:1'), [
      'pools[0].servers[0]: expected an http:// URL with protocol h2c (HTTP/2 in clear; h2 is HTTP/2 over TLS), found "https://127.0.0.1:1"',
    ])
    assert.deepEqual(problems('h2', 'https://127.0.0.1:1'), [])
  })
})
