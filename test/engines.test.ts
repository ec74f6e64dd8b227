/**
 * HTTP/1.1 connection edge cases where framing decides who gets which bytes, run for both engines
 * (`engine: native` and `engine: node` on the listener and the pool): an upstream that sends more
 * than its response, an upstream that speaks on an idle pooled connection, an upstream that answers
 * before the request body is complete. (A client that leaves with pipelined requests queued is in
 * dos.test.ts, h2c beside HTTP/1.1 in http2.test.ts, both for both engines; request framing in
 * smuggling.test.ts.)
 *
 * The upstreams are raw sockets (`ScriptedBackend`) that read requests with the strict reader of
 * helpers/framing.ts and answer as each test scripts; clients are raw sockets too. Every wait has a
 * deadline.
 */
import assert from 'node:assert/strict'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { setImmediate as turn } from 'node:timers/promises'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { closeServer } from './helpers/backends.js'
import { ENGINES, type EngineName } from './helpers/differential.js'
import { type Head, type Message, readMessage } from './helpers/framing.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

/** One upstream connection as the scripted backend sees it. */
interface Upstream {
  readonly socket: Socket
  readonly id: number
  /** Whole requests read on it. */
  readonly requests: Message[]
  /** Bytes of a request not yet whole. */
  pending: Buffer
  closed: boolean
}

interface Script {
  /** A request head arrived (its body may still be coming). Default: nothing. */
  onHead?(up: Upstream, head: Head): void
  /** A whole request arrived. Default: an empty 200 `ok`. */
  onRequest?(up: Upstream, request: Message): void
}

/** A raw-socket upstream that answers as `script` says and keeps every connection it accepted. */
class ScriptedBackend {
  readonly #server: Server
  readonly connections: Upstream[] = []
  script: Script = {}
  port = 0

  constructor() {
    this.#server = createServer((socket) => this.#accept(socket))
  }

  async listen(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve))
    const a = this.#server.address()
    if (a === null || typeof a === 'string') throw new Error('no address')
    this.port = a.port
    return this
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  open(): Upstream[] {
    return this.connections.filter((c) => !c.closed)
  }

  /** Every request it read, over all connections. */
  requests(): Message[] {
    return this.connections.flatMap((c) => c.requests)
  }

  close(): Promise<void> {
    return closeServer(
      this.#server,
      this.connections.map((c) => c.socket),
    )
  }

  #accept(socket: Socket): void {
    const up: Upstream = { socket, id: this.connections.length, requests: [], pending: Buffer.alloc(0), closed: false }
    this.connections.push(up)
    socket.on('error', () => {})
    socket.on('close', () => {
      up.closed = true
    })
    let headSeen = false
    socket.on('data', (chunk: Buffer) => {
      up.pending = Buffer.concat([up.pending, chunk])
      for (;;) {
        const r = readMessage(up.pending)
        if (r.kind === 'error') {
          socket.destroy()
          return
        }
        if (r.kind === 'incomplete') {
          if (r.head !== undefined && !headSeen) {
            headSeen = true
            this.script.onHead?.(up, r.head)
          }
          return
        }
        up.pending = up.pending.subarray(r.message.length)
        up.requests.push(r.message)
        if (!headSeen) this.script.onHead?.(up, r.message)
        headSeen = false
        if (this.script.onRequest) this.script.onRequest(up, r.message)
        else socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')
      }
    })
  }
}

/** A fake response: what must never reach a client. */
const POISON = 'HTTP/1.1 200 OK\r\nContent-Length: 6\r\nX-Poison: 1\r\n\r\nPOISON'
const OK = 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'

function config(engine: EngineName, servers: string[], extra: Partial<ConfigInput['pools'][number]> = {}): ConfigInput {
  return {
    listeners: [{ name: 'web', listen: '127.0.0.1:0', engine, routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', engine, servers, retries: { attempts: 0 }, ...extra }],
  }
}

async function start(cfg: ConfigInput): Promise<{ lb: LoadBalancer; port: number }> {
  const lb = createLoadBalancer(cfg, { logger: memoryLogger().logger })
  await lb.start()
  const port = Object.values(lb.addresses())[0]?.port
  if (port === undefined) throw new Error('no listener')
  return { lb, port }
}

function inFlight(lb: LoadBalancer): number {
  return lb.status().listeners[0]?.inFlight ?? Number.NaN
}

interface ClientResponse {
  readonly status: number
  readonly headers: readonly (readonly [string, string])[]
  readonly body: string
}

/**
 * A raw client connection that reads responses with the strict reader: `send` writes bytes,
 * `response` waits for the next whole response (for a request of `method`), with a deadline.
 */
class RawClient {
  readonly socket: Socket
  readonly connected: Promise<void>
  #buffer = Buffer.alloc(0)
  #closed = false
  #waiters: (() => void)[] = []

  constructor(port: number) {
    this.socket = connect(port, '127.0.0.1')
    this.socket.on('error', () => {})
    this.connected = new Promise((resolve) => this.socket.once('connect', () => resolve()))
    this.socket.on('data', (c: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, c])
      this.#wake()
    })
    this.socket.on('close', () => {
      this.#closed = true
      this.#wake()
    })
  }

  get closed(): boolean {
    return this.#closed
  }

  /** All bytes read and not yet taken as a response. */
  get unread(): string {
    return this.#buffer.toString('latin1')
  }

  send(bytes: string | Buffer): void {
    if (!this.socket.destroyed) this.socket.write(bytes)
  }

  async response(method = 'GET', deadlineMs = 5000): Promise<ClientResponse> {
    const deadline = performance.now() + deadlineMs
    for (;;) {
      const r = readMessage(this.#buffer, 0, 'response', method, this.#closed)
      if (r.kind === 'message') {
        this.#buffer = this.#buffer.subarray(r.message.length)
        if (r.message.status >= 100 && r.message.status < 200) continue
        return { status: r.message.status, headers: r.message.headers, body: r.message.body.toString('latin1') }
      }
      if (r.kind === 'error') throw new Error(`unreadable response (${r.reason}): ${JSON.stringify(this.unread)}`)
      if (this.#closed) throw new Error(`closed before a whole response: ${JSON.stringify(this.unread)}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`no whole response within ${deadlineMs} ms: ${JSON.stringify(this.unread)}`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left)
        this.#waiters.push(() => {
          clearTimeout(timer)
          resolve()
        })
      })
    }
  }

  /** Waits until the listener closes the connection. */
  async closedWithin(deadlineMs: number): Promise<void> {
    await waitFor(() => this.#closed, 'the listener to close the client connection', { timeoutMs: deadlineMs })
  }

  destroy(): void {
    this.socket.destroy()
  }

  #wake(): void {
    const ws = this.#waiters
    this.#waiters = []
    for (const w of ws) w()
  }
}

/**
 * One GET on a fresh connection: its response, which must be all the client reads (after a few turns
 * of the event loop, nothing more has come: bytes an upstream sent beyond its response are not passed on).
 */
async function get(port: number, path: string): Promise<ClientResponse> {
  const c = new RawClient(port)
  try {
    await c.connected
    c.send(`GET ${path} HTTP/1.1\r\nHost: app.test\r\n\r\n`)
    const r = await c.response()
    for (let i = 0; i < 3; i++) await turn()
    assert.equal(c.unread, '', `bytes after the response to ${path}`)
    return r
  } finally {
    c.destroy()
  }
}

for (const engine of ENGINES) {
  describe(`engine: ${engine}: an upstream that sends more than its response`, () => {
    let backend: ScriptedBackend
    let lb: LoadBalancer
    let port: number
    before(async () => {
      backend = await new ScriptedBackend().listen()
      ;({ lb, port } = await start(config(engine, [backend.url])))
    })
    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    })

    const leftovers: [string, (up: Upstream) => void][] = [
      ['a whole fake response in the same write as the real one', (up) => up.socket.write(OK + POISON)],
      [
        'a fake response in the write that ends the body',
        (up) => {
          up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\no')
          setImmediate(() => up.socket.write(`k${POISON}`))
        },
      ],
      ['garbage after the body', (up) => up.socket.write(`${OK}\x00\x01garbage\r\n\r\n`)],
      ['a 100 Continue after the body', (up) => up.socket.write(`${OK}HTTP/1.1 100 Continue\r\n\r\n`)],
    ]
    for (const [what, answer] of leftovers)
      it(`${what}: no client ever reads those bytes, and the connection is not used again`, async () => {
        const before = backend.connections.length
        backend.script = { onRequest: answer }
        // Sequential, then concurrent clients: each gets exactly the real response.
        for (let i = 0; i < 5; i++) assert.deepEqual(pick(await get(port, `/seq${i}`)), { status: 200, body: 'ok' })
        const concurrent = await Promise.all(Array.from({ length: 8 }, (_, i) => get(port, `/par${i}`)))
        for (const r of concurrent) assert.deepEqual(pick(r), { status: 200, body: 'ok' })
        for (const r of [...concurrent])
          assert.equal(
            r.headers.find(([n]) => n.toLowerCase() === 'x-poison'),
            undefined,
          )
        const mine = backend.connections.slice(before)
        assert.deepEqual(
          mine.map((c) => c.requests.length),
          mine.map(() => 1),
          'every upstream connection carried one request: none was reused after its stray bytes',
        )
        assert.equal(mine.length, 13)
        await waitFor(() => mine.every((c) => c.closed), 'the proxy to close every connection that sent stray bytes')
        assert.equal(inFlight(lb), 0)
      })
  })

  describe(`engine: ${engine}: an upstream that speaks on an idle pooled connection`, () => {
    let backend: ScriptedBackend
    let lb: LoadBalancer
    let port: number
    before(async () => {
      backend = await new ScriptedBackend().listen()
      ;({ lb, port } = await start(config(engine, [backend.url], { connections: { keepAlive: '30s' } })))
    })
    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    })

    const unsolicited: [string, (up: Upstream) => void][] = [
      ['a whole fake response', (up) => up.socket.write(POISON)],
      ['garbage', (up) => up.socket.write('\x00garbage')],
      [
        'a 408 and a close (what some servers send an idle connection they drop)',
        (up) => up.socket.end('HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'),
      ],
    ]
    for (const [i, [what, speak]] of unsolicited.entries())
      it(`${what}: reaches no client; the proxy drops the connection and serves the next request on another`, async () => {
        backend.script = {}
        assert.deepEqual(pick(await get(port, `/first${i}`)), { status: 200, body: 'ok' })
        const conn = backend.connections.find((c) => c.requests.some((m) => m.target === `/first${i}`))
        assert.ok(conn !== undefined && !conn.closed, 'the connection that carried it is idle in the pool')
        const carried = conn.requests.length
        speak(conn)
        await waitFor(() => conn.closed, 'the proxy to drop the idle connection that spoke')
        assert.deepEqual(pick(await get(port, `/second${i}`)), { status: 200, body: 'ok' })
        assert.equal(conn.requests.length, carried, 'the connection that spoke carried no further request')
        assert.equal(inFlight(lb), 0)
      })
  })

  describe(`engine: ${engine}: an upstream that answers before the request body is complete`, () => {
    let backend: ScriptedBackend
    let lb: LoadBalancer
    let port: number
    before(async () => {
      backend = await new ScriptedBackend().listen()
      ;({ lb, port } = await start(config(engine, [backend.url])))
    })
    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    })

    /** A body made of request heads: if any of it is read as requests, the backend sees `/smuggled`. */
    const SMUGGLE = 'GET /smuggled HTTP/1.1\r\nHost: app.test\r\nContent-Length: 0\r\n\r\n'
    const BODY = Buffer.from(SMUGGLE.repeat(Math.ceil((1024 * 1024) / SMUGGLE.length)), 'latin1').subarray(
      0,
      1024 * 1024,
    )
    /** More than `retries.bufferBytes` (64 KiB), so that the body streams rather than being read first. */
    const FIRST = 256 * 1024

    const answers: [string, string, (up: Upstream) => void][] = [
      [
        '413 and a close',
        '413',
        (up) => up.socket.end('HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbig'),
      ],
      [
        '200 on a connection it keeps',
        '200',
        (up) => up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly'),
      ],
    ]
    for (const [what, status, answer] of answers)
      for (const framing of ['Content-Length', 'chunked'] as const)
        it(`${what}, ${framing} body: the client gets it, nothing hangs or leaks, the rest of the body is never a request`, async () => {
          const before = backend.connections.length
          backend.script = {
            onHead: (up, head) => {
              if (head.target === '/upload') answer(up)
            },
          }
          const c = new RawClient(port)
          try {
            await c.connected
            const chunk = (b: Buffer) =>
              framing === 'chunked'
                ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')])
                : b
            const head = framing === 'chunked' ? 'Transfer-Encoding: chunked' : `Content-Length: ${BODY.length}`
            c.send(`POST /upload HTTP/1.1\r\nHost: app.test\r\n${head}\r\n\r\n`)
            c.send(chunk(BODY.subarray(0, FIRST)))
            const r = await c.response('POST')
            assert.equal(String(r.status), status)
            // The listener ends the exchange: nothing in flight, no upstream connection holding half a
            // request (closed, or idle after a whole one).
            await waitFor(() => inFlight(lb) === 0, 'no request in flight after the early answer')
            // The client sends the rest of its body, then one more request. Whatever the listener makes
            // of them (reads the rest as the body it is and answers /after, closes, or leaves them
            // unread: see the TODO below), none of it may reach the backend as a request of its own.
            c.send(chunk(BODY.subarray(FIRST)))
            if (framing === 'chunked') c.send('0\r\n\r\n')
            c.send('GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n')
            // A fixed wait, for asserting that nothing is smuggled within it.
            await new Promise((resolve) => setTimeout(resolve, 100))
          } finally {
            c.destroy()
          }
          await waitFor(() => inFlight(lb) === 0, 'no request in flight once the client left')
          const mine = backend.connections.slice(before)
          await waitFor(
            () => mine.every((u) => u.closed || u.pending.length === 0),
            'every upstream connection closed, or idle after whole requests',
          )
          const targets = mine.flatMap((u) => u.requests.map((m) => m.target))
          assert.ok(!targets.includes('/smuggled'), `the backend read the body as requests: ${targets.join(', ')}`)
          assert.ok(
            targets.every((t) => t === '/upload' || t === '/after'),
            `the backend read only the upload and /after: ${targets}`,
          )
          // And the listener still serves.
          backend.script = {}
          assert.deepEqual(pick(await get(port, '/later')), { status: 200, body: 'ok' })
        })

    it('after an early answer, the rest of the body is read and the next request answered, or the connection closed', {
      todo: "known bug: a relayed upstream response that comes before the client body is complete says keep-alive, but the listener never reads the rest of the body (the upstream request is gone, the request stream stays paused): the next request on the connection is never answered, and the connection is reset after timeouts.idle (60 s by default). Switchyard's own responses close in that case (l7/request.ts respond, bodyPending); relayed ones do not (l7/exchange.ts #head)",
    }, async () => {
      backend.script = {
        onHead: (up, head) => {
          if (head.target === '/upload') up.socket.write('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nearly')
        },
      }
      const c = new RawClient(port)
      try {
        await c.connected
        c.send(`POST /upload HTTP/1.1\r\nHost: app.test\r\nContent-Length: ${BODY.length}\r\n\r\n`)
        c.send(BODY.subarray(0, FIRST))
        const early = await c.response('POST')
        const keepAlive = !early.headers.some(([n, v]) => n.toLowerCase() === 'connection' && /close/i.test(v))
        c.send(BODY.subarray(FIRST))
        c.send('GET /after HTTP/1.1\r\nHost: app.test\r\n\r\n')
        // Loopback answers come in milliseconds: a second is a hang.
        if (keepAlive) assert.deepEqual(pick(await c.response('GET', 1000)), { status: 200, body: 'ok' })
        else await c.closedWithin(1000)
      } finally {
        c.destroy()
      }
    })
  })

  describe(`engine: ${engine}: known bugs on the request path`, () => {
    let backend: ScriptedBackend
    let lb: LoadBalancer
    let port: number
    const log = memoryLogger()
    before(async () => {
      backend = await new ScriptedBackend().listen()
      lb = createLoadBalancer(config(engine, [backend.url]), { logger: log.logger })
      await lb.start()
      port = Object.values(lb.addresses())[0]?.port ?? 0
    })
    after(async () => {
      await lb.close({ gracePeriodMs: 1000 })
      await backend.close()
    })

    it('an HTTP/1 request line naming HTTP/2.0 is refused with a 4xx, without an internal error', {
      todo: 'known bug: l7/client.ts clientOf takes any request with httpVersionMajor 2 for HTTP/2; a TypeError gives 500 SWY_INTERNAL, logged at error level with its stack, once per such request',
    }, async () => {
      const c = new RawClient(port)
      try {
        await c.connected
        c.send('GET / HTTP/2.0\r\nHost: app.test\r\n\r\n')
        const r = await c.response()
        assert.ok(r.status >= 400 && r.status < 500, `status ${r.status}: ${r.body}`)
        assert.deepEqual(
          log.lines.filter((l) => Number(l.level) >= 50).map((l) => l.msg),
          [],
        )
      } finally {
        c.destroy()
      }
    })

    it('pipelined requests reach the upstream in the order sent when one is not safe (RFC 9112 §9.3.2)', {
      todo: 'known bug: node:http hands every pipelined request over at once, and each goes upstream on its own connection: a GET pipelined behind a POST with a small body (read whole first, retries.bufferBytes) reaches the server before it',
    }, async () => {
      backend.script = {}
      const before = backend.requests().length
      const c = new RawClient(port)
      try {
        await c.connected
        c.send(
          'POST /first HTTP/1.1\r\nHost: app.test\r\nContent-Length: 5\r\n\r\nhello' +
            'GET /second HTTP/1.1\r\nHost: app.test\r\n\r\n',
        )
        assert.equal((await c.response('POST')).status, 200)
        assert.equal((await c.response('GET')).status, 200)
      } finally {
        c.destroy()
      }
      assert.deepEqual(
        backend
          .requests()
          .slice(before)
          .map((m) => m.target),
        ['/first', '/second'],
      )
    })
  })
}

function pick(r: ClientResponse): { status: number; body: string } {
  return { status: r.status, body: r.body }
}
