/** HTTP/1.1 proxy behaviour end to end: headers, bodies, methods, trailers, Expect, routing, bad input. */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { curlExpectContinue } from './helpers/cli.js'
import { type RunningLb, startLb } from './helpers/lb.js'
import { rawExchange } from './helpers/raw.js'

/** A backend that answers according to the path, and echoes what it received. */
function echoBackend(name: string): Promise<TestBackend> {
  return startBackend(name, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const url = new URL(req.url ?? '/', 'http://x')
      switch (url.pathname) {
        case '/cookies':
          res.setHeader('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly', 'c=3'])
          return res.end('ok')
        case '/hop':
          res.setHeader('Connection', 'keep-alive, X-Internal')
          res.setHeader('X-Internal', 'secret')
          res.setHeader('Keep-Alive', 'timeout=5')
          res.setHeader('Proxy-Authenticate', 'Basic')
          return res.end('ok')
        case '/chunked':
          res.writeHead(200, { 'content-type': 'text/plain' })
          for (let i = 0; i < 10; i++) res.write(`part-${i};`)
          return res.end()
        case '/trailers':
          res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' })
          res.write('body')
          res.addTrailers({ 'x-checksum': 'abc123' })
          return res.end()
        case '/head':
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1234' })
          return res.end(req.method === 'HEAD' ? undefined : 'x'.repeat(1234))
        case '/204':
          res.writeHead(204, { 'x-kind': 'no-content' })
          return res.end()
        case '/304':
          res.writeHead(304, { etag: '"v1"' })
          return res.end()
        default:
          return sendJson(
            res,
            name,
            JSON.stringify({
              backend: name,
              method: req.method,
              url: req.url,
              rawHeaders: req.rawHeaders,
              bodyLength: body.length,
              bodySha: createHash('sha256').update(body).digest('hex'),
              transferEncoding: req.headers['transfer-encoding'] ?? null,
              contentLength: req.headers['content-length'] ?? null,
            }),
          )
      }
    })
  })
}

function sendJson(res: import('node:http').ServerResponse, name: string, body: string): void {
  res.writeHead(200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-backend': name,
  })
  res.end(body)
}

interface Echo {
  backend: string
  method: string
  url: string
  rawHeaders: string[]
  bodyLength: number
  bodySha: string
  transferEncoding: string | null
  contentLength: string | null
}

function headerMap(raw: string[]): Map<string, string[]> {
  const m = new Map<string, string[]>()
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase()
    m.set(k, [...(m.get(k) ?? []), raw[i + 1]!])
  }
  return m
}

/** Sends one request with node:http (exact headers), returns status, headers, body and trailers. */
function send(
  port: number,
  opts: { method?: string; path?: string; headers?: Record<string, string | string[]>; body?: Buffer | string },
) {
  return new Promise<{
    status: number
    headers: Record<string, unknown>
    raw: string[]
    body: string
    trailers: Record<string, string>
  }>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: opts.headers ?? {} },
      (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            raw: res.rawHeaders,
            body,
            trailers: res.trailers as Record<string, string>,
          }),
        )
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(opts.body)
  })
}

describe('HTTP/1.1 proxying', () => {
  let web: TestBackend
  let api: TestBackend
  let lb: RunningLb
  before(async () => {
    web = await echoBackend('web')
    api = await echoBackend('api')
    lb = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            { match: { host: 'api.test', pathPrefix: '/v1/' }, pool: 'api' },
            { match: { host: '*.api.test' }, pool: 'api' },
            { match: { method: 'DELETE' }, pool: 'api' },
            { match: { headers: { 'x-pool': 'api' } }, pool: 'api' },
            { match: { pathPrefix: '/rewrite-host/' }, pool: 'api-upstream-host' },
            { match: { pathPrefix: '/' }, pool: 'web' },
          ],
        },
      ],
      pools: [
        { name: 'web', servers: [web.url] },
        { name: 'api', servers: [api.url] },
        { name: 'api-upstream-host', preserveHost: false, servers: [api.url] },
      ],
    })
  })
  after(async () => {
    await lb.close()
    await web.close()
    await api.close()
  })

  it('removes hop-by-hop request headers and those named in Connection, keeps end-to-end ones', async () => {
    const res = await send(lb.port, {
      headers: {
        Connection: 'keep-alive, X-Drop-Me',
        'X-Drop-Me': 'gone',
        'Keep-Alive': 'timeout=10',
        TE: 'trailers',
        'Proxy-Authorization': 'Basic Zm9vOmJhcg==',
        'Proxy-Connection': 'keep-alive',
        'X-Keep-Me': 'kept',
        Cookie: 'session=1',
      },
    })
    const h = headerMap((JSON.parse(res.body) as Echo).rawHeaders)
    for (const gone of [
      'x-drop-me',
      'keep-alive',
      'te',
      'proxy-authorization',
      'proxy-connection',
      'upgrade',
      'trailer',
    ])
      assert.equal(h.has(gone), false, `${gone} must not reach the upstream`)
    assert.deepEqual(h.get('x-keep-me'), ['kept'])
    assert.deepEqual(h.get('cookie'), ['session=1'])
  })

  it('removes hop-by-hop response headers and keeps every Set-Cookie', async () => {
    const hop = await send(lb.port, { path: '/hop' })
    assert.equal(hop.headers['x-internal'], undefined)
    assert.equal(hop.headers['proxy-authenticate'], undefined)
    assert.notEqual(hop.headers['keep-alive'], 'timeout=5', 'the upstream Keep-Alive value is not relayed')
    const cookies = await fetch(`${lb.url}/cookies`)
    assert.deepEqual(cookies.headers.getSetCookie(), ['a=1; Path=/', 'b=2; HttpOnly', 'c=3'])
  })

  it('adds X-Forwarded-For/-Proto/-Host and Forwarded, replacing spoofed values from an untrusted client', async () => {
    const res = await send(lb.port, {
      headers: {
        Host: 'shop.test:8443',
        'X-Forwarded-For': '6.6.6.6',
        Forwarded: 'for=6.6.6.6',
        'X-Forwarded-Proto': 'https',
      },
    })
    const h = headerMap((JSON.parse(res.body) as Echo).rawHeaders)
    assert.deepEqual(h.get('x-forwarded-for'), ['127.0.0.1'])
    assert.deepEqual(h.get('x-forwarded-proto'), ['http'])
    assert.deepEqual(h.get('x-forwarded-host'), ['shop.test:8443'])
    assert.deepEqual(h.get('forwarded'), ['for=127.0.0.1;proto=http;host="shop.test:8443"'])
    assert.deepEqual(h.get('host'), ['shop.test:8443'], 'Host is preserved by default')
  })

  it('sends the server address as Host when preserveHost is false', async () => {
    const res = await send(lb.port, { path: '/rewrite-host/x', headers: { Host: 'shop.test' } })
    const h = headerMap((JSON.parse(res.body) as Echo).rawHeaders)
    assert.deepEqual(h.get('host'), [`127.0.0.1:${api.port}`])
    assert.deepEqual(h.get('x-forwarded-host'), ['shop.test'], 'the original host still travels in X-Forwarded-Host')
  })

  it('generates a request id, passes it upstream and echoes it; keeps a valid incoming one', async () => {
    const res = await send(lb.port, {})
    const id = res.headers['x-request-id']
    assert.match(String(id), /^[0-9a-f-]{36}$/)
    assert.deepEqual(headerMap((JSON.parse(res.body) as Echo).rawHeaders).get('x-request-id'), [id])
    const mine = await send(lb.port, { headers: { 'X-Request-Id': 'trace-abc-123' } })
    assert.equal(mine.headers['x-request-id'], 'trace-abc-123')
    assert.deepEqual(headerMap((JSON.parse(mine.body) as Echo).rawHeaders).get('x-request-id'), ['trace-abc-123'])
    const bad = await send(lb.port, { headers: { 'X-Request-Id': 'has spaces in it' } })
    assert.match(String(bad.headers['x-request-id']), /^[0-9a-f-]{36}$/, 'a malformed incoming id is replaced')
  })

  it('streams a content-length upload and a chunked upload intact', async () => {
    const payload = randomBytes(3 * 1024 * 1024 + 17)
    const sha = createHash('sha256').update(payload).digest('hex')
    const cl = JSON.parse((await send(lb.port, { method: 'POST', body: payload })).body) as Echo
    assert.deepEqual(
      [cl.bodyLength, cl.bodySha, cl.contentLength, cl.transferEncoding],
      [payload.length, sha, String(payload.length), null],
    )

    const parts = [payload.subarray(0, 1000), payload.subarray(1000)]
    const chunked = await fetch(`${lb.url}/upload`, {
      method: 'PUT',
      body: new ReadableStream({
        start(c) {
          for (const p of parts) c.enqueue(p)
          c.close()
        },
      }),
      duplex: 'half',
    } as RequestInit)
    const echo = (await chunked.json()) as Echo
    assert.deepEqual(
      [echo.method, echo.bodyLength, echo.bodySha, echo.transferEncoding],
      ['PUT', payload.length, sha, 'chunked'],
    )
  })

  it('relays chunked downloads, HEAD, 204 and 304 correctly', async () => {
    assert.equal(
      (await send(lb.port, { path: '/chunked' })).body,
      Array.from({ length: 10 }, (_, i) => `part-${i};`).join(''),
    )
    const head = await send(lb.port, { method: 'HEAD', path: '/head' })
    assert.deepEqual([head.status, head.headers['content-length'], head.body], [200, '1234', ''])
    const nc = await send(lb.port, { path: '/204' })
    assert.deepEqual([nc.status, nc.headers['x-kind'], nc.body], [204, 'no-content', ''])
    const nm = await send(lb.port, { path: '/304', headers: { 'If-None-Match': '"v1"' } })
    assert.deepEqual([nm.status, nm.headers.etag, nm.body], [304, '"v1"', ''])
    // The connection is still usable after bodiless responses: a raw keep-alive sequence of three.
    const { data } = await rawExchange(
      lb.port,
      'HEAD /head HTTP/1.1\r\nHost: a\r\n\r\nGET /204 HTTP/1.1\r\nHost: a\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
    )
    assert.equal(data.match(/^HTTP\/1\.1 /gm)?.length, 3)
    assert.match(data, /part-9;/)
  })

  it('forwards response trailers', async () => {
    const res = await send(lb.port, { path: '/trailers', headers: { TE: 'trailers' } })
    assert.equal(res.body, 'body')
    assert.equal(res.trailers['x-checksum'], 'abc123')
  })

  it('handles Expect: 100-continue (curl): 100 first, then the body reaches the upstream', async () => {
    const { stdout, stderr } = await curlExpectContinue(`${lb.url}/expect`)
    assert.match(stderr, /< HTTP\/1\.1 100 Continue/)
    const echo = JSON.parse(stdout) as Echo
    assert.equal(echo.bodyLength, 5000)
    assert.equal(headerMap(echo.rawHeaders).has('expect'), false)
  })

  it('answers Expect: 100-continue with the final status, without 100, when the request cannot be served', async () => {
    const noRoute = await startLb({
      listeners: [{ name: 'n', listen: '127.0.0.1:0', routes: [{ match: { pathPrefix: '/only' }, pool: 'web' }] }],
      pools: [{ name: 'web', servers: [web.url] }],
    })
    try {
      const { stdout, stderr } = await curlExpectContinue(`${noRoute.url}/else`)
      assert.doesNotMatch(stderr, /100 Continue/)
      assert.match(stderr, /< HTTP\/1\.1 404/)
      assert.equal((JSON.parse(stdout) as { error: { code: string } }).error.code, 'SWY_NO_ROUTE')
    } finally {
      await noRoute.close()
    }
  })

  it('routes by exact host + path prefix, wildcard host, method and header; first match wins', async () => {
    const who = async (opts: Parameters<typeof send>[1]) =>
      (JSON.parse((await send(lb.port, opts)).body) as Echo).backend
    assert.equal(await who({ path: '/v1/users', headers: { Host: 'api.test' } }), 'api')
    assert.equal(await who({ path: '/v2/users', headers: { Host: 'api.test' } }), 'web')
    assert.equal(await who({ path: '/', headers: { Host: 'eu.api.test:8080' } }), 'api')
    assert.equal(await who({ method: 'DELETE', path: '/thing' }), 'api')
    assert.equal(await who({ path: '/thing', headers: { 'X-Pool': 'api' } }), 'api')
    assert.equal(await who({ path: '/thing' }), 'web')
  })

  it('accepts absolute-form request targets and forwards origin-form', async () => {
    const { data } = await rawExchange(
      lb.port,
      'GET http://api.test/v1/abs?q=1 HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n',
    )
    const body = JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as Echo
    assert.deepEqual([body.backend, body.url], ['api', '/v1/abs?q=1'])
  })

  it("routes and forwards an absolute-form target by its own host, not the Host header's (RFC 9112 §3.2.2)", async () => {
    const { data } = await rawExchange(
      lb.port,
      'GET http://api.test/v1/other HTTP/1.1\r\nHost: web.test\r\nConnection: close\r\n\r\n',
    )
    const body = JSON.parse(data.slice(data.indexOf('\r\n\r\n') + 4)) as Echo
    assert.deepEqual(
      [body.backend, body.url, headerMap(body.rawHeaders).get('host')],
      ['api', '/v1/other', ['api.test']],
    )
    const userinfo = await rawExchange(
      lb.port,
      'GET http://user:pw@api.test/x HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n',
    )
    assert.match(userinfo.data, /^HTTP\/1\.1 400 /)
  })
})

describe('malformed requests', () => {
  let backend: TestBackend
  let lb: RunningLb
  before(async () => {
    backend = await echoBackend('b')
    lb = await startLb({
      listeners: [{ name: 'm', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url] }],
    })
  })
  after(async () => {
    await lb.close()
    await backend.close()
  })

  const cases: [string, string, RegExp][] = [
    ['an invalid header line', 'GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n', /^HTTP\/1\.1 400 /],
    [
      'both Content-Length and Transfer-Encoding (smuggling)',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      /^HTTP\/1\.1 400 /,
    ],
    [
      'two different Content-Length values',
      'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!',
      /^HTTP\/1\.1 400 /,
    ],
    ['an HTTP/1.1 request without Host', 'GET / HTTP/1.1\r\n\r\n', /^HTTP\/1\.1 400 /],
    [
      'a header block over the size limit',
      `GET / HTTP/1.1\r\nHost: a\r\nX-Big: ${'a'.repeat(40_000)}\r\n\r\n`,
      /^HTTP\/1\.1 431 /,
    ],
    [
      'a bad chunk size',
      'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n',
      /^HTTP\/1\.1 400 /,
    ],
    ['an unsupported request target', 'GET ftp://x/ HTTP/1.1\r\nHost: a\r\n\r\n', /^HTTP\/1\.1 400 /],
  ]
  for (const [what, text, expected] of cases) {
    it(`answers ${what} with the right 4xx, closes, and keeps serving`, async () => {
      const { data, closed } = await rawExchange(lb.port, text)
      assert.match(data, expected)
      assert.match(data, expected.source.includes('431') ? /SWY_HEADERS_TOO_LARGE/ : /SWY_BAD_REQUEST/)
      assert.equal(closed, true, 'the connection is closed after a malformed request')
      const ok = await fetch(lb.url)
      assert.equal(ok.status, 200)
    })
  }

  it('keeps the connection after an error response to a bodiless request, and closes it when a body is unread', async () => {
    const only = await startLb({
      listeners: [{ name: 'n', listen: '127.0.0.1:0', routes: [{ match: { pathPrefix: '/ok' }, pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url] }],
    })
    try {
      const pipelined = await rawExchange(
        only.port,
        'GET /nope HTTP/1.1\r\nHost: a\r\n\r\nGET /ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n',
      )
      assert.deepEqual(pipelined.data.match(/HTTP\/1\.1 \d+/g), ['HTTP/1.1 404', 'HTTP/1.1 200'])
      const upload = await rawExchange(
        only.port,
        'POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\npartial',
      )
      assert.match(upload.data, /^HTTP\/1\.1 404 /)
      assert.match(upload.data, /\r\nconnection: close\r\n/i)
      assert.equal(upload.closed, true)
    } finally {
      await only.close()
    }
  })

  it('answers errors as plain text when the client asks for text/plain', async () => {
    const only = await startLb({
      listeners: [{ name: 'n', listen: '127.0.0.1:0', routes: [{ match: { pathPrefix: '/x' }, pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url] }],
    })
    try {
      const res = await fetch(`${only.url}/nope`, { headers: { accept: 'text/plain' } })
      assert.equal(res.status, 404)
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
      assert.match(await res.text(), /^404 SWY_NO_ROUTE: no route matches the request \(request [0-9a-f-]{36}\)\n$/)
    } finally {
      await only.close()
    }
  })
})

describe('slow clients', () => {
  it('a request head not complete within timeouts.requestHeaders gets 408 and is closed', async () => {
    const backend = await echoBackend('b')
    const lb = await startLb({
      listeners: [{ name: 's', listen: '127.0.0.1:0', timeouts: { requestHeaders: '300ms' }, routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backend.url] }],
    })
    try {
      const { data, closed } = await rawExchange(lb.port, 'GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ', 5000)
      assert.match(data, /^HTTP\/1\.1 408 /)
      assert.match(data, /SWY_BAD_REQUEST/)
      assert.equal(closed, true)
    } finally {
      await lb.close()
      await backend.close()
    }
  })
})
