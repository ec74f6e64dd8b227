/**
 * HTTP/2 downstream: h2c with prior knowledge beside HTTP/1.1 on a plain listener, h2 by ALPN on an
 * https listener; real clients (node:http2, curl, undici) in front, HTTP/1.1 backends behind.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { type ClientHttp2Session, connect, constants } from 'node:http2'
import { connect as netConnect } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { pino } from 'pino'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { deadPort, startBackend, type TestBackend } from './helpers/backends.js'
import { ENGINES } from './helpers/differential.js'

const run = promisify(execFile)
const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))
const ca = readFileSync(fixture('cert.pem'))

interface H2Response {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: Buffer
}

/** One request on an open session; rejects when the stream is reset. */
function h2request(
  session: ClientHttp2Session,
  headers: Record<string, string | string[]>,
  body?: Buffer,
): Promise<H2Response> {
  return new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined })
    const chunks: Buffer[] = []
    let status = 0
    let head: H2Response['headers'] = {}
    stream.on('response', (h) => {
      status = Number(h[':status'])
      head = h as H2Response['headers']
    })
    stream.on('data', (c: Buffer) => chunks.push(c))
    stream.on('end', () => resolve({ status, headers: head, body: Buffer.concat(chunks) }))
    stream.on('error', reject)
    stream.on('close', () => {
      if (stream.rstCode !== constants.NGHTTP2_NO_ERROR) reject(new Error(`stream reset ${stream.rstCode}`))
    })
    if (body !== undefined) stream.end(body)
  })
}

function open(url: string, options: Parameters<typeof connect>[1] = {}): Promise<ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = connect(url, options)
    // Wait for the server's SETTINGS, so that its stream limit is known before requests go out.
    session.once('remoteSettings', () => resolve(session))
    session.once('error', reject)
  })
}

function closeSession(session: ClientHttp2Session): Promise<void> {
  return new Promise((resolve) => {
    if (session.closed) return resolve()
    session.close(() => resolve())
  })
}

/** Echoes what it saw as JSON, or streams `?bytes=N` random bytes, or echoes a POST body's hash. */
async function echoBackend(): Promise<TestBackend> {
  return startBackend('echo', (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const bytes = Number(url.searchParams.get('bytes') ?? 0)
      if (bytes > 0) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bytes })
        res.end(Buffer.alloc(bytes, 7))
        return
      }
      res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; Path=/'])
      res.setHeader('connection', 'keep-alive')
      res.setHeader('keep-alive', 'timeout=5')
      res.writeHead(201, 'Made', { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          method: req.method,
          url: req.url,
          httpVersion: req.httpVersion,
          rawHeaders: req.rawHeaders,
          bodyLength: body.length,
          bodySha: createHash('sha256').update(body).digest('hex'),
        }),
      )
    })
  })
}

function h2Config(
  backend: string,
  extra: Partial<Extract<ConfigInput['listeners'][number], { protocol?: 'http' | 'https' | undefined }>> = {},
): ConfigInput {
  return {
    listeners: [
      {
        name: 'web',
        listen: '127.0.0.1:0',
        http2: { maxConcurrentStreams: 64 },
        routes: [{ match: { pathPrefix: '/dead' }, pool: 'dead' }, { pool: 'p' }],
        ...extra,
      },
    ],
    pools: [
      { name: 'p', servers: [backend] },
      { name: 'dead', servers: ['http://127.0.0.1:1'] },
    ],
  }
}

// Both engines: the HTTP/1.1 engine takes each plain connection first and hands those that open with
// the HTTP/2 preface to node:http2, as before.
for (const engine of ENGINES) {
  describe(`HTTP/2 with prior knowledge (h2c) beside HTTP/1.1 on a plain listener, engine: ${engine}`, () => {
    let backend: TestBackend
    let lb: LoadBalancer
    let url: string
    const lines: string[] = []

    before(async () => {
      backend = await echoBackend()
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean))
          done()
        },
      })
      const logger = pino({ formatters: { level: (label) => ({ level: label }) } }, sink)
      const config = h2Config(backend.url, { engine })
      config.pools[1]!.servers = [`http://127.0.0.1:${await deadPort()}`]
      for (const p of config.pools) p.engine = engine
      lb = createLoadBalancer(config, { logger })
      await lb.start()
      url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
    })
    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    })

    it('proxies an h2c request as HTTP/1.1: authority as Host, cookies joined, pseudo-headers and hop-by-hop headers dropped', async () => {
      const session = await open(url)
      try {
        const res = await h2request(session, {
          ':path': '/echo?q=1',
          ':authority': 'app.example',
          cookie: ['c1=1', 'c2=2'],
          'x-custom': 'yes',
        })
        assert.equal(res.status, 201)
        const seen = JSON.parse(res.body.toString()) as { rawHeaders: string[]; url: string; httpVersion: string }
        assert.equal(seen.url, '/echo?q=1')
        assert.equal(seen.httpVersion, '1.1')
        const names = seen.rawHeaders.filter((_, i) => i % 2 === 0)
        const get = (n: string) => seen.rawHeaders.filter((_, i) => i % 2 === 1 && seen.rawHeaders[i - 1] === n)
        assert.deepEqual(get('host'), ['app.example'])
        assert.deepEqual(get('cookie'), ['c1=1; c2=2'])
        assert.deepEqual(get('x-custom'), ['yes'])
        assert.deepEqual(get('x-forwarded-proto'), ['http'])
        assert.ok(!names.some((n) => n.startsWith(':')), `no pseudo-headers upstream: ${names.join(',')}`)
        // Response: multi-value Set-Cookie kept apart; connection-specific headers are illegal in HTTP/2.
        assert.deepEqual(res.headers['set-cookie'], ['a=1; Path=/', 'b=2; Path=/'])
        assert.equal(res.headers.connection, undefined)
        assert.equal(res.headers['keep-alive'], undefined)
        assert.match(String(res.headers['x-request-id']), /^[0-9a-f-]{36}$/)
      } finally {
        await closeSession(session)
      }
    })

    it('serves HTTP/1.1 on the same port, and announces the configured stream limit', async () => {
      const h1 = await request(`${url}/h1`, { method: 'POST', body: 'hello' })
      assert.equal(h1.statusCode, 201)
      const seen = (await h1.body.json()) as { bodyLength: number }
      assert.equal(seen.bodyLength, 5)
      const session = await open(url)
      try {
        await h2request(session, { ':path': '/' })
        assert.equal(session.remoteSettings.maxConcurrentStreams, 64)
      } finally {
        await closeSession(session)
      }
    })

    it('takes a preface that arrives a byte at a time as HTTP/2, and a request line that starts like it as HTTP/1.1', async () => {
      const port = Number(new URL(url).port)
      /** Writes `pieces` one event-loop turn apart; resolves with the first `want` bytes read back. */
      const exchange = (pieces: (string | Buffer)[], want: number) =>
        new Promise<Buffer>((resolve, reject) => {
          const socket = netConnect(port, '127.0.0.1')
          socket.setNoDelay(true)
          let got = Buffer.alloc(0)
          const timer = setTimeout(() => {
            socket.destroy()
            reject(new Error(`no ${want} bytes within 5 s: ${JSON.stringify(got.toString('latin1'))}`))
          }, 5000)
          socket.on('error', reject)
          socket.on('data', (c: Buffer) => {
            got = Buffer.concat([got, c])
            if (got.length < want) return
            clearTimeout(timer)
            socket.destroy()
            resolve(got)
          })
          socket.once('connect', async () => {
            for (const p of pieces) {
              socket.write(p)
              await new Promise((r) => setImmediate(r))
            }
          })
        })
      const preface = [...'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n']
      // An empty SETTINGS frame: length 0, type 4, no flags, stream 0.
      const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0])
      const h2 = await exchange([...preface, settings], 9)
      assert.equal(h2[3], 4, `the listener answers with a SETTINGS frame: ${JSON.stringify(h2.toString('latin1'))}`)
      const h1 = await exchange(
        ['P', 'R', 'OPFIND /dav HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n'],
        12,
      )
      assert.equal(h1.toString('latin1', 0, 12), 'HTTP/1.1 201')
    })

    it('multiplexes 200 requests over one session, up to the stream limit at once', async () => {
      const session = await open(url)
      try {
        const results = await Promise.all(
          Array.from({ length: 200 }, (_, i) => h2request(session, { ':path': `/m/${i}` })),
        )
        assert.equal(results.filter((r) => r.status === 201).length, 200)
        const urls = new Set(results.map((r) => (JSON.parse(r.body.toString()) as { url: string }).url))
        assert.equal(urls.size, 200)
      } finally {
        await closeSession(session)
      }
    })

    it('streams a 4 MiB upload and a 4 MiB download intact', async () => {
      const session = await open(url)
      try {
        const upload = randomBytes(4 * 1024 * 1024)
        const up = await h2request(session, { ':path': '/upload', ':method': 'POST' }, upload)
        const seen = JSON.parse(up.body.toString()) as { bodyLength: number; bodySha: string }
        assert.equal(seen.bodyLength, upload.length)
        assert.equal(seen.bodySha, createHash('sha256').update(upload).digest('hex'))
        const down = await h2request(session, { ':path': `/download?bytes=${4 * 1024 * 1024}` })
        assert.equal(down.status, 200)
        assert.equal(down.body.length, 4 * 1024 * 1024)
        assert.ok(down.body.every((b) => b === 7))
      } finally {
        await closeSession(session)
      }
    })

    it('answers an upstream failure with 502 and its code, and keeps the session usable', async () => {
      const session = await open(url)
      try {
        const res = await h2request(session, { ':path': '/dead/x' })
        assert.equal(res.status, 502)
        assert.equal(
          (JSON.parse(res.body.toString()) as { error: { code: string } }).error.code,
          'SWY_UPSTREAM_CONNECT',
        )
        assert.equal((await h2request(session, { ':path': '/after' })).status, 201)
      } finally {
        await closeSession(session)
      }
    })

    it('works with curl --http2-prior-knowledge', async () => {
      const { stdout } = await run('curl', [
        '-sS',
        '--http2-prior-knowledge',
        '-o',
        '-',
        '-w',
        '\n%{http_version}',
        `${url}/curl`,
      ])
      const [body, version] = stdout.split('\n')
      assert.equal(version, '2')
      assert.equal((JSON.parse(body!) as { url: string }).url, '/curl')
    })

    it('logs HTTP/2 requests with protocol h2 and their body bytes, and counts sessions', async () => {
      const metrics = (await lb.metricsText()).body
      const opened = /switchyard_http2_sessions_total\{listener="web"\} (\d+)/.exec(metrics)
      assert.ok(opened && Number(opened[1]) >= 6, `sessions counted: ${opened?.[0]}`)
      await lb.close({ gracePeriodMs: 1000 })
      const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.type === 'access')
      const upload = access.find((l) => l.url === '/upload')
      assert.equal(upload?.protocol, 'h2')
      assert.equal(upload?.bytesIn, 4 * 1024 * 1024)
      const h1 = access.find((l) => l.url === '/h1')
      assert.equal(h1?.protocol, 'http/1.1')
    })
  })
}

describe('HTTP/2 by ALPN on an https listener', () => {
  let backend: TestBackend
  let lb: LoadBalancer
  let port: number
  const tlsListener = () => ({
    protocol: 'https' as const,
    tls: { cert: fixture('cert.pem'), key: fixture('key.pem') },
  })

  before(async () => {
    backend = await echoBackend()
    lb = createLoadBalancer(h2Config(backend.url, tlsListener()))
    await lb.start()
    port = Object.values(lb.addresses())[0]!.port
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 1000 })
    await backend.close()
  })

  const alpnOf = (protocols: string[]) =>
    new Promise<string | false>((resolve, reject) => {
      const s = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', ca, ALPNProtocols: protocols }, () => {
        const chosen = s.alpnProtocol ?? false
        s.end()
        resolve(chosen)
      })
      s.once('error', reject)
    })

  it('negotiates h2 with clients that offer it and http/1.1 with the others', async () => {
    assert.equal(await alpnOf(['h2', 'http/1.1']), 'h2')
    assert.equal(await alpnOf(['http/1.1']), 'http/1.1')
    const session = await open(`https://localhost:${port}`, { ca })
    try {
      const res = await h2request(session, { ':path': '/tls' })
      assert.equal(res.status, 201)
      const seen = JSON.parse(res.body.toString()) as { rawHeaders: string[] }
      const i = seen.rawHeaders.indexOf('x-forwarded-proto')
      assert.equal(seen.rawHeaders[i + 1], 'https')
    } finally {
      await closeSession(session)
    }
    const agent = new Agent({ connect: { ca, servername: 'localhost' } })
    try {
      const h1 = await request(`https://127.0.0.1:${port}/h1`, { dispatcher: agent })
      assert.equal(h1.statusCode, 201)
      assert.equal(((await h1.body.json()) as { url: string }).url, '/h1')
    } finally {
      await agent.close()
    }
  })

  it('works with curl --http2 over TLS', async () => {
    const { stdout } = await run('curl', [
      '-sS',
      '--http2',
      '--cacert',
      fixture('cert.pem'),
      '--resolve',
      `localhost:${port}:127.0.0.1`,
      '-o',
      '-',
      '-w',
      '\n%{http_version}',
      `https://localhost:${port}/curl-tls`,
    ])
    const [body, version] = stdout.split('\n')
    assert.equal(version, '2')
    assert.equal((JSON.parse(body!) as { url: string }).url, '/curl-tls')
  })

  it('stops offering h2 after a reload turns HTTP/2 off, and offers it again when it is turned back on', async () => {
    const config = h2Config(backend.url, tlsListener())
    await lb.reload({ ...config, listeners: [{ ...config.listeners[0]!, http2: false }] })
    assert.equal(await alpnOf(['h2', 'http/1.1']), 'http/1.1')
    await lb.reload(config)
    assert.equal(await alpnOf(['h2', 'http/1.1']), 'h2')
  })
})

describe('HTTP/2 session lifecycle', () => {
  it('closes an idle session with GOAWAY after timeouts.idle, but not one with a slow request open', async () => {
    const backend = await startBackend('slow', (req, res) => {
      req.resume()
      setTimeout(() => res.end('late'), Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0))
    })
    const lb = createLoadBalancer(h2Config(backend.url, { timeouts: { idle: '300ms' } }))
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
    try {
      const session = await open(url)
      let goaway = false
      session.on('goaway', () => {
        goaway = true
      })
      // The request outlives the idle timeout twice over; the session must stay up for it.
      const res = await h2request(session, { ':path': '/?ms=800' })
      assert.equal(res.body.toString(), 'late')
      assert.equal(goaway, false)
      await new Promise<void>((resolve) => session.once('close', () => resolve()))
      assert.equal(goaway, true)
    } finally {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    }
  })

  it('drains: an in-flight stream finishes, the session gets GOAWAY, and the listener closes', async () => {
    let arrived!: () => void
    const arrival = new Promise<void>((resolve) => {
      arrived = resolve
    })
    const backend = await startBackend('slow', (req, res) => {
      req.resume()
      arrived()
      setTimeout(() => res.end('finished'), 300)
    })
    const lb = createLoadBalancer(h2Config(backend.url))
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
    try {
      const session = await open(url)
      session.on('error', () => {})
      let goaway = false
      session.on('goaway', () => {
        goaway = true
      })
      const pending = h2request(session, { ':path': '/slow' })
      await arrival
      const closing = lb.close({ gracePeriodMs: 5000 })
      const res = await pending
      assert.equal(res.status, 200)
      assert.equal(res.body.toString(), 'finished')
      await closing
      assert.equal(goaway, true)
      assert.ok(session.closed || session.destroyed)
    } finally {
      await lb.close({ gracePeriodMs: 0 })
      await backend.close()
    }
  })

  it('aborts the upstream request when the client resets its stream, and keeps serving', async () => {
    let upstreamClosed!: () => void
    const closedUpstream = new Promise<void>((resolve) => {
      upstreamClosed = resolve
    })
    const backend = await startBackend('hang', (req, res) => {
      req.resume()
      if (req.url === '/hang') {
        res.writeHead(200)
        res.write('partial')
        res.on('close', () => upstreamClosed())
      } else res.end('ok')
    })
    const lb = createLoadBalancer(h2Config(backend.url))
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
    try {
      const session = await open(url)
      const stream = session.request({ ':path': '/hang' })
      await new Promise<void>((resolve) => stream.once('data', () => resolve()))
      stream.close(constants.NGHTTP2_CANCEL)
      await closedUpstream
      assert.equal((await h2request(session, { ':path': '/next' })).body.toString(), 'ok')
      await closeSession(session)
    } finally {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    }
  })

  it('resets the stream, never ends it cleanly, when the backend dies mid-response', async () => {
    const backend = await startBackend('dies', (req, res) => {
      req.resume()
      res.writeHead(200, { 'content-length': 100000 })
      res.write(Buffer.alloc(1000))
      setTimeout(() => res.socket?.destroy(), 50)
    })
    const lb = createLoadBalancer(h2Config(backend.url))
    await lb.start()
    const url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
    try {
      const session = await open(url)
      session.on('error', () => {})
      await assert.rejects(h2request(session, { ':path': '/big' }), /stream reset|ERR_HTTP2_STREAM_ERROR/)
      await closeSession(session)
    } finally {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    }
  })

  it('on drain, closes a plain connection that has not yet said which protocol it speaks', {
    timeout: 30_000,
  }, async () => {
    const backend = await startBackend('b')
    // Nothing else would close the silent connection before the test times out.
    const lb = createLoadBalancer(h2Config(backend.url, { timeouts: { requestHeaders: '10m', idle: '10m' } }))
    await lb.start()
    const port = Object.values(lb.addresses())[0]!.port
    try {
      const silent = netConnect(port, '127.0.0.1')
      await new Promise<void>((resolve) => silent.once('connect', () => resolve()))
      const closed = new Promise<void>((resolve) => silent.once('close', () => resolve()))
      // With no request in flight, the drain has nothing to wait for: it must close the connection
      // rather than sit out the 10-minute grace period.
      await lb.close({ gracePeriodMs: 600_000 })
      await closed
      assert.equal(silent.destroyed, true)
    } finally {
      await lb.close({ gracePeriodMs: 0 })
      await backend.close()
    }
  })

  it('rejects http2 on a tcp listener, naming the key', () => {
    const result = validateConfig({
      listeners: [{ name: 't', listen: '127.0.0.1:0', protocol: 'tcp', http2: true, routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: ['tcp://127.0.0.1:9'] }],
    })
    assert.equal(result.ok, false)
    assert.ok(!result.ok && result.issues.some((i) => i.path === 'listeners[0].http2'), JSON.stringify(result))
  })
})
