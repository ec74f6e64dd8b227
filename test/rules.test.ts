/**
 * The built-in request rules end to end: real upstream servers on 127.0.0.1, a real load balancer,
 * real clients (undici, and curl once). What the upstream receives (path, query, Host, headers with
 * placeholders resolved, X-Real-IP, the forwarding headers), what the client gets back (header changes,
 * redirects, static answers, compressed bodies), how a split shares requests and keeps clients on their
 * side, and that mirroring never holds up or changes a client's response. Waits are on events with
 * deadlines; loads are bounded.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import type { IncomingMessage } from 'node:http'
import { connect } from 'node:net'
import { Readable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import type { pino } from 'pino'
import { Agent, request } from 'undici'
import { mirrorStats } from '../src/filters/mirror.js'
import type { Filter } from '../src/filters/types.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { deadPort, startBackend, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'

const execFileP = promisify(execFile)

// --- helpers ------------------------------------------------------------------------------------

/** Rejects with `what` when `promise` has not settled within `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Resolves once `cond()` holds (checked every few milliseconds), or rejects after `ms`. */
async function until(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  const start = performance.now()
  while (!cond()) {
    if (performance.now() - start > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

interface Deferred {
  readonly promise: Promise<void>
  resolve(): void
}

function deferred(): Deferred {
  let resolve!: () => void
  const promise = new Promise<void>((r) => {
    resolve = r
  })
  return { promise, resolve }
}

/** What an echo backend saw of one request. */
interface Seen {
  readonly backend: string
  readonly method: string
  readonly url: string
  readonly headers: IncomingMessage['headers']
  readonly rawHeaders: string[]
  readonly body: string
}

/** Answers 200 with a JSON description of the request (and keeps it in `seen`); `server: echo-server`. */
async function echoBackend(name: string, seen: Seen[] = []): Promise<TestBackend & { seen: Seen[] }> {
  const b = await startBackend(name, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const s: Seen = {
        backend: name,
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks).toString(),
      }
      seen.push(s)
      const body = JSON.stringify(s)
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        server: 'echo-server',
        'x-backend': name,
      })
      res.end(body)
    })
  })
  return Object.assign(b, { seen })
}

async function startLb(config: ConfigInput, plugins: Filter[] = [], logger?: pino.Logger) {
  const lb = createLoadBalancer(config, logger === undefined ? { plugins } : { plugins, logger })
  await lb.start()
  const addrs = lb.addresses()
  const url = (listener = 'main') => `http://127.0.0.1:${addrs[listener]!.port}`
  return { lb, url, port: (listener = 'main') => addrs[listener]!.port }
}

/** One request through undici (no automatic decompression, redirects not followed). */
async function get(url: string, opts: Parameters<typeof request>[1] = {}) {
  const res = await request(url, opts)
  const body = Buffer.from(await res.body.arrayBuffer())
  return { status: res.statusCode, headers: res.headers, body, text: body.toString() }
}

/** Runs `total` calls of `fn`, `concurrency` at a time. */
async function inParallel(total: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await fn(next++)
    }),
  )
}

function headerList(v: string | string[] | undefined): string[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v]
}

/** Writes `text` on a raw connection and resolves with what came back once `done(received)` holds. */
function rawExchange(port: number, text: string, done: (received: string) => boolean): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      const s = connect(port, '127.0.0.1', () => s.write(text))
      let received = ''
      s.setEncoding('latin1')
      s.on('data', (d: string) => {
        received += d
        if (done(received)) {
          s.destroy()
          resolve(received)
        }
      })
      s.on('error', reject)
    }),
    3000,
    'the raw response',
  )
}

// --- headers and rewrite -----------------------------------------------------------------------

describe('rules: headers and rewrite, as the upstream receives them', () => {
  let api: Awaited<ReturnType<typeof echoBackend>>
  let lb: LoadBalancer
  let base: string
  let port: number

  before(async () => {
    api = await echoBackend('api')
    const r = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            {
              name: 'api',
              match: { pathPrefix: '/api/' },
              pool: 'api',
              rewrite: { stripPrefix: '/api' },
              headers: {
                request: {
                  set: {
                    'x-tenant': 'acme',
                    'x-client': 'ip={client_ip}',
                    'x-rid': '{request_id}',
                    'x-orig-host': '{host}',
                    'x-scheme': '{scheme}',
                    'x-server': '{server}',
                  },
                  add: { 'x-multi': ['one', 'two'] },
                  remove: ['x-secret'],
                },
                response: {
                  set: { 'x-served-by': '{server}', 'x-client-seen': '{client_ip}' },
                  add: { 'x-extra': ['a', 'b'] },
                  remove: ['server'],
                },
                xRealIp: true,
              },
            },
            {
              match: { pathPrefix: '/v1/' },
              pool: 'api',
              rewrite: { replacePrefix: { from: '/v1/', to: '/api/v2/' }, host: 'internal.example:8080' },
            },
            {
              match: { pathPrefix: '/users/' },
              pool: 'api',
              rewrite: { regex: { pattern: '^/users/(\\d+)/profile$', replacement: '/u/$1' } },
            },
            { match: { pathPrefix: '/plain/' }, pool: 'api' },
          ],
        },
      ],
      pools: [{ name: 'api', servers: [api.url] }],
    })
    lb = r.lb
    base = r.url()
    port = r.port()
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 500 })
    await api.close()
  })

  it('stripPrefix: the path loses its prefix, the query is kept; Host is the client’s', async () => {
    const res = await get(`${base}/api/users?x=1&y=two`)
    assert.equal(res.status, 200)
    const seen = JSON.parse(res.text) as Seen
    assert.equal(seen.url, '/users?x=1&y=two')
    assert.equal(seen.headers.host, `127.0.0.1:${port}`)
    const root = JSON.parse((await get(`${base}/api/`)).text) as Seen
    assert.equal(root.url, '/', 'a path emptied by the strip is sent as /')
  })

  it('request headers: set, add, remove, with every placeholder resolved; X-Real-IP', async () => {
    const res = await get(`${base}/api/h`, {
      headers: { 'x-secret': 'hidden', 'x-tenant': 'evil', 'x-real-ip': '203.0.113.9', 'x-request-id': 'rid-42' },
    })
    const seen = JSON.parse(res.text) as Seen
    const h = seen.headers
    assert.equal(h['x-tenant'], 'acme', 'set replaces the client’s value')
    assert.equal(h['x-secret'], undefined)
    assert.equal(h['x-client'], 'ip=127.0.0.1')
    assert.equal(h['x-rid'], 'rid-42')
    assert.equal(h['x-request-id'], 'rid-42')
    assert.equal(h['x-orig-host'], `127.0.0.1:${port}`)
    assert.equal(h['x-scheme'], 'http')
    assert.equal(h['x-server'], `127.0.0.1:${api.port}`)
    assert.equal(h['x-real-ip'], '127.0.0.1', 'X-Real-IP replaces what the client sent')
    const multi = seen.rawHeaders.filter((_, i) => i % 2 === 1 && seen.rawHeaders[i - 1]?.toLowerCase() === 'x-multi')
    assert.deepEqual(multi, ['one', 'two'])
    // Each header rule sends one value: none is duplicated by the proxy's own.
    for (const name of ['x-tenant', 'x-real-ip', 'x-request-id', 'host'])
      assert.equal(
        seen.rawHeaders.filter((n, i) => i % 2 === 0 && n.toLowerCase() === name).length,
        1,
        `one ${name} header`,
      )
  })

  it('the forwarding headers are still added', async () => {
    const seen = JSON.parse((await get(`${base}/api/f`)).text) as Seen
    assert.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    assert.equal(seen.headers['x-forwarded-proto'], 'http')
    assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`)
    assert.equal(seen.headers.forwarded, `for=127.0.0.1;proto=http;host="127.0.0.1:${port}"`)
  })

  it('response headers: set (with {server}), add, remove', async () => {
    const res = await get(`${base}/api/r`)
    assert.equal(res.headers.server, undefined, 'server removed')
    assert.equal(res.headers['x-backend'], 'api', 'other upstream headers kept')
    assert.equal(res.headers['x-served-by'], `127.0.0.1:${api.port}`)
    assert.equal(res.headers['x-client-seen'], '127.0.0.1')
    assert.deepEqual(headerList(res.headers['x-extra']), ['a', 'b'])
    const plain = await get(`${base}/plain/r`)
    assert.equal(plain.headers.server, 'echo-server', 'a route without the rule is untouched')
  })

  it('replacePrefix and host: the new prefix, the query kept, the Host of the rule', async () => {
    const seen = JSON.parse((await get(`${base}/v1/items/7?sort=asc`)).text) as Seen
    assert.equal(seen.url, '/api/v2/items/7?sort=asc')
    assert.equal(seen.headers.host, 'internal.example:8080')
    assert.equal(seen.headers['x-forwarded-host'], `127.0.0.1:${port}`, 'X-Forwarded-Host keeps the client’s')
  })

  it('regex: groups substituted on a matching path, the query kept; other paths unchanged', async () => {
    const hit = JSON.parse((await get(`${base}/users/42/profile?tab=a`)).text) as Seen
    assert.equal(hit.url, '/u/42?tab=a')
    const miss = JSON.parse((await get(`${base}/users/abc/profile`)).text) as Seen
    assert.equal(miss.url, '/users/abc/profile')
  })
})

// --- order of the phases -----------------------------------------------------------------------

describe('rules: order (plugins before built-ins inward, listener before route; reversed outward)', () => {
  let app: Awaited<ReturnType<typeof echoBackend>>
  let lb: LoadBalancer
  let base: string
  const log = memoryLogger('warn')
  const observed: { routePath?: string; responseServer?: string | undefined; responseLevel?: string | undefined } = {}

  const order: Filter = {
    name: 'order',
    onRoute(ctx) {
      if (ctx.request.path.startsWith('/api/order')) {
        observed.routePath = ctx.upstream.path
        ctx.upstream.setHeader('x-tenant', 'plugin')
      }
    },
    onResponse(ctx, response) {
      if (ctx.request.path.startsWith('/api/order')) {
        observed.responseServer = response.header('server')
        observed.responseLevel = response.header('x-level')
      }
    },
  }
  const boom: Filter = {
    name: 'boom',
    onRequest(ctx) {
      if (ctx.request.path === '/api/throw-request') throw new Error('kaput in onRequest')
    },
    onRoute(ctx) {
      if (ctx.request.path === '/api/reject-route') return Promise.reject(new Error('kaput in onRoute'))
    },
    onResponse(ctx) {
      if (ctx.request.path === '/api/throw-response') throw new Error('kaput in onResponse')
    },
  }

  before(async () => {
    app = await echoBackend('app')
    const r = await startLb(
      {
        listeners: [
          {
            name: 'main',
            listen: '127.0.0.1:0',
            headers: { request: { set: { 'x-level': 'listener' } }, response: { set: { 'x-level': 'listener' } } },
            routes: [
              {
                match: { pathPrefix: '/api/' },
                pool: 'app',
                rewrite: { stripPrefix: '/api' },
                headers: {
                  request: { set: { 'x-tenant': 'acme', 'x-level': 'route' } },
                  response: { remove: ['server'], set: { 'x-level': 'route' } },
                },
              },
            ],
          },
        ],
        pools: [{ name: 'app', servers: [app.url] }],
      },
      [order, boom],
      log.logger,
    )
    lb = r.lb
    base = r.url()
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 500 })
    await app.close()
  })

  it('inward: the plugin sees the path before the rewrite, and the built-in header rule overrides it', async () => {
    const res = await get(`${base}/api/order/x`)
    const seen = JSON.parse(res.text) as Seen
    assert.equal(observed.routePath, '/api/order/x')
    assert.equal(seen.url, '/order/x')
    assert.equal(seen.headers['x-tenant'], 'acme')
    assert.equal(seen.headers['x-level'], 'route', 'the route’s rules run after the listener’s')
  })

  it('outward: the route’s rules, then the listener’s, then the plugin', async () => {
    const res = await get(`${base}/api/order/y`)
    assert.equal(res.headers['x-level'], 'listener', 'the listener’s response rule runs after the route’s')
    assert.equal(observed.responseServer, undefined, 'the plugin sees the header the route removed')
    assert.equal(observed.responseLevel, 'listener')
  })

  for (const [path, phase] of [
    ['/api/throw-request', 'onRequest'],
    ['/api/reject-route', 'onRoute'],
    ['/api/throw-response', 'onResponse'],
  ] as const)
    it(`a filter that fails in ${phase} → 500 SWY_FILTER_ERROR, named in the access log`, async () => {
      const before = app.seen.length
      const res = await get(`${base}${path}`)
      assert.equal(res.status, 500)
      const body = JSON.parse(res.text) as { error: { code: string; requestId: string } }
      assert.equal(body.error.code, 'SWY_FILTER_ERROR')
      if (phase !== 'onResponse') assert.equal(app.seen.length, before, 'nothing was sent upstream')
      await until(
        () => log.lines.some((l) => l.type === 'access' && l.requestId === body.error.requestId),
        'the access log line',
      )
      const line = log.lines.find((l) => l.type === 'access' && l.requestId === body.error.requestId)!
      assert.equal(line.status, 500)
      assert.equal(line.code, 'SWY_FILTER_ERROR')
      assert.equal(line.error, `filter boom failed: kaput in ${phase}`)
      assert.equal(line.url, path)
    })
})

// --- redirect and respond ----------------------------------------------------------------------

describe('rules: redirect and respond', () => {
  let web: Awaited<ReturnType<typeof echoBackend>>
  let lb: LoadBalancer
  let base: string
  let port: number
  let edge: string
  let edgePort: string

  before(async () => {
    web = await echoBackend('web')
    const r = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            { match: { pathPrefix: '/old/' }, redirect: { prefix: '/new/', status: 301 } },
            { match: { pathPrefix: '/drop/' }, redirect: { path: '/landing', dropQuery: true, status: 308 } },
            { match: { host: 'old.example.com' }, redirect: { host: 'new.example.com', status: 307 } },
            { match: { pathPrefix: '/port/' }, redirect: { port: 8081 } },
            { match: { pathPrefix: '/temp/' }, redirect: {} },
            {
              match: { path: '/robots.txt' },
              respond: { status: 200, headers: { 'content-type': 'text/plain' }, body: 'User-agent: *\nDisallow:\n' },
            },
            { match: { path: '/maintenance' }, respond: { status: 503, body: 'back soon – ünïcode' } },
            { match: { path: '/empty' }, respond: { status: 204 } },
            { pool: 'web' },
          ],
        },
        {
          name: 'edge',
          listen: '127.0.0.1:0',
          redirect: { scheme: 'https', status: 301 },
          routes: [{ pool: 'web' }],
        },
        {
          name: 'edge-port',
          listen: '127.0.0.1:0',
          redirect: { scheme: 'https', port: 8443, status: 308, dropQuery: true },
          routes: [{ pool: 'web' }],
        },
      ],
      pools: [{ name: 'web', servers: [web.url] }],
    })
    lb = r.lb
    base = r.url()
    port = r.port()
    edge = r.url('edge')
    edgePort = r.url('edge-port')
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 500 })
    await web.close()
  })

  it('prefix: the matched pathPrefix replaced, the rest and the query kept; 301 is cacheable', async () => {
    const res = await get(`${base}/old/docs/page?q=1&r=2`)
    assert.equal(res.status, 301)
    assert.equal(res.headers.location, `http://127.0.0.1:${port}/new/docs/page?q=1&r=2`)
    assert.equal(res.headers['cache-control'], 'max-age=3600')
    assert.equal(res.headers['content-length'], '0')
  })

  it('path with dropQuery: the whole path replaced, the query left out (308)', async () => {
    const res = await get(`${base}/drop/anything?secret=1`)
    assert.equal(res.status, 308)
    assert.equal(res.headers.location, `http://127.0.0.1:${port}/landing`)
  })

  it('host: another host, the port of the request dropped (307 keeps the method)', async () => {
    const res = await get(`${base}/p/q?x=1`, { method: 'POST', headers: { host: 'old.example.com:9999' }, body: 'b' })
    assert.equal(res.status, 307)
    assert.equal(res.headers.location, 'http://new.example.com/p/q?x=1')
  })

  it('port: the request’s host on another port; the default status is 302, not cacheable', async () => {
    const res = await get(`${base}/port/x`, { headers: { host: 'shop.example:1234' } })
    assert.equal(res.status, 302)
    assert.equal(res.headers.location, 'http://shop.example:8081/port/x')
    assert.equal(res.headers['cache-control'], 'no-store')
  })

  it('an empty redirect points at the request itself, host and port as sent', async () => {
    const res = await get(`${base}/temp/a?b=c`, { headers: { host: 'shop.example:1234' } })
    assert.equal(res.headers.location, 'http://shop.example:1234/temp/a?b=c')
  })

  it('a redirect that needs the request’s host answers 400 without one (HTTP/1.0) or with a malformed one', async () => {
    const noHost = await rawExchange(port, 'GET /temp/x HTTP/1.0\r\n\r\n', (t) => t.endsWith('this redirect\n'))
    assert.match(noHost, /^HTTP\/1\.1 400 /)
    assert.doesNotMatch(noHost, /location:/i)
    // A malformed Host is refused before any rule runs (RFC 9112 §3.2), as the request path's own 400.
    for (const head of [
      'GET /temp/x HTTP/1.1\r\nHost: user@evil.example\r\n\r\n',
      'GET /temp/x HTTP/1.1\r\nHost: evil.example/path?\r\n\r\n',
    ]) {
      const raw = await rawExchange(port, head, (t) => t.endsWith('}}'))
      assert.match(raw, /^HTTP\/1\.1 400 /, head)
      assert.match(raw, /SWY_BAD_REQUEST/, head)
      assert.doesNotMatch(raw, /location:/i, head)
    }
    const hosted = await rawExchange(port, 'GET /drop/x HTTP/1.0\r\n\r\n', (t) => t.includes('\r\n\r\n'))
    assert.match(hosted, /^HTTP\/1\.1 400 /, 'even a fixed path takes the request’s host')
    const fixed = await get(`${base}/p`, { headers: { host: 'old.example.com' } })
    assert.equal(fixed.headers.location, 'http://new.example.com/p', 'a redirect that names its host needs none')
  })

  it('on a listener (HTTP → HTTPS): every path and method is redirected, none reaches the pool', async () => {
    const before = web.seen.length
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/a/b?c=d&e'],
      ['POST', '/form'],
      ['HEAD', '/x'],
    ] as const) {
      const res = await get(`${edge}${path}`, { method, headers: { host: 'www.example.com:8080' } })
      assert.equal(res.status, 301, `${method} ${path}`)
      assert.equal(res.headers.location, `https://www.example.com${path}`)
    }
    const ported = await get(`${edgePort}/a?b=1`, { headers: { host: 'www.example.com' } })
    assert.equal(ported.status, 308)
    assert.equal(ported.headers.location, 'https://www.example.com:8443/a')
    assert.equal(web.seen.length, before)
  })

  it('on a listener, as curl sees it', async () => {
    const { stdout } = await execFileP(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '-H', 'Host: www.example.com', `${edge}/x?y=1`],
      { timeout: 5000 },
    )
    assert.equal(stdout, '301 https://www.example.com/x?y=1')
  })

  it('respond: status, body, content-type and content-length as configured; no pool asked', async () => {
    const before = web.seen.length
    const res = await get(`${base}/robots.txt`)
    assert.equal(res.status, 200)
    assert.equal(res.text, 'User-agent: *\nDisallow:\n')
    assert.equal(res.headers['content-type'], 'text/plain')
    assert.equal(res.headers['content-length'], String(res.body.length))
    assert.equal(web.seen.length, before)
  })

  it('respond: a body without content-type gets text/plain, its length in bytes', async () => {
    const res = await get(`${base}/maintenance`)
    assert.equal(res.status, 503)
    assert.equal(res.text, 'back soon – ünïcode')
    assert.equal(res.headers['content-type'], 'text/plain; charset=utf-8')
    assert.equal(res.headers['content-length'], String(Buffer.byteLength('back soon – ünïcode')))
    const empty = await get(`${base}/empty`)
    assert.equal(empty.status, 204)
    assert.equal(empty.body.length, 0)
  })

  it('respond: HEAD gets the head (with the GET’s content-length) and no body', async () => {
    // A raw socket, so that a body sent after the head would be seen rather than ignored by a client.
    const raw = await rawExchange(
      port,
      'HEAD /robots.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /robots.txt HTTP/1.1\r\nHost: x\r\n\r\n',
      (text) => text.split('HTTP/1.1 200').length === 3 && text.endsWith('Disallow:\n'),
    )
    const responses = raw.split(/(?=HTTP\/1\.1 200 )/)
    assert.equal(responses.length, 2)
    const [headPart, getPart] = responses as [string, string]
    assert.match(headPart, /content-length: 24\r\n/i)
    assert.ok(headPart.endsWith('\r\n\r\n'), 'the HEAD response ends with its head')
    assert.ok(getPart.endsWith('\r\n\r\nUser-agent: *\nDisallow:\n'))
  })
})

// --- compress ----------------------------------------------------------------------------------

/** A compressible text body of `bytes` bytes (varied enough to be realistic, repetitive enough to shrink). */
function textBody(bytes: number): Buffer {
  let s = ''
  for (let i = 0; s.length < bytes; i++) s += `line ${i}: the quick brown fox ${i % 7} jumps over the lazy dog\n`
  return Buffer.from(s.slice(0, bytes))
}

describe('rules: compress', () => {
  const big = textBody(20_000)
  const small = textBody(200)
  const preGzipped = zlib.gzipSync(big)
  let origin: TestBackend
  let lb: LoadBalancer
  let base: string
  /** Per stream id: released by the test to let the upstream send the rest. */
  const gates = new Map<string, Deferred>()
  const ended = new Set<string>()

  before(async () => {
    origin = await startBackend('origin', (req, res) => {
      req.resume()
      const url = new URL(req.url ?? '/', 'http://x')
      switch (url.pathname) {
        case '/big':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': big.length, etag: '"v1"' })
          return res.end(big)
        case '/vary':
          res.writeHead(200, { 'content-type': 'application/json', vary: 'Origin' })
          return res.end(big)
        case '/small':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': small.length })
          return res.end(small)
        case '/encoded':
          res.writeHead(200, {
            'content-type': 'text/plain',
            'content-encoding': 'gzip',
            'content-length': preGzipped.length,
          })
          return res.end(preGzipped)
        case '/no-transform':
          res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, no-transform' })
          return res.end(big)
        case '/image':
          res.writeHead(200, { 'content-type': 'image/png', 'content-length': big.length })
          return res.end(big)
        case '/range':
          res.writeHead(206, {
            'content-type': 'text/plain',
            'content-range': `bytes 0-9999/${big.length}`,
            'content-length': 10_000,
          })
          return res.end(big.subarray(0, 10_000))
        case '/stream': {
          const id = url.searchParams.get('id') ?? ''
          res.writeHead(200, { 'content-type': 'text/event-stream' })
          res.write(`data: first ${'x'.repeat(2000)}\n\n`)
          const gate = gates.get(id)
          void gate?.promise.then(() => {
            res.end(`data: second ${'y'.repeat(2000)}\n\n`, () => ended.add(id))
          })
          return
        }
        default:
          res.writeHead(404)
          res.end()
      }
    })
    const r = await startLb({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'origin', compress: true }] }],
      pools: [{ name: 'origin', servers: [origin.url] }],
    })
    lb = r.lb
    base = r.url()
  })
  after(async () => {
    for (const g of gates.values()) g.resolve()
    await lb.close({ gracePeriodMs: 500 })
    await origin.close()
  })

  const decoders = {
    gzip: (b: Buffer) => zlib.gunzipSync(b),
    br: (b: Buffer) => zlib.brotliDecompressSync(b),
  }

  for (const [encoding, decode] of Object.entries(decoders))
    it(`${encoding}: the body decompresses to the original; Vary, no Content-Length, a weak ETag`, async () => {
      const res = await get(`${base}/big`, { headers: { 'accept-encoding': encoding } })
      assert.equal(res.status, 200)
      assert.equal(res.headers['content-encoding'], encoding)
      assert.equal(res.headers['content-length'], undefined)
      assert.equal(res.headers.vary, 'Accept-Encoding')
      assert.equal(res.headers.etag, 'W/"v1"')
      assert.ok(res.body.length < big.length / 3, `compressed: ${res.body.length} of ${big.length} bytes`)
      assert.deepEqual(decode(res.body), big)
    })

  it('zstd where this Node has it', { skip: !('zstdDecompressSync' in zlib) && 'no zstd in this Node' }, async () => {
    const res = await get(`${base}/big`, { headers: { 'accept-encoding': 'zstd' } })
    assert.equal(res.headers['content-encoding'], 'zstd')
    const decode = (zlib as unknown as { zstdDecompressSync(b: Buffer): Buffer }).zstdDecompressSync
    assert.deepEqual(decode(res.body), big)
  })

  it('the coding follows Accept-Encoding q-values; q=0 forbids; none acceptable → identity with Vary', async () => {
    const enc = async (ae: string) => (await get(`${base}/big`, { headers: { 'accept-encoding': ae } })).headers
    assert.equal((await enc('gzip;q=0.5, br;q=0.9'))['content-encoding'], 'br')
    assert.equal((await enc('br;q=0.2, gzip;q=0.8'))['content-encoding'], 'gzip')
    assert.equal((await enc('br;q=0, gzip'))['content-encoding'], 'gzip')
    const none = await get(`${base}/big`, { headers: { 'accept-encoding': 'identity, deflate' } })
    assert.equal(none.headers['content-encoding'], undefined)
    assert.equal(none.headers.vary, 'Accept-Encoding', 'caches must still key on Accept-Encoding')
    assert.deepEqual(none.body, big)
    const absent = await get(`${base}/big`)
    assert.equal(absent.headers['content-encoding'], undefined)
    assert.equal(absent.headers['content-length'], String(big.length))
  })

  it('an upstream Vary is kept, Accept-Encoding added to it', async () => {
    const res = await get(`${base}/vary`, { headers: { 'accept-encoding': 'gzip' } })
    assert.equal(res.headers['content-encoding'], 'gzip')
    assert.deepEqual(headerList(res.headers.vary), ['Origin', 'Accept-Encoding'])
    assert.deepEqual(zlib.gunzipSync(res.body), big)
  })

  for (const [path, why] of [
    ['/small', 'a body below minSize'],
    ['/encoded', 'a body already encoded'],
    ['/no-transform', 'Cache-Control: no-transform'],
    ['/image', 'a type that is not compressible'],
    ['/range', 'a 206 partial response'],
  ] as const)
    it(`not compressed: ${why}`, async () => {
      const res = await get(`${base}${path}`, { headers: { 'accept-encoding': 'gzip, br' } })
      switch (path) {
        case '/encoded':
          assert.equal(res.headers['content-encoding'], 'gzip', 'the upstream’s coding, once')
          assert.deepEqual(res.body, preGzipped)
          return
        case '/range':
          assert.equal(res.status, 206)
          assert.equal(res.headers['content-encoding'], undefined)
          assert.equal(res.headers['content-range'], `bytes 0-9999/${big.length}`)
          assert.deepEqual(res.body, big.subarray(0, 10_000))
          return
        default:
          assert.equal(res.headers['content-encoding'], undefined)
          assert.deepEqual(res.body, path === '/small' ? small : big)
      }
    })

  for (const encoding of ['gzip', 'br'] as const)
    it(`${encoding}: a streamed response arrives compressed chunk by chunk, before the upstream ends`, async () => {
      const id = `${encoding}-${Math.random()}`
      const gate = deferred()
      gates.set(id, gate)
      const res = await within(
        request(`${base}/stream?id=${id}`, { headers: { 'accept-encoding': encoding } }),
        3000,
        'the response head',
      )
      assert.equal(res.headers['content-encoding'], encoding)
      const decoder = encoding === 'gzip' ? zlib.createGunzip() : zlib.createBrotliDecompress()
      const out: Buffer[] = []
      const first = deferred()
      decoder.on('data', (c: Buffer) => {
        out.push(c)
        first.resolve()
      })
      const done = new Promise<void>((resolve, reject) => {
        decoder.on('end', resolve)
        decoder.on('error', reject)
      })
      res.body.pipe(decoder)
      // The upstream holds its second chunk until the first one was decompressed here: a compressor
      // that buffered the body would never let this resolve.
      await within(first.promise, 3000, 'the first decompressed bytes')
      assert.equal(ended.has(id), false, 'the upstream has not finished')
      assert.match(Buffer.concat(out).toString(), /^data: first x+\n\n$/)
      gate.resolve()
      await within(done, 3000, 'the end of the body')
      assert.ok(ended.has(id))
      assert.equal(
        Buffer.concat(out).toString(),
        `data: first ${'x'.repeat(2000)}\n\ndata: second ${'y'.repeat(2000)}\n\n`,
      )
    })
})

// --- pools (traffic splitting) -----------------------------------------------------------------

describe('rules: pools (traffic splitting)', () => {
  const names = ['stable', 'canary', 'blue', 'green', 'ipa', 'ipb'] as const
  const backends = new Map<string, Awaited<ReturnType<typeof echoBackend>>>()
  let lb: LoadBalancer
  let base: string
  let port: number
  const agent = new Agent({ connections: 32 })
  const secret = 'a test secret that is long enough'

  before(async () => {
    for (const n of names) backends.set(n, await echoBackend(n))
    const pool = (name: string, extra: Record<string, unknown> = {}) => ({
      name,
      servers: [backends.get(name)!.url],
      ...extra,
    })
    const r = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            {
              match: { pathPrefix: '/sticky/' },
              pools: [
                { pool: 'blue', weight: 50 },
                { pool: 'green', weight: 50 },
              ],
            },
            {
              match: { pathPrefix: '/ip/' },
              pools: [
                { pool: 'ipa', weight: 50 },
                { pool: 'ipb', weight: 50 },
              ],
            },
            {
              pools: [
                { pool: 'stable', weight: 80 },
                { pool: 'canary', weight: 20 },
              ],
            },
          ],
        },
      ],
      pools: [
        pool('stable'),
        pool('canary'),
        pool('blue', { sticky: { mode: 'cookie', secret } }),
        pool('green', { sticky: { mode: 'cookie', secret } }),
        pool('ipa', { sticky: { mode: 'client-ip' } }),
        pool('ipb', { sticky: { mode: 'client-ip' } }),
      ],
    })
    lb = r.lb
    base = r.url()
    port = r.port()
  })
  after(async () => {
    await agent.close()
    await lb.close({ gracePeriodMs: 500 })
    for (const b of backends.values()) await b.close()
  })

  it('weights 80/20: 1,000 requests split within ±5 points', async () => {
    const counts = new Map<string, number>()
    await inParallel(1000, 32, async () => {
      const res = await request(`${base}/split`, { dispatcher: agent })
      assert.equal(res.statusCode, 200)
      const side = res.headers['x-backend'] as string
      await res.body.dump()
      counts.set(side, (counts.get(side) ?? 0) + 1)
    })
    assert.deepEqual([...counts.keys()].sort(), ['canary', 'stable'])
    const stable = (counts.get('stable') ?? 0) / 1000
    // Binomial, n = 1000, p = 0.8: one standard deviation is 1.26 points; 5 points is 4 of them.
    assert.ok(Math.abs(stable - 0.8) <= 0.05, `stable got ${(stable * 100).toFixed(1)}%`)
  })

  it('sticky cookie on the pools: a client that got a cookie stays on its side for 50 requests', async () => {
    // New clients (no cookie) until two have landed on each side: 50/50 draws, so at most 40 of them.
    const clients: { side: string; cookie: string }[] = []
    for (let i = 0; i < 40 && ['blue', 'green'].some((s) => clients.filter((c) => c.side === s).length < 2); i++) {
      const first = await request(`${base}/sticky/new`, { dispatcher: agent })
      await first.body.dump()
      const cookie = headerList(first.headers['set-cookie'])
        .find((c) => c.startsWith('SWYSID='))
        ?.split(';')[0]
      assert.ok(cookie, 'the first response sets the cookie')
      const side = first.headers['x-backend'] as string
      if (clients.filter((c) => c.side === side).length < 2) clients.push({ side, cookie })
    }
    assert.deepEqual(clients.map((c) => c.side).sort(), ['blue', 'blue', 'green', 'green'])
    await Promise.all(
      clients.map(async ({ side, cookie }) => {
        for (let i = 0; i < 50; i++) {
          const res = await request(`${base}/sticky/${i}`, { dispatcher: agent, headers: { cookie } })
          await res.body.dump()
          assert.equal(res.headers['x-backend'], side, `request ${i} of a client bound to ${side}`)
        }
      }),
    )
  })

  it('sticky client-ip on the pools: each client address stays on one side', async (t) => {
    // Connect from other loopback addresses (127.0.0.0/8 is all loopback on Linux; not on every OS).
    const bindable = await new Promise<boolean>((resolve) => {
      const s = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' })
      s.once('connect', () => {
        s.destroy()
        resolve(true)
      })
      s.once('error', () => resolve(false))
    })
    if (!bindable) return t.skip('cannot bind 127.0.0.2 as a local address on this machine')
    const sides = new Map<string, string>()
    for (let i = 2; i < 22; i++) {
      const address = `127.0.0.${i}`
      const from = new Agent({ localAddress: address })
      try {
        for (let j = 0; j < 10; j++) {
          const res = await request(`${base}/ip/${j}`, { dispatcher: from })
          const seen = JSON.parse(await res.body.text()) as Seen
          assert.equal(seen.headers['x-forwarded-for'], address, 'the request came from that address')
          const side = sides.get(address) ?? seen.backend
          sides.set(address, side)
          assert.equal(seen.backend, side, `${address}, request ${j}`)
        }
      } finally {
        await from.close()
      }
    }
    assert.deepEqual([...new Set(sides.values())].sort(), ['ipa', 'ipb'], 'the addresses spread over both sides')
  })
})

// --- mirror ------------------------------------------------------------------------------------

describe('rules: mirror', () => {
  let app: Awaited<ReturnType<typeof echoBackend>>
  let shadow: Awaited<ReturnType<typeof echoBackend>>
  let capShadow: Awaited<ReturnType<typeof echoBackend>>
  let halfShadow: Awaited<ReturnType<typeof echoBackend>>
  let holder: TestBackend
  /** Responses the holding mirror keeps waiting, released at the end. */
  const held: (() => void)[] = []
  let lb: LoadBalancer
  let base: string
  const agent = new Agent({ connections: 16 })

  before(async () => {
    app = await echoBackend('app')
    shadow = await echoBackend('shadow')
    capShadow = await echoBackend('cap')
    halfShadow = await echoBackend('half')
    holder = await startBackend('holder', (req, res) => {
      req.resume()
      held.push(() => res.end('late'))
    })
    const dead = `http://127.0.0.1:${await deadPort()}`
    type Mirror = { pool: string; percent?: number; maxInFlight?: number; maxBodyBytes?: number }
    const route = (prefix: string, mirror: Mirror, extra: { rewrite?: { stripPrefix: string } } = {}) => ({
      match: { pathPrefix: prefix },
      pool: 'app',
      mirror,
      ...extra,
    })
    const r = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            route('/m/', { pool: 'mirror-shadow' }, { rewrite: { stripPrefix: '/m' } }),
            route('/hold/', { pool: 'mirror-hold', maxInFlight: 2 }),
            route('/dead/', { pool: 'mirror-dead' }),
            route('/cap/', { pool: 'mirror-cap', maxBodyBytes: 16 }),
            route('/half/', { pool: 'mirror-half', percent: 50 }),
            { pool: 'app' },
          ],
        },
      ],
      pools: [
        { name: 'app', servers: [app.url] },
        { name: 'mirror-shadow', servers: [shadow.url] },
        { name: 'mirror-hold', servers: [holder.url] },
        { name: 'mirror-dead', servers: [dead] },
        { name: 'mirror-cap', servers: [capShadow.url] },
        { name: 'mirror-half', servers: [halfShadow.url] },
      ],
    })
    lb = r.lb
    base = r.url()
  })
  after(async () => {
    for (const release of held) release()
    await agent.close()
    await lb.close({ gracePeriodMs: 500 })
    for (const b of [app, shadow, capShadow, halfShadow, holder]) await b.close()
  })

  it('the shadow pool receives copies with the method, path (as rewritten), headers and body sent upstream', async () => {
    const res = await get(`${base}/m/orders?id=3`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"order":3}',
    })
    assert.equal(res.status, 200)
    assert.equal(res.headers['x-backend'], 'app', 'the client gets the primary’s answer')
    await until(() => shadow.seen.length === 1, 'the copy')
    const [primary, copy] = [app.seen.at(-1)!, shadow.seen[0]!]
    assert.equal(copy.method, 'POST')
    assert.equal(copy.url, '/orders?id=3')
    assert.equal(copy.url, primary.url)
    assert.equal(copy.body, '{"order":3}')
    assert.equal(copy.headers['content-type'], 'application/json')
    assert.equal(copy.headers['x-request-id'], primary.headers['x-request-id'])
    assert.equal(copy.headers['x-forwarded-for'], '127.0.0.1')
    await get(`${base}/m/ping`)
    await until(() => shadow.seen.length === 2, 'the second copy')
    assert.equal(shadow.seen[1]!.method, 'GET')
    assert.equal(shadow.seen[1]!.url, '/ping')
  })

  it('a mirror that never answers: responses arrive while it holds its copies; at most maxInFlight (2) copies', async () => {
    for (let i = 0; i < 6; i++) {
      const res = await get(`${base}/hold/${i}`, { dispatcher: agent })
      assert.equal(res.status, 200)
      assert.equal(JSON.parse(res.text).url, `/hold/${i}`)
    }
    await until(() => holder.requests.length >= 2, 'two held copies')
    // The two copies are held (unanswered), and requests still go through at once.
    const res = await get(`${base}/hold/7`, { dispatcher: agent })
    assert.equal(res.status, 200)
    assert.deepEqual(mirrorStats('mirror-hold'), { inFlight: 2, skipped: 5 })
    const scraped = (await lb.metricsText()).body
    assert.match(scraped, /switchyard_mirror_requests_total\{pool="mirror-hold",outcome="sent"\} 2\n/)
    assert.match(scraped, /switchyard_mirror_requests_total\{pool="mirror-hold",outcome="skipped"\} 5\n/)
    // Once the held copies are answered nothing is in flight, and no further copy was ever sent.
    for (const release of held.splice(0)) release()
    await until(() => mirrorStats('mirror-hold').inFlight === 0, 'the held copies to end')
    assert.equal(holder.requests.length, 2)
    assert.deepEqual(
      holder.requests.map((r) => r.url),
      ['/hold/0', '/hold/1'],
    )
  })

  it('a mirror that refuses connections changes nothing for the client', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await get(`${base}/dead/${i}`, { dispatcher: agent, method: 'POST', body: `body ${i}` })
      assert.equal(res.status, 200)
      const seen = JSON.parse(res.text) as Seen
      assert.equal(seen.url, `/dead/${i}`)
      assert.equal(seen.body, `body ${i}`)
      assert.equal(res.headers['x-backend'], 'app')
    }
    await until(() => mirrorStats('mirror-dead').inFlight === 0, 'the failed copies to end')
  })

  it('bodies are copied only when read whole and at most maxBodyBytes', async () => {
    const small = await get(`${base}/cap/small`, { method: 'PUT', body: '0123456789' })
    const large = await get(`${base}/cap/large`, { method: 'PUT', body: 'x'.repeat(100) })
    const streamed = await get(`${base}/cap/streamed`, { method: 'PUT', body: Readable.from([Buffer.from('abc')]) })
    for (const r of [small, large, streamed]) assert.equal(r.status, 200)
    assert.equal((JSON.parse(streamed.text) as Seen).body, 'abc', 'the primary gets the streamed body')
    assert.equal((JSON.parse(large.text) as Seen).body, 'x'.repeat(100))
    // Copies start before the client's response, so once none is in flight every copy has arrived.
    await until(() => mirrorStats('mirror-cap').inFlight === 0, 'the copies to end')
    assert.deepEqual(
      capShadow.seen.map((s) => [s.method, s.url, s.body]),
      [['PUT', '/cap/small', '0123456789']],
    )
  })

  it('percent: about half of 200 requests are copied', async () => {
    await inParallel(200, 16, async (i) => {
      const res = await request(`${base}/half/${i}`, { dispatcher: agent })
      assert.equal(res.statusCode, 200)
      await res.body.dump()
    })
    await until(() => mirrorStats('mirror-half').inFlight === 0, 'the copies to end')
    const n = halfShadow.seen.length
    // Binomial, n = 200, p = 0.5: one standard deviation is 7 requests; 35 is 5 of them.
    assert.ok(n >= 65 && n <= 135, `${n} of 200 copied`)
  })
})
