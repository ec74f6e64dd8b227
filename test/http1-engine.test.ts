/**
 * The HTTP/1.1 engines on the client side, end to end: raw sockets on 127.0.0.1 that send exactly
 * what the test says (pipelined requests in one write, HTTP/1.0, partial heads, bad input), real
 * upstream servers, and the listener's own counters. The behaviour tests run on both engines (`node`:
 * node:http; `native`: http1/); the native engine's own promises (one socket write for a head and a
 * small body, precise head and idle timers, backpressure on uploads) run on it alone.
 *
 * Every wait has a deadline; no test asserts a timing except the timer precision bounds (see there).
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import diagnostics from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net'
import { after, before, describe, it, type TestContext } from 'node:test'
import { MAX_PIPELINED } from '../src/http1/connection.js'
import { resetNativeParserCheck } from '../src/http1/parser.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { curlExpectContinue } from './helpers/cli.js'
import { type RunningLb, startLb } from './helpers/lb.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const ENGINES = ['native', 'node'] as const
type EngineName = (typeof ENGINES)[number]

// --- a raw client -----------------------------------------------------------------------------

/** A raw TCP client that collects what the server sends, as latin1 text. */
class Raw {
  readonly socket: Socket
  text = ''
  closed = false
  /** performance.now() when the server's bytes or its close last arrived. */
  lastEventMs = 0
  readonly #closed: Promise<void>

  private constructor(socket: Socket) {
    this.socket = socket
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      this.text += d
      this.lastEventMs = performance.now()
    })
    socket.on('error', () => {})
    this.#closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.closed = true
        this.lastEventMs = performance.now()
        resolve()
      }),
    )
  }

  static open(port: number): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => resolve(new Raw(socket)))
      socket.once('error', reject)
    })
  }

  write(text: string | Buffer): void {
    this.socket.write(text)
  }

  /** Waits until the text received so far satisfies `ok`. */
  until(ok: (text: string) => boolean, what: string, timeoutMs = 5000): Promise<void> {
    return waitFor(() => ok(this.text), `${what} (got ${JSON.stringify(this.text.slice(0, 300))})`, {
      timeoutMs,
      intervalMs: 2,
    })
  }

  /** Waits for `count` complete responses (see `parseResponses`). */
  async responses(count: number, bodiless: readonly boolean[] = [], timeoutMs = 5000): Promise<Res[]> {
    await this.until(
      () => parseResponses(this.text, bodiless, this.closed).length >= count,
      `${count} responses`,
      timeoutMs,
    )
    return parseResponses(this.text, bodiless, this.closed)
  }

  waitClosed(what: string, timeoutMs = 5000): Promise<void> {
    return waitFor(() => this.closed, what, { timeoutMs, intervalMs: 2 })
  }

  destroy(): void {
    this.socket.destroy()
  }

  get done(): Promise<void> {
    return this.#closed
  }
}

interface Res {
  readonly status: number
  readonly head: string
  /** Lower-case name to values. */
  readonly headers: Map<string, string[]>
  readonly body: string
  readonly trailers: Map<string, string[]>
  readonly framing: 'length' | 'chunked' | 'close' | 'none'
}

function headerOf(res: Res, name: string): string | undefined {
  return res.headers.get(name)?.join(', ')
}

/**
 * The complete final responses in `text` (interim 1xx ones are skipped). `bodiless[i]`: the i-th
 * final response has no body whatever it says (a response to HEAD). A close-delimited body counts
 * only once `closed`.
 */
function parseResponses(text: string, bodiless: readonly boolean[], closed: boolean): Res[] {
  const out: Res[] = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const head = text.slice(at, end)
    const lines = head.split('\r\n')
    const status = Number((lines[0] ?? '').split(' ')[1])
    const headers = new Map<string, string[]>()
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).toLowerCase()
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()])
    }
    let pos = end + 4
    if (status < 200) {
      at = pos
      continue
    }
    const trailers = new Map<string, string[]>()
    let body = ''
    let framing: Res['framing']
    const cl = headers.get('content-length')?.[0]
    if (bodiless[out.length] === true || status === 204 || status === 304) framing = 'none'
    else if (headers.get('transfer-encoding')?.[0]?.toLowerCase() === 'chunked') {
      framing = 'chunked'
      let complete = false
      for (;;) {
        const eol = text.indexOf('\r\n', pos)
        if (eol < 0) break
        const size = Number.parseInt(text.slice(pos, eol), 16)
        if (size === 0) {
          const trailerEnd = text.indexOf('\r\n\r\n', eol)
          if (trailerEnd < 0 && text.slice(eol, eol + 4) !== '\r\n\r\n') break
          const section = text.indexOf('\r\n\r\n', eol - 2) === eol ? '' : text.slice(eol + 2, trailerEnd)
          for (const line of section.split('\r\n').filter(Boolean)) {
            const colon = line.indexOf(':')
            trailers.set(line.slice(0, colon).toLowerCase(), [line.slice(colon + 1).trim()])
          }
          pos = (section === '' ? eol : trailerEnd) + 4
          complete = true
          break
        }
        if (text.length < eol + 2 + size + 2) break
        body += text.slice(eol + 2, eol + 2 + size)
        pos = eol + 2 + size + 2
      }
      if (!complete) break
    } else if (cl !== undefined) {
      framing = 'length'
      if (text.length < pos + Number(cl)) break
      body = text.slice(pos, pos + Number(cl))
      pos += Number(cl)
    } else {
      framing = 'close'
      if (!closed) break
      body = text.slice(pos)
      pos = text.length
    }
    out.push({ status, head, headers, body, trailers, framing })
    at = pos
  }
  return out
}

// --- upstreams --------------------------------------------------------------------------------

/**
 * A backend that answers by path:
 * - `/delay/N/...`: after N ms, its path as the body (Content-Length);
 * - `/echo...`: the request body's length and sha-256 (Content-Length);
 * - `/chunks/N`: N parts of 1000 bytes, written 5 ms apart (chunked);
 * - `/head`: Content-Length 1234; `/204`; `/304`;
 * - `/big/N`: N MiB (Content-Length), written as fast as the connection takes it;
 * - `/hold/...`: held until `release()`;
 * - `/slow-read`: reads the body only after `startReading()`, then answers its length;
 * - anything else: its path.
 */
async function testBackend() {
  const held: ServerResponse[] = []
  let closedHeld = 0
  /** The `/big/N` response being written: bytes given to node:http, and whether it waits for `drain`. */
  const big = { written: 0, waiting: false }
  let startReading: () => void = () => {}
  const reading = new Promise<void>((resolve) => {
    startReading = resolve
  })
  const backend: TestBackend = await startBackend('b', (req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/'
    if (path === '/slow-read') {
      void reading.then(() => {
        let n = 0
        req.on('data', (c: Buffer) => {
          n += c.length
        })
        req.on('end', () => res.end(String(n)))
      })
      return
    }
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (path.startsWith('/delay/')) {
        setTimeout(() => res.end(path), Number(path.split('/')[2]))
      } else if (path.startsWith('/echo')) {
        res.end(`${body.length} ${createHash('sha256').update(body).digest('hex')}`)
      } else if (path.startsWith('/chunks/')) {
        res.writeHead(200, { 'content-type': 'text/plain' })
        let left = Number(path.split('/')[2])
        const next = () => {
          if (left-- === 0) return res.end()
          res.write('x'.repeat(1000))
          setTimeout(next, 5)
        }
        next()
      } else if (path === '/head') {
        res.writeHead(200, { 'content-length': '1234' })
        res.end(req.method === 'HEAD' ? undefined : 'h'.repeat(1234))
      } else if (path === '/204') {
        res.writeHead(204, { 'x-kind': 'none' })
        res.end()
      } else if (path === '/304') {
        res.writeHead(304, { etag: '"v1"' })
        res.end()
      } else if (path.startsWith('/big/')) {
        const total = Number(path.split('/')[2]) * 1024 * 1024
        const chunk = Buffer.alloc(64 * 1024, 0x62)
        res.writeHead(200, { 'content-length': String(total) })
        const more = () => {
          big.waiting = false
          while (big.written < total) {
            big.written += chunk.length
            if (!res.write(chunk)) {
              big.waiting = true
              return void res.once('drain', more)
            }
          }
          res.end()
        }
        big.written = 0
        more()
      } else if (path.startsWith('/hold/')) {
        held.push(res)
        res.once('close', () => {
          closedHeld++
          held.splice(held.indexOf(res), 1)
        })
      } else res.end(path)
    })
  })
  return {
    backend,
    /** Requests held now (not answered, not aborted). */
    held: () => held.length,
    /** Held responses closed (answered or aborted). */
    closedHeld: () => closedHeld,
    release(): void {
      for (const res of [...held]) res.end('released')
    },
    startReading: () => startReading(),
    big,
  }
}

/**
 * A raw upstream that answers every request with a close-delimited body (no Content-Length, no
 * chunking: the body ends when it closes), in two parts.
 */
async function closeDelimitedUpstream(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = createNetServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => {})
    let seen = ''
    socket.on('data', (d: Buffer) => {
      seen += d.toString('latin1')
      if (!seen.includes('\r\n\r\n')) return
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one, ')
      setTimeout(() => socket.end('part two'), 20)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}

function lbConfig(engine: EngineName, servers: string[], listener: Record<string, unknown> = {}): ConfigInput {
  return {
    listeners: [{ name: 'main', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }], ...listener }],
    pools: [{ name: 'p', servers }],
  } as ConfigInput
}

function inFlight(lb: RunningLb): number {
  return lb.lb.status().listeners[0]?.inFlight ?? Number.NaN
}

const get = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: a\r\n${extra}\r\n`

// --- the behaviour, on both engines -----------------------------------------------------------

for (const engine of ENGINES) {
  describe(`HTTP/1.1 client side, engine ${engine}`, () => {
    let up: Awaited<ReturnType<typeof testBackend>>
    let lb: RunningLb

    before(async () => {
      up = await testBackend()
      lb = await startLb(lbConfig(engine, [up.backend.url]))
    })
    after(async () => {
      up.release()
      await lb.close()
      await up.backend.close()
    })

    it('answers three requests pipelined in one write in order, whatever order the upstream answers in', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(get('/delay/150/a') + get('/delay/60/b') + get('/delay/0/c', 'Connection: close\r\n'))
      const res = await raw.responses(3)
      assert.deepEqual(
        res.map((r) => [r.status, r.body]),
        [
          [200, '/delay/150/a'],
          [200, '/delay/60/b'],
          [200, '/delay/0/c'],
        ],
      )
      assert.equal(headerOf(res[2] as Res, 'connection'), 'close')
      await raw.waitClosed('the close after the last response')
    })

    it('answers pipelined POSTs with Content-Length and chunked bodies in order, bodies intact', async () => {
      const bodies = [randomBytes(3000), randomBytes(70_000), Buffer.from('tiny')]
      const sha = (b: Buffer) => `${b.length} ${createHash('sha256').update(b).digest('hex')}`
      const chunked = (b: Buffer) =>
        Buffer.concat([
          Buffer.from(`${(b.length - 10).toString(16)}\r\n`),
          b.subarray(0, b.length - 10),
          Buffer.from('\r\na\r\n'),
          b.subarray(b.length - 10),
          Buffer.from('\r\n0\r\n\r\n'),
        ])
      const raw = await Raw.open(lb.port)
      raw.write(
        Buffer.concat([
          Buffer.from(`POST /echo/1 HTTP/1.1\r\nHost: a\r\nContent-Length: ${bodies[0]?.length}\r\n\r\n`),
          bodies[0] as Buffer,
          Buffer.from('POST /echo/2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n'),
          chunked(bodies[1] as Buffer),
          Buffer.from(`POST /echo/3 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nConnection: close\r\n\r\n`),
          bodies[2] as Buffer,
        ]),
      )
      const res = await raw.responses(3)
      assert.deepEqual(
        res.map((r) => r.body),
        bodies.map(sha),
      )
    })

    it(`runs at most ${MAX_PIPELINED} pipelined requests ahead of their responses, and answers all in order`, async () => {
      const others = up.held()
      const raw = await Raw.open(lb.port)
      const count = 40
      raw.write(Array.from({ length: count }, (_, i) => get(`/hold/q${i}`)).join(''))
      await waitFor(() => up.held() - others === MAX_PIPELINED, `${MAX_PIPELINED} requests upstream`)
      assert.equal(inFlight(lb), MAX_PIPELINED)
      // Answered in rounds: each round lets the next requests run (native: be read).
      await waitFor(() => {
        if (up.held() > MAX_PIPELINED) assert.fail(`${up.held()} requests upstream at once`)
        up.release()
        return parseResponses(raw.text, [], false).length === count
      }, `${count} responses`)
      const res = parseResponses(raw.text, [], false)
      assert.equal(res.length, count)
      assert.ok(res.every((r) => r.body === 'released'))
      raw.destroy()
    })

    it('a client that leaves with pipelined requests in flight leaves none behind, and the upstream sees them end', async () => {
      const before = up.closedHeld()
      const raw = await Raw.open(lb.port)
      raw.write(get('/hold/1') + get('/hold/2') + get('/hold/3'))
      await waitFor(() => up.held() === 3, 'the three requests upstream')
      assert.equal(inFlight(lb), 3)
      raw.destroy()
      await waitFor(() => inFlight(lb) === 0, `in flight back to 0 (now ${inFlight(lb)})`)
      await waitFor(() => up.closedHeld() - before === 3, 'the upstream requests closed')
    })

    it('pipelined requests split at random points across many writes: each answered in order, bodies intact', async () => {
      // A seeded generator: the same splits on every run.
      let seed = 12345
      const rand = (n: number) => {
        seed = (seed * 1103515245 + 12345) % 2 ** 31
        return seed % n
      }
      const requests: Buffer[] = []
      const expected: string[] = []
      for (let i = 0; i < 24; i++) {
        const body = randomBytes(rand(3) === 0 ? 0 : 1 + rand(5000))
        expected.push(`${body.length} ${createHash('sha256').update(body).digest('hex')}`)
        if (rand(2) === 0 || body.length === 0)
          requests.push(
            Buffer.concat([
              Buffer.from(`POST /echo/${i} HTTP/1.1\r\nHost: a\r\nContent-Length: ${body.length}\r\n\r\n`),
              body,
            ]),
          )
        else {
          const cut = rand(body.length)
          const chunk = (b: Buffer) =>
            b.length === 0 ? [] : [Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]
          requests.push(
            Buffer.concat([
              Buffer.from(`POST /echo/${i} HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n`),
              ...chunk(body.subarray(0, cut)),
              ...chunk(body.subarray(cut)),
              Buffer.from(rand(2) === 0 ? '0\r\n\r\n' : '0\r\nX-T: 1\r\n\r\n'),
            ]),
          )
        }
      }
      const stream = Buffer.concat(requests)
      const raw = await Raw.open(lb.port)
      raw.socket.setNoDelay(true)
      let at = 0
      while (at < stream.length) {
        const n = 1 + rand(rand(4) === 0 ? 8 : 3000)
        raw.write(stream.subarray(at, at + n))
        at += n
        await new Promise((resolve) => setImmediate(resolve))
      }
      const res = await raw.responses(expected.length, [], 10_000)
      assert.deepEqual(
        res.map((r) => r.body),
        expected,
      )
      raw.destroy()
    })

    it('Expect: 100-continue, raw: 100 first, the body after it, then the response', async () => {
      const raw = await Raw.open(lb.port)
      raw.write('POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n')
      await raw.until((t) => t.startsWith('HTTP/1.1 100 Continue\r\n\r\n'), '100 Continue')
      raw.write('hello')
      const [res] = await raw.responses(1)
      assert.equal(res?.body, `5 ${createHash('sha256').update('hello').digest('hex')}`)
      raw.destroy()
    })

    it('Expect: 100-continue with curl', async () => {
      const { stdout, stderr } = await curlExpectContinue(`${lb.url}/echo`)
      assert.match(stderr, /< HTTP\/1\.1 100 Continue/)
      assert.match(stdout, /^5000 [0-9a-f]{64}$/)
    })

    it('HTTP/1.0 without keep-alive: Connection: close, a close-delimited body, then the close', async () => {
      const raw = await Raw.open(lb.port)
      raw.write('GET /chunks/3 HTTP/1.0\r\n\r\n')
      await raw.waitClosed('the close after an HTTP/1.0 response')
      const [res] = parseResponses(raw.text, [], true)
      assert.equal(res?.status, 200)
      assert.equal(headerOf(res as Res, 'transfer-encoding'), undefined, 'never chunked to HTTP/1.0')
      assert.equal(headerOf(res as Res, 'connection'), 'close')
      assert.equal(res?.body, 'x'.repeat(3000))
    })

    it('HTTP/1.0 with keep-alive: Connection: keep-alive on a response with a length, and the connection serves again', async () => {
      const raw = await Raw.open(lb.port)
      raw.write('GET /one HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
      const [first] = await raw.responses(1)
      assert.equal(first?.body, '/one')
      assert.equal(first?.framing, 'length')
      assert.match(headerOf(first as Res, 'connection') ?? '', /^keep-alive$/i)
      assert.equal(raw.closed, false)
      // A body of unknown length cannot be sent chunked to HTTP/1.0: it ends with the connection.
      raw.write('GET /chunks/3 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n')
      await raw.waitClosed('the close that ends a close-delimited body')
      const res = parseResponses(raw.text, [], true)
      assert.equal(res.length, 2)
      assert.equal(res[1]?.framing, 'close')
      assert.equal(res[1]?.body, 'x'.repeat(3000))
    })

    it('Connection: close from an HTTP/1.1 client: answered with Connection: close, then closed', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(get('/bye', 'Connection: close\r\n'))
      await raw.waitClosed('the close')
      const [res] = parseResponses(raw.text, [], true)
      assert.equal(res?.body, '/bye')
      assert.equal(headerOf(res as Res, 'connection'), 'close')
    })

    it('HEAD, 204 and 304 responses have no body, and the connection carries on after them', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(
        `HEAD /head HTTP/1.1\r\nHost: a\r\n\r\n${get('/204')}${get('/304')}${get('/last', 'Connection: close\r\n')}`,
      )
      await raw.waitClosed('the close after the last response')
      const res = parseResponses(raw.text, [true], true)
      assert.deepEqual(
        res.map((r) => [r.status, r.body]),
        [
          [200, ''],
          [204, ''],
          [304, ''],
          [200, '/last'],
        ],
      )
      assert.equal(headerOf(res[0] as Res, 'content-length'), '1234', 'HEAD keeps the length of the GET')
      assert.equal(headerOf(res[1] as Res, 'transfer-encoding'), undefined)
      assert.equal(headerOf(res[2] as Res, 'transfer-encoding'), undefined)
    })

    it('a chunked request with trailers: the body reaches the upstream, and a request after it is answered', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(
        'POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\nX-Sum: 42\r\nX-Other: y\r\n\r\n' +
          get('/after', 'Connection: close\r\n'),
      )
      const res = await raw.responses(2)
      assert.equal(res[0]?.body, `11 ${createHash('sha256').update('hello world').digest('hex')}`)
      assert.equal(res[1]?.body, '/after')
    })

    it('re-frames a chunked upstream response of unknown length as chunked to an HTTP/1.1 client', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(get('/chunks/20'))
      const [res] = await raw.responses(1)
      assert.equal(res?.framing, 'chunked')
      assert.equal(res?.body, 'x'.repeat(20_000))
      raw.write(get('/again', 'Connection: close\r\n'))
      const again = await raw.responses(2)
      assert.equal(again[1]?.body, '/again', 'the connection is kept after a chunked response')
    })

    it('relays a close-delimited upstream response chunked to an HTTP/1.1 client, keeping the connection', async () => {
      const cd = await closeDelimitedUpstream()
      const other = await startLb(lbConfig(engine, [cd.url]))
      try {
        const raw = await Raw.open(other.port)
        raw.write(get('/cd'))
        const [res] = await raw.responses(1)
        assert.equal(res?.framing, 'chunked')
        assert.equal(res?.body, 'part one, part two')
        assert.equal(raw.closed, false)
        raw.write(get('/cd', 'Connection: close\r\n'))
        await raw.responses(2)
      } finally {
        await other.close()
        await cd.close()
      }
    })

    // node:http only says `Connection: close` (and answers 503 to any request after it); the native
    // engine also closes the connection after that response.
    it('maxRequestsPerConnection: the last response carries Connection: close', async () => {
      const limited = await startLb(lbConfig(engine, [up.backend.url], { maxRequestsPerConnection: 3 }))
      try {
        const raw = await Raw.open(limited.port)
        for (let i = 1; i <= 3; i++) {
          raw.write(get(`/n${i}`))
          const res = await raw.responses(i)
          const last = res[i - 1] as Res
          assert.equal(last.body, `/n${i}`)
          if (i < 3) assert.notEqual(headerOf(last, 'connection'), 'close', `response ${i} keeps the connection`)
          else assert.equal(headerOf(last, 'connection'), 'close', 'the third response closes it')
        }
        if (engine === 'native') await raw.waitClosed('the close after the third response')
        raw.destroy()
      } finally {
        await limited.close()
      }
    })

    it('drain: an idle connection closes at once; a busy one gets Connection: close on its response, then closes', async () => {
      const draining = await startLb(lbConfig(engine, [up.backend.url]))
      const idle = await Raw.open(draining.port)
      idle.write(get('/warm'))
      await idle.responses(1)
      const busy = await Raw.open(draining.port)
      busy.write(get('/hold/drain'))
      await waitFor(() => up.held() === 1, 'the busy request upstream')
      const closing = draining.lb.close({ gracePeriodMs: 5000 })
      await idle.waitClosed('the idle connection closed by the drain', 2000)
      assert.equal(busy.closed, false, 'the busy connection waits for its response')
      up.release()
      const [res] = await busy.responses(1)
      assert.equal(res?.body, 'released')
      assert.equal(headerOf(res as Res, 'connection'), 'close')
      await busy.waitClosed('the busy connection closed after its response')
      await closing
    })

    it('a malformed request: 400 with the parser code in JSON, then the close', async () => {
      const raw = await Raw.open(lb.port)
      raw.write('GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n')
      await raw.waitClosed('the close after a malformed request')
      const [res] = parseResponses(raw.text, [], true)
      assert.equal(res?.status, 400)
      assert.deepEqual(JSON.parse(res?.body ?? ''), {
        error: { code: 'SWY_BAD_REQUEST', status: 400, message: 'Bad Request', parser: 'HPE_INVALID_HEADER_TOKEN' },
      })
    })

    it('an oversized head: 431, then the close', async () => {
      const raw = await Raw.open(lb.port)
      // Over limits.maxHeaderBytes' default of 32 KiB.
      raw.write(get('/', `X-Big: ${'a'.repeat(40_000)}\r\n`))
      await raw.waitClosed('the close after an oversized head')
      const [res] = parseResponses(raw.text, [], true)
      assert.equal(res?.status, 431)
      assert.equal((JSON.parse(res?.body ?? '') as { error: { parser: string } }).error.parser, 'HPE_HEADER_OVERFLOW')
    })

    it('a request head cut short by the client FIN: 400 (as node:http answers it)', async () => {
      const raw = await Raw.open(lb.port)
      raw.socket.end('GET / HTTP/1.1\r\nHost: a\r\n')
      await raw.waitClosed('the close')
      const [res] = parseResponses(raw.text, [], true)
      assert.equal(res?.status, 400)
      assert.match(res?.body ?? '', /HPE_INVALID_EOF_STATE/)
    })

    it('an Upgrade request is answered as a plain request (no tunnel yet, as node:http without an upgrade listener)', async () => {
      const raw = await Raw.open(lb.port)
      raw.write(get('/ws', 'Connection: Upgrade\r\nUpgrade: websocket\r\n'))
      const [res] = await raw.responses(1)
      assert.deepEqual([res?.status, res?.body], [200, '/ws'])
      raw.destroy()
    })
  })
}

// --- the native engine's own promises ---------------------------------------------------------

/** Counts the writes each accepted socket hands to libuv (`_write`/`_writev`: one syscall each). */
function countSocketWrites(): { writes: () => number[]; stop(): void } {
  const counts: number[] = []
  const onConnection = (message: unknown) => {
    const { socket } = message as { socket: Socket & Record<string, unknown> }
    const index = counts.push(0) - 1
    for (const method of ['_write', '_writev'] as const) {
      const original = socket[method] as (...args: unknown[]) => unknown
      socket[method] = function (this: Socket, ...args: unknown[]) {
        counts[index] = (counts[index] ?? 0) + 1
        return original.apply(this, args)
      }
    }
  }
  diagnostics.subscribe('switchyard:http1:connection', onConnection)
  return { writes: () => [...counts], stop: () => diagnostics.unsubscribe('switchyard:http1:connection', onConnection) }
}

describe('the native engine', () => {
  let up: Awaited<ReturnType<typeof testBackend>>
  before(async () => {
    up = await testBackend()
  })
  after(async () => {
    up.release()
    await up.backend.close()
  })

  it('writes a response head and a small body in one socket write', async () => {
    const counter = countSocketWrites()
    const lb = await startLb(
      lbConfig('native', [up.backend.url], {
        routes: [{ match: { pathPrefix: '/p' }, pool: 'p' }],
      }),
    )
    try {
      const raw = await Raw.open(lb.port)
      raw.write(get('/p/small'))
      const [res] = await raw.responses(1)
      assert.equal(res?.body, '/p/small')
      assert.deepEqual(counter.writes(), [1], 'one write for the proxied response')
      raw.write(get('/nowhere'))
      const both = await raw.responses(2)
      assert.equal(both[1]?.status, 404)
      assert.deepEqual(counter.writes(), [2], 'one write for an error response of our own')
      raw.destroy()
    } finally {
      counter.stop()
      await lb.close()
    }
  })

  it('timeouts.requestHeaders: 408 within max(50 ms, 5%) after the deadline, from the start or a later head', async (t: TestContext) => {
    const HEADERS_MS = 300
    const SLACK_MS = Math.max(50, HEADERS_MS * 0.05)
    const lb = await startLb(lbConfig('native', [up.backend.url], { timeouts: { requestHeaders: `${HEADERS_MS}ms` } }))
    try {
      // The first head: the clock starts with the connection.
      const fresh = await Raw.open(lb.port)
      const startMs = performance.now()
      fresh.write('GET / HTTP/1.1\r\nHost: a\r\nX-Slow: ')
      await fresh.until((text) => text.startsWith('HTTP/1.1 408 '), '408', 2000)
      const firstMs = fresh.lastEventMs - startMs
      // A later head: the clock starts with its first byte.
      const kept = await Raw.open(lb.port)
      kept.write(get('/first'))
      await kept.responses(1)
      const writeMs = performance.now()
      kept.write('GET /second HTTP/1.1\r\nHost: a\r\n')
      await kept.until((text) => text.includes('HTTP/1.1 408 '), 'the 408 for the slow second head', 2000)
      const laterMs = kept.lastEventMs - writeMs
      t.diagnostic(`408 after ${firstMs.toFixed(1)} ms (first head), ${laterMs.toFixed(1)} ms (later head)`)
      // Node's timers run on a millisecond clock: a timer may fire up to 1 ms before the exact time.
      for (const ms of [firstMs, laterMs]) {
        assert.ok(ms >= HEADERS_MS - 1, `fired at ${ms} ms, before ${HEADERS_MS} ms`)
        assert.ok(ms <= HEADERS_MS + SLACK_MS, `fired at ${ms} ms, later than ${HEADERS_MS} + ${SLACK_MS} ms`)
      }
      await kept.waitClosed('the close after the 408')
      assert.match(kept.text, /"parser":"ERR_HTTP_REQUEST_TIMEOUT"/)
    } finally {
      await lb.close()
    }
  })

  it('timeouts.idle: an idle keep-alive connection closes quietly within max(50 ms, 5%) after it', async (t: TestContext) => {
    const IDLE_MS = 400
    const SLACK_MS = Math.max(50, IDLE_MS * 0.05)
    const lb = await startLb(lbConfig('native', [up.backend.url], { timeouts: { idle: `${IDLE_MS}ms` } }))
    try {
      const raw = await Raw.open(lb.port)
      raw.write(get('/one'))
      await raw.responses(1)
      // The idle clock starts when the response is handed to the socket, a loop turn before the
      // client reads it: measured from the client's read, it may look up to a few ms short.
      const readMs = raw.lastEventMs
      raw.write(get('/two'))
      await raw.responses(2)
      assert.equal(raw.closed, false, 'a connection in use is not idle')
      const idleFromMs = raw.lastEventMs
      await raw.waitClosed('the idle close', 3000)
      const ms = raw.lastEventMs - idleFromMs
      t.diagnostic(
        `closed ${ms.toFixed(1)} ms after the last response (reused after ${(idleFromMs - readMs).toFixed(1)} ms)`,
      )
      assert.ok(ms >= IDLE_MS - 5, `closed after ${ms} ms, before ${IDLE_MS} ms`)
      assert.ok(ms <= IDLE_MS + SLACK_MS, `closed after ${ms} ms, later than ${IDLE_MS} + ${SLACK_MS} ms`)
      assert.equal(parseResponses(raw.text, [], true).length, 2, 'nothing is written on an idle close')
    } finally {
      await lb.close()
    }
  })

  it('a response queued behind another buffers a bounded amount, then holds its upstream back', async () => {
    const lb = await startLb(lbConfig('native', [up.backend.url]))
    try {
      const raw = await Raw.open(lb.port)
      raw.write(get('/hold/first') + get('/big/32'))
      await waitFor(() => up.big.waiting, 'the queued response to push back on its upstream')
      // It stays held back while the first response is pending (nothing reads the rest).
      const written = up.big.written
      await new Promise((resolve) => setTimeout(resolve, 200)) // asserting that nothing moves
      assert.equal(up.big.written, written)
      assert.ok(written < 32 * 1024 * 1024, `the upstream wrote ${written} bytes into a queued response`)
      up.release()
      const res = await raw.responses(2, [], 20_000)
      assert.equal(res[0]?.body, 'released')
      assert.equal(res[1]?.body.length, 32 * 1024 * 1024)
      raw.destroy()
    } finally {
      await lb.close()
    }
  })

  it('a Node whose parser fails the self-test: one warning for the process, and node:http serves', async () => {
    const log = memoryLogger('warn')
    resetNativeParserCheck({ ok: false, reason: 'forced by the test' })
    const lbs: LoadBalancer[] = []
    try {
      for (let i = 0; i < 2; i++) {
        const lb = createLoadBalancer(lbConfig('native', [up.backend.url]), { logger: log.logger })
        lbs.push(lb)
        await lb.start()
        const port = Object.values(lb.addresses())[0]?.port
        const res = await fetch(`http://127.0.0.1:${port}/fallback`)
        assert.equal(await res.text(), '/fallback')
      }
      const warnings = log.lines.filter((l) => String(l.msg).includes('engine native is not available'))
      assert.equal(warnings.length, 1)
      assert.match(String(warnings[0]?.msg), /forced by the test/)
    } finally {
      resetNativeParserCheck()
      for (const lb of lbs) await lb.close({ gracePeriodMs: 1000 })
    }
  })

  it('a reload applies new client timeouts to the native engine', async () => {
    const config = (requestHeaders: string) => lbConfig('native', [up.backend.url], { timeouts: { requestHeaders } })
    const lb = await startLb(config('10s'))
    try {
      await lb.lb.reload(config('200ms'))
      const raw = await Raw.open(lb.port)
      raw.write('GET / HTTP/1.1\r\n')
      await raw.until((text) => text.startsWith('HTTP/1.1 408 '), 'the 408 under the new timeout', 2000)
    } finally {
      await lb.close()
    }
  })

  it('a reload that changes the engine keeps the running one and says it applies on restart', async () => {
    const log = memoryLogger('warn')
    const config = lbConfig('node', [up.backend.url])
    const lb = createLoadBalancer(config, { logger: log.logger })
    await lb.start()
    const native: unknown[] = []
    const onConnection = (message: unknown) => native.push(message)
    diagnostics.subscribe('switchyard:http1:connection', onConnection)
    try {
      await lb.reload(lbConfig('native', [up.backend.url]))
      const port = Object.values(lb.addresses())[0]?.port
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/still`)).text(), '/still')
      assert.equal(native.length, 0, 'node:http still serves')
      assert.ok(log.lines.some((l) => /engine native applies on restart; node keeps serving/.test(String(l.msg))))
    } finally {
      diagnostics.unsubscribe('switchyard:http1:connection', onConnection)
      await lb.close({ gracePeriodMs: 1000 })
    }
  })

  it('backpressure: an upload the upstream does not read stops being read from the client', async () => {
    let accepted: Socket | undefined
    const onConnection = (message: unknown) => {
      accepted = (message as { socket: Socket }).socket
    }
    diagnostics.subscribe('switchyard:http1:connection', onConnection)
    // No body limit: 64 MiB is over the default maxBodySize of 10 MiB.
    const lb = await startLb(lbConfig('native', [up.backend.url], { limits: { maxBodySize: 0 } }))
    try {
      const total = 64 * 1024 * 1024
      const raw = await Raw.open(lb.port)
      raw.write(`POST /slow-read HTTP/1.1\r\nHost: a\r\nContent-Length: ${total}\r\n\r\n`)
      const piece = Buffer.alloc(1024 * 1024, 0x61)
      let sent = 0
      const pump = () => {
        while (sent < total) {
          sent += piece.length
          if (!raw.socket.write(piece)) return void raw.socket.once('drain', pump)
        }
      }
      pump()
      // The client stalls: its writes stay buffered while the upstream reads nothing.
      let lastRead = -1
      await waitFor(
        () => {
          const read = accepted?.bytesRead ?? 0
          const still = read === lastRead && raw.socket.writableLength > 0
          lastRead = read
          return still
        },
        'the client upload to stall',
        { timeoutMs: 10_000, intervalMs: 100 },
      )
      const read = accepted?.bytesRead ?? 0
      assert.ok(read < total / 2, `the listener read ${read} of ${total} bytes with nobody reading them`)
      up.startReading()
      const [res] = await raw.responses(1, [], 20_000)
      assert.equal(res?.body, String(total))
      raw.destroy()
    } finally {
      diagnostics.unsubscribe('switchyard:http1:connection', onConnection)
      await lb.close()
    }
  })
})
