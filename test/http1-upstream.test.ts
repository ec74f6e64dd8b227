/**
 * The native HTTP/1.1 engine, server side (http1/agent.ts), against real servers on 127.0.0.1: node:http
 * ones where they behave, raw TCP ones where they must misbehave. Connection reuse (LIFO, the cap and
 * its queue, retirement), request framing, response framing, the misbehaviours (early answers, bytes
 * past a response, bytes on an idle connection, a silent close), timeouts to the millisecond, and
 * backpressure.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import { type AddressInfo, connect, type Socket } from 'node:net'
import { PassThrough, Readable } from 'node:stream'
import { after, describe, it } from 'node:test'
import { request } from 'undici'
import { SwitchyardError } from '../src/core/errors.js'
import { type AgentSettings, Http1Agent } from '../src/http1/agent.js'
import { type ConfigInput, createLoadBalancer } from '../src/index.js'
import { deadPort, startBackend } from './helpers/backends.js'
import {
  failure,
  ok,
  type RawHandlers,
  type RawRequest,
  type RawServer,
  send,
  withRawServer,
} from './helpers/upstream.js'
import { waitFor } from './helpers/wait.js'

const agents: Http1Agent[] = []

function agentFor(port: number, settings: Partial<AgentSettings> = {}): Http1Agent {
  const agent = new Http1Agent({
    host: '127.0.0.1',
    port,
    hostHeader: `127.0.0.1:${port}`,
    maxConnections: 4,
    keepAliveMs: 4000,
    connectMs: 2000,
    maxRequestsPerConnection: 0,
    ...settings,
  })
  agents.push(agent)
  return agent
}

after(async () => {
  await Promise.all(agents.map((a) => a.destroy()))
})

/**
 * Runs `run` with a raw server that answers as `setup` says and an agent to it (`setup.agent` over
 * agentFor's settings); the server is closed after, pass or fail.
 */
function withAgent(
  setup: RawHandlers & { readonly agent?: Partial<AgentSettings> },
  run: (server: RawServer, agent: Http1Agent) => Promise<void>,
): Promise<void> {
  return withRawServer(setup, (server) => run(server, agentFor(server.port, setup.agent)))
}

/**
 * Runs `run` with a load balancer in front of `server` (one pool, `p`, with `pool`'s settings) and its
 * URL, without a trailing slash; the load balancer is closed after, pass or fail.
 */
async function withProxy(
  server: RawServer,
  pool: Omit<NonNullable<ConfigInput['pools']>[number], 'name' | 'servers'>,
  run: (url: string) => Promise<void>,
): Promise<void> {
  const lb = createLoadBalancer({
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers: [`http://127.0.0.1:${server.port}`], ...pool }],
  })
  await lb.start()
  try {
    await run(`http://127.0.0.1:${lb.addresses().main!.port}`)
  } finally {
    await lb.close({ gracePeriodMs: 200 })
  }
}

/** Waits until the agent holds `idle` idle connections. */
function idle(agent: Http1Agent, count: number): Promise<void> {
  return waitFor(() => agent.stats.idle === count, `${count} idle connection(s)`)
}

describe('native engine: connection reuse', () => {
  it('reuses the same socket for sequential requests, and with two idle the most recently used one', async () => {
    await withAgent({}, async (server, agent) => {
      const first = send(agent, { path: '/1' })
      await waitFor(() => server.requests.length === 1, 'request 1')
      server.requests[0]!.conn.write(ok('one'))
      await first.rec.done
      assert.equal(first.rec.uses, 0)
      const second = send(agent, { path: '/2' })
      await waitFor(() => server.requests.length === 2, 'request 2')
      server.requests[1]!.conn.write(ok('two'))
      await second.rec.done
      assert.equal(second.rec.socket, first.rec.socket, 'the same socket')
      assert.equal(second.rec.uses, 1)
      assert.equal(server.connections.length, 1)
      // Two at once: two connections. The one answered last is the most recently used.
      const a = send(agent, { path: '/a' })
      const b = send(agent, { path: '/b' })
      await waitFor(() => server.requests.length === 4, 'requests a and b')
      const byPath = (p: string) => server.requests.find((r) => r.path === p) as RawRequest
      byPath('/b').conn.write(ok('b'))
      await b.rec.done
      byPath('/a').conn.write(ok('a'))
      await a.rec.done
      await idle(agent, 2)
      assert.notEqual(a.rec.socket, b.rec.socket)
      const c = send(agent, { path: '/c' })
      await waitFor(() => server.requests.length === 5, 'request c')
      byPath('/c').conn.write(ok('c'))
      await c.rec.done
      assert.equal(c.rec.socket, a.rec.socket, 'LIFO: the connection freed last')
    })
  })

  it('caps the connections and queues requests in order; an aborted waiting request leaves the queue', async () => {
    await withAgent(
      { onRequest: (r) => r.conn.write(ok(r.path)), agent: { maxConnections: 1 } },
      async (server, agent) => {
        // The first request is held by a server that does not answer: the other two wait for its connection.
        await withAgent({ agent: { maxConnections: 1 } }, async (hold, held) => {
          const a = send(held, { path: '/a' })
          const b = send(held, { path: '/b' })
          const c = send(held, { path: '/c' })
          await waitFor(() => hold.requests.length === 1, 'request a')
          assert.equal(held.stats.waiting, 2)
          const gone = new SwitchyardError('SWY_CLIENT_ABORTED', 'gone')
          b.call.abort(gone)
          assert.equal(await failure(b.rec.done), gone)
          assert.equal(held.stats.waiting, 1)
          hold.requests[0]!.conn.write(ok('a'))
          await a.rec.done
          await waitFor(() => hold.requests.length === 2, 'request c')
          hold.requests[1]!.conn.write(ok('c'))
          await c.rec.done
          assert.deepEqual(
            hold.requests.map((r) => r.path),
            ['/a', '/c'],
          )
          assert.equal(hold.connections.length, 1, 'one connection only')
          assert.equal(b.rec.errors, 1)
          // Many at once under the cap: served one after another, in order.
          const many = Array.from({ length: 5 }, (_, i) => send(agent, { path: `/${i}` }))
          const bodies = await Promise.all(many.map((m) => m.rec.done.then((r) => r.body)))
          assert.deepEqual(bodies, ['/0', '/1', '/2', '/3', '/4'])
          assert.equal(server.connections.length, 1)
        })
      },
    )
  })

  it("retires an idle connection before the server's Keep-Alive: timeout= runs out", async () => {
    const sockets: Socket[] = []
    const backend = createServer((req, res) => {
      req.resume()
      res.end('ok')
    })
    // Node announces `Keep-Alive: timeout=3`: kept 1 s (3 s less the 2 s margin), then closed by us.
    backend.keepAliveTimeout = 3000
    backend.on('connection', (s: Socket) => sockets.push(s))
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve))
    const port = (backend.address() as AddressInfo).port
    const agent = agentFor(port, { keepAliveMs: 60_000 })
    try {
      const r = send(agent)
      await r.rec.done
      assert.equal(r.rec.header('keep-alive'), 'timeout=3')
      await idle(agent, 1)
      const server = sockets[0]!
      let endedByUs = false
      server.on('end', () => {
        endedByUs = true
      })
      // Our FIN must come before the server's own 3 s close.
      await waitFor(() => endedByUs, 'the connection retired by the agent', { timeoutMs: 2800 })
      assert.equal(agent.stats.open, 0)
    } finally {
      backend.closeAllConnections()
      await new Promise((resolve) => backend.close(resolve))
    }
  })

  it('does not keep a connection whose server announces timeout=2 or less; keepAlive caps a longer hint', async () => {
    await withAgent(
      {
        onRequest: (r) => r.conn.write(ok('x', `Keep-Alive: timeout=${r.path === '/short' ? 2 : 30}\r\n`)),
        agent: { keepAliveMs: 200 },
      },
      async (server, agent) => {
        await send(agent, { path: '/short' }).rec.done
        await waitFor(() => server.connections[0]?.closed === true, 'the connection closed after its response')
        assert.equal(server.connections[0]!.clientEnded, true)
        await send(agent, { path: '/long' }).rec.done
        await idle(agent, 1)
        // keepAlive (200 ms) is shorter than the hint (30 s less 2 s).
        await waitFor(() => server.connections[1]?.closed === true, 'the connection retired after keepAlive')
        assert.equal(server.connections[1]!.clientEnded, true)
      },
    )
  })

  it('keepAlive 0: every request asks for Connection: close and has a connection of its own', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()), agent: { keepAliveMs: 0 } }, async (server, agent) => {
      for (let i = 0; i < 2; i++) {
        const r = send(agent, { closeAfter: true })
        await r.rec.done
        assert.equal(r.rec.uses, 0)
      }
      assert.equal(server.connections.length, 2)
      assert.deepEqual(
        server.requests.map((r) => r.headers.get('connection')),
        ['close', 'close'],
      )
      await waitFor(() => agent.stats.open === 0, 'no connection left')
    })
  })

  it('closes a connection after maxRequestsPerConnection requests, the last sent with Connection: close', async () => {
    await withAgent(
      { onRequest: (r) => r.conn.write(ok()), agent: { maxRequestsPerConnection: 3 } },
      async (server, agent) => {
        const uses: number[] = []
        for (let i = 0; i < 4; i++) {
          const r = send(agent, { path: `/${i}` })
          await r.rec.done
          uses.push(r.rec.uses)
          await waitFor(() => agent.stats.open === agent.stats.idle, 'the connection back, or closed')
        }
        assert.deepEqual(uses, [0, 1, 2, 0])
        assert.deepEqual(
          server.connections.map((c) => c.requests.map((r) => `${r.path}:${r.headers.get('connection') ?? ''}`)),
          [['/0:', '/1:', '/2:close'], ['/3:']],
        )
      },
    )
  })
})

describe('both engines: maxRequestsPerConnection', () => {
  for (const engine of ['native', 'node'] as const)
    for (const [max, split] of [
      [2, [2, 2, 1]],
      [1, [1, 1, 1, 1, 1]],
    ] as const) {
      it(`${engine}: ${max} request(s) per connection at most, the last with Connection: close`, async () => {
        await withRawServer({ onRequest: (r) => r.conn.write(ok()) }, (server) =>
          withProxy(server, { engine, connections: { maxRequestsPerConnection: max } }, async (url) => {
            for (let i = 0; i < 5; i++) {
              const res = await request(`${url}/`)
              assert.equal(await res.body.text(), 'ok')
            }
            assert.deepEqual(
              server.connections.map((c) => c.requests.length),
              split,
            )
            for (const c of server.connections)
              if (c.requests.length === max) assert.equal(c.requests.at(-1)?.headers.get('connection'), 'close')
          }),
        )
      })
    }
})

describe('native engine: request framing', () => {
  it('re-frames a streamed body of unknown length as chunked', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      const body = Readable.from([Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')])
      await send(agent, { method: 'POST', headers: ['content-type', 'text/plain'], body }).rec.done
      const req = server.requests[0]!
      assert.equal(req.headers.get('transfer-encoding'), 'chunked')
      assert.equal(req.headers.has('content-length'), false)
      assert.equal(req.rawBody.toString(), '2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n')
      assert.equal(req.headers.get('host'), `127.0.0.1:${server.port}`, 'Host added when the request has none')
    })
  })

  it("forwards a streamed body raw under the client's Content-Length, and refuses one that overruns it", async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      const body = Readable.from([Buffer.from('ab'), Buffer.from('cd')])
      await send(agent, { method: 'PUT', headers: ['Content-Length', '4', 'Host', 'app'], body }).rec.done
      const req = server.requests[0]!
      assert.equal(req.headers.get('content-length'), '4')
      assert.equal(req.headers.has('transfer-encoding'), false)
      assert.equal(req.headers.get('host'), 'app')
      assert.equal(req.rawBody.toString(), 'abcd')
      const long = Readable.from([Buffer.from('abcdef')])
      const err = await failure(send(agent, { method: 'PUT', headers: ['content-length', '4'], body: long }).rec.done)
      assert.equal((err as SwitchyardError).code, 'SWY_CLIENT_ABORTED')
    })
  })

  it('streams an async iterable body (HTTP/2 clients), raw or chunked', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      async function* parts(): AsyncGenerator<Buffer> {
        yield Buffer.from('one,')
        await new Promise((r) => setImmediate(r))
        yield Buffer.from('two')
      }
      await send(agent, { method: 'POST', headers: ['content-length', '7'], body: parts() }).rec.done
      await send(agent, { method: 'POST', body: parts() }).rec.done
      assert.deepEqual(
        server.requests.map((r) => r.rawBody.toString()),
        ['one,two', '4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n'],
      )
      async function* failing(): AsyncGenerator<Buffer> {
        yield Buffer.from('x')
        throw new Error('the client went away')
      }
      const err = await failure(send(agent, { method: 'POST', body: failing() }).rec.done)
      assert.equal((err as SwitchyardError).code, 'SWY_CLIENT_ABORTED')
    })
  })

  it('a body that fails, ends short of its Content-Length or is cut off is the client’s doing', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      const broken = new PassThrough()
      const a = send(agent, { method: 'POST', body: broken })
      broken.write('some')
      broken.destroy(new Error('ECONNRESET from the client'))
      const short = Readable.from([Buffer.from('ab')])
      const b = send(agent, { method: 'POST', headers: ['content-length', '5'], body: short })
      const cut = new PassThrough()
      const c = send(agent, { method: 'POST', body: cut })
      cut.write('x')
      setImmediate(() => cut.destroy())
      for (const r of [a, b, c]) {
        const err = (await failure(r.rec.done)) as SwitchyardError
        assert.equal(err.code, 'SWY_CLIENT_ABORTED', err.message)
      }
      // An already-consumed body: nothing to send, and it must not hang.
      const done = new PassThrough()
      done.end()
      done.resume()
      await new Promise((r) => done.once('end', r))
      await send(agent, { method: 'POST', body: done }).rec.done
      assert.equal(server.requests.at(-1)?.rawBody.toString(), '0\r\n\r\n')
    })
  })

  it('pauses a streamed body while the server does not read, and resumes when it drains', async () => {
    let reading = false
    await withAgent({ onRequest: (r) => r.conn.write(ok(String(r.rawBody.length))) }, async (server, agent) => {
      const body = new PassThrough({ highWaterMark: 64 * 1024 })
      const { rec } = send(agent, { method: 'POST', headers: ['content-length', String(32 * 1024 * 1024)], body })
      await waitFor(() => server.connections.length === 1, 'the connection')
      const upstream = server.connections[0]!.socket
      upstream.pause()
      const block = Buffer.alloc(1024 * 1024, 0x62)
      let pushed = 0
      // Write until the body stream itself pushes back: the engine stopped reading it.
      for (let more = true; more && pushed < 32; ) {
        more = body.write(block)
        pushed++
      }
      await waitFor(() => body.writableNeedDrain && body.isPaused(), 'the source paused by the engine')
      assert.ok(pushed < 32, `${pushed} MiB accepted while the server read nothing`)
      reading = true
      upstream.resume()
      for (; pushed < 32; pushed++) if (!body.write(block)) await new Promise((r) => body.once('drain', r))
      body.end()
      await rec.done
      assert.equal(rec.body, String(32 * 1024 * 1024))
      assert.equal(reading, true)
    })
  })

  it('writes the head and a Buffer body in one write to the socket', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      let writes = 0
      type Write = (...args: unknown[]) => unknown
      const count = (socket: Socket) => {
        const s = socket as unknown as { _write: Write; _writev: Write }
        const write = s._write
        const writev = s._writev
        s._write = function (this: unknown, ...args: unknown[]) {
          writes++
          return write.apply(this, args)
        }
        s._writev = function (this: unknown, ...args: unknown[]) {
          writes++
          return writev.apply(this, args)
        }
      }
      const body = Buffer.from('{"small":"body"}')
      await send(agent, { method: 'POST', headers: ['content-length', String(body.length)], body }, { onSocket: count })
        .rec.done
      assert.equal(writes, 1, 'one write: head and body together')
      assert.equal(server.requests[0]!.rawBody.toString(), '{"small":"body"}')
    })
  })

  it('refuses a head that would smuggle a header, before taking a connection', async () => {
    await withAgent({}, async (_server, agent) => {
      const err = await failure(send(agent, { headers: ['x-a', 'b\r\nx-injected: 1'] }).rec.done)
      assert.equal((err as SwitchyardError).code, 'SWY_INTERNAL')
      assert.equal(agent.stats.open, 0)
    })
  })
})

describe('native engine: response framing', () => {
  it('skips interim 1xx responses', async () => {
    await withAgent(
      {
        onRequest: (r) =>
          r.conn.write(`HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n${ok('final')}`),
      },
      async (_server, agent) => {
        const { rec } = send(agent)
        await rec.done
        assert.equal(rec.heads, 1)
        assert.equal(rec.status, 200)
        assert.equal(rec.body, 'final')
      },
    )
  })

  it('reads no body for HEAD, 204 and 304, whatever their Content-Length', async () => {
    await withAgent(
      {
        onRequest: (r) =>
          r.conn.write(
            r.method === 'HEAD'
              ? 'HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n'
              : r.path === '/204'
                ? 'HTTP/1.1 204 No Content\r\n\r\n'
                : 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n',
          ),
      },
      async (server, agent) => {
        const head = send(agent, { method: 'HEAD' }).rec
        await head.done
        assert.equal(head.body, '')
        assert.equal(server.requests[0]!.headers.get('connection'), 'close', 'not kept after HEAD')
        for (const path of ['/204', '/304']) {
          const r = send(agent, { path }).rec
          await r.done
          assert.equal(r.body, '')
          assert.equal(r.status, Number(path.slice(1)))
        }
      },
    )
  })

  it('reads a close-delimited body to the end, and does not reuse its connection', async () => {
    await withAgent(
      {
        onRequest: (r) => {
          r.conn.write('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nhello, ')
          setImmediate(() => {
            r.conn.write('world')
            r.conn.socket.end()
          })
        },
      },
      async (_server, agent) => {
        const { rec } = send(agent)
        await rec.done
        assert.equal(rec.body, 'hello, world')
        await waitFor(() => agent.stats.open === 0, 'the connection closed')
      },
    )
  })

  it('relays chunked trailers, and slices a Content-Length body out of the socket chunks', async () => {
    await withAgent(
      {
        onRequest: (r) =>
          r.conn.write(
            r.path === '/chunked'
              ? 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 42\r\n\r\n'
              : ok('sliced'),
          ),
      },
      async (_server, agent) => {
        const chunked = send(agent, { path: '/chunked' }).rec
        await chunked.done
        assert.equal(chunked.body, 'abcde')
        assert.deepEqual(chunked.trailers, ['X-Sum', '42'])
        await idle(agent, 1)
        const sliced = send(agent).rec
        await sliced.done
        assert.equal(sliced.body, 'sliced')
        assert.deepEqual(sliced.trailers, [])
        assert.equal(sliced.uses, 1, 'a chunked response leaves its connection reusable')
      },
    )
  })

  it('holds the body while the handler pauses, and delivers it on resume', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok('paused body')) }, async (_server, agent) => {
      const { call, rec } = send(agent, {}, { onHead: () => false })
      await waitFor(() => rec.heads === 1, 'the head')
      await new Promise((r) => setImmediate(r))
      assert.equal(rec.chunks.length, 0, 'nothing before resume()')
      assert.equal(rec.ends, 0)
      call.resume()
      await rec.done
      assert.equal(rec.body, 'paused body')
    })
  })
})

describe('native engine: misbehaving servers', () => {
  it('relays an early answer, stops sending the body, and does not reuse the connection', async () => {
    await withAgent(
      {
        onHead: (h) => {
          if (h.path === '/upload') h.conn.write('HTTP/1.1 413 Payload Too Large\r\nContent-Length: 8\r\n\r\ntoo big!')
        },
        onRequest: (r) => {
          if (r.path !== '/upload') r.conn.write(ok())
        },
      },
      async (server, agent) => {
        const body = new PassThrough()
        body.write('first part, ')
        const { rec } = send(agent, { method: 'POST', path: '/upload', body })
        await rec.done
        assert.equal(rec.status, 413)
        assert.equal(rec.body, 'too big!')
        assert.equal(body.listenerCount('data'), 0, 'the body is no longer read')
        assert.equal(body.isPaused(), true)
        await waitFor(() => server.connections[0]?.closed === true, 'the connection closed')
        const next = send(agent).rec
        await next.done
        assert.equal(next.uses, 0, 'a new connection')
      },
    )
  })

  it('keeps a connection whose response began before the body ended, once the body was sent whole', async () => {
    await withAgent(
      {
        onHead: (h) => {
          if (h.path === '/duplex') h.conn.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n')
        },
        onRequest: (r) => r.conn.write(r.path === '/duplex' ? '4\r\nlast\r\n0\r\n\r\n' : ok()),
      },
      async (_server, agent) => {
        const body = new PassThrough()
        body.write('a')
        const { rec } = send(agent, { method: 'POST', path: '/duplex', body })
        await waitFor(() => rec.heads === 1, 'the response head, before the body ended')
        body.end('b')
        await rec.done
        assert.equal(rec.body, 'firstlast')
        await idle(agent, 1)
        const next = send(agent).rec
        await next.done
        assert.equal(next.uses, 1, 'the same connection')
      },
    )
  })

  for (const [kind, answer] of [
    ['Content-Length', `${ok('hi')}HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil`],
    [
      'chunked',
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Le',
    ],
    ['204', 'HTTP/1.1 204 No Content\r\n\r\nstray body'],
  ] as const) {
    it(`closes a connection that carried bytes past a complete response (${kind}); they reach no other response`, async () => {
      let n = 0
      await withAgent({ onRequest: (r) => r.conn.write(n++ === 0 ? answer : ok('clean')) }, async (server, agent) => {
        const first = send(agent).rec
        await first.done
        assert.equal(first.body, kind === '204' ? '' : 'hi')
        await waitFor(() => server.connections[0]?.closed === true, 'the connection closed')
        const next = send(agent).rec
        await next.done
        assert.equal(next.body, 'clean')
        assert.equal(next.uses, 0, 'a new connection')
      })
    })
  }

  it('closes an idle connection that receives bytes', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok()) }, async (server, agent) => {
      await send(agent).rec.done
      await idle(agent, 1)
      server.connections[0]!.write('HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n')
      await waitFor(() => agent.stats.open === 0, 'the idle connection closed')
      const next = send(agent).rec
      await next.done
      assert.equal(next.status, 200)
      assert.equal(next.uses, 0)
    })
  })

  it('a 101 to a request that asked for no upgrade is SWY_UPSTREAM_PROTOCOL; so is a malformed response', async () => {
    await withAgent(
      {
        onRequest: (r) =>
          r.conn.write(
            r.path === '/101'
              ? 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n'
              : 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab',
          ),
      },
      async (_server, agent) => {
        for (const path of ['/101', '/bad']) {
          const err = await failure(send(agent, { path }).rec.done)
          assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_PROTOCOL', path)
        }
      },
    )
  })

  it('a connection closed mid-body is SWY_UPSTREAM_RESET', async () => {
    await withAgent(
      {
        onRequest: (r) => {
          r.conn.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial')
          setImmediate(() => r.conn.socket.destroy())
        },
      },
      async (_server, agent) => {
        const { rec } = send(agent)
        const err = await failure(rec.done)
        assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_RESET')
        assert.equal(rec.body, 'partial')
        assert.equal(rec.errors, 1)
      },
    )
  })
})

describe('native engine: the keep-alive race', () => {
  it('a reused connection closed before any byte of the answer is SWY_UPSTREAM_RESET, with the facts to resend', async () => {
    // The server closes a connection when its second request arrives, as if its idle timer had fired.
    await withAgent(
      {
        onRequest: (r) => (r.conn.requests.length === 2 ? r.conn.socket.destroy() : r.conn.write(ok())),
      },
      async (_server, agent) => {
        await send(agent).rec.done
        await idle(agent, 1)
        let readAtSend = -1
        const { rec } = send(agent, {}, { onSocket: (s) => (readAtSend = s.bytesRead) })
        const err = await failure(rec.done)
        assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_RESET')
        assert.equal(rec.uses, 1, 'a reused connection')
        assert.equal(rec.socket?.bytesRead, readAtSend, 'no byte of a response')
      },
    )
  })

  it('through the proxy, the request is sent again on a new connection and answered', async () => {
    const onRequest = (r: RawRequest) =>
      r.conn.requests.length === 2 ? r.conn.socket.destroy() : r.conn.write(ok(r.path))
    await withRawServer({ onRequest }, (server) =>
      withProxy(server, { engine: 'native' }, async (url) => {
        let races = 0
        const count = () => {
          races++
        }
        subscribe('switchyard:keepalive:race', count)
        try {
          const first = await request(`${url}/first`)
          assert.equal(await first.body.text(), '/first')
          await waitFor(() => server.connections[0]?.requests.length === 1, 'the first connection idle')
          const res = await request(`${url}/second`, { method: 'POST', body: 'replayable' })
          assert.equal(res.statusCode, 200)
          assert.equal(await res.body.text(), '/second')
          assert.equal(races, 1)
          assert.equal(server.connections.length, 2)
        } finally {
          unsubscribe('switchyard:keepalive:race', count)
        }
      }),
    )
  })
})

describe('native engine: timeouts', () => {
  /** Within the precision the engine promises: 50 ms or 5 %, whichever is larger. */
  function assertOnTime(elapsedMs: number, expectedMs: number, what: string): void {
    const slack = Math.max(50, expectedMs * 0.05)
    assert.ok(
      elapsedMs >= expectedMs && elapsedMs <= expectedMs + slack,
      `${what} fired after ${elapsedMs.toFixed(1)} ms, expected ${expectedMs} to ${expectedMs + slack}`,
    )
  }

  it('fires the headers timeout 2 s after the request was written, to the millisecond', async () => {
    await withAgent({}, async (_server, agent) => {
      const { rec } = send(agent, { headersTimeoutMs: 2000 })
      const err = await failure(rec.done)
      const elapsed = performance.now() - rec.socketAtMs
      assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_TIMEOUT')
      assertOnTime(elapsed, 2000, 'the headers timeout')
    })
  })

  it('fires the body timeout 2 s after the last byte', async () => {
    await withAgent(
      {
        onRequest: (r) => {
          r.conn.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst')
          setTimeout(() => r.conn.write(' second'), 100)
        },
      },
      async (_server, agent) => {
        const { rec } = send(agent, { bodyTimeoutMs: 2000 })
        const err = await failure(rec.done)
        const elapsed = performance.now() - rec.lastDataAtMs
        assert.equal(rec.body, 'first second')
        assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_BODY_TIMEOUT')
        assertOnTime(elapsed, 2000, 'the body timeout')
      },
    )
  })

  it('through the proxy, responseHeaders 2s answers 504 within [2000, 2100] ms', async () => {
    await withRawServer({}, (server) =>
      withProxy(server, { engine: 'native', timeouts: { responseHeaders: '2s' } }, async (url) => {
        const started = performance.now()
        const res = await request(`${url}/`, { headersTimeout: 10_000 })
        const elapsed = performance.now() - started
        assert.equal(res.statusCode, 504)
        assert.match(await res.body.text(), /SWY_UPSTREAM_TIMEOUT/)
        assertOnTime(elapsed, 2000, 'the proxy’s 504')
      }),
    )
  })

  it('does not fire the headers timeout while a streamed body is being read by the server', async () => {
    await withAgent({ onRequest: (r) => r.conn.write(ok('got it')) }, async (_server, agent) => {
      const body = new PassThrough()
      const { rec } = send(agent, { method: 'POST', body, headersTimeoutMs: 300 })
      // The upload takes longer than the headers timeout; the server reads it all along.
      for (let i = 0; i < 5; i++) {
        body.write(`part ${i};`)
        await new Promise((r) => setTimeout(r, 100))
      }
      body.end()
      await rec.done
      assert.equal(rec.body, 'got it')
    })
  })
})

describe('native engine: connecting', () => {
  it('a refused connection is SWY_UPSTREAM_CONNECT', async () => {
    const agent = agentFor(await deadPort())
    const err = await failure(send(agent).rec.done)
    assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_CONNECT')
    assert.match(err.message, /ECONNREFUSED/)
  })

  it('a connect that does not complete in connectMs is SWY_UPSTREAM_CONNECT_TIMEOUT', async (t) => {
    // A listener with a full accept queue: the kernel drops further SYNs, so connects hang. Node accepts
    // every connection itself; a Python listener that never accepts does not.
    const python = spawn('python3', [
      '-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\nsys.stdin.read()',
    ])
    python.on('error', () => {})
    const port = await new Promise<number | undefined>((resolve) => {
      python.once('error', () => resolve(undefined))
      python.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    })
    if (port === undefined) return t.skip('python3 is not available')
    const fill = connect(port, '127.0.0.1')
    fill.on('error', () => {})
    try {
      await new Promise((resolve) => fill.once('connect', resolve))
      const agent = agentFor(port, { connectMs: 300 })
      const started = performance.now()
      const err = await failure(send(agent).rec.done)
      assert.equal((err as SwitchyardError).code, 'SWY_UPSTREAM_CONNECT_TIMEOUT')
      assert.ok(performance.now() - started >= 300)
    } finally {
      fill.destroy()
      python.stdin.end()
      python.kill()
    }
  })
})

describe('native engine: backpressure and the end', () => {
  it('a handler that stops taking the body stops the server: 64 MiB are not buffered', async () => {
    const TOTAL = 64 * 1024 * 1024
    const CHUNK = Buffer.alloc(256 * 1024, 0x61)
    let written = 0
    let blocked = false
    const backend = await startBackend('big', (req: IncomingMessage, res: ServerResponse) => {
      req.resume()
      res.writeHead(200, { 'content-length': String(TOTAL) })
      const more = (): void => {
        blocked = false
        while (written < TOTAL) {
          written += CHUNK.length
          if (!res.write(CHUNK)) {
            blocked = true
            res.once('drain', more)
            return
          }
        }
        res.end()
      }
      more()
    })
    const agent = agentFor(backend.port)
    try {
      let taken = 0
      let pausedAt = 0
      const { call, rec } = send(
        agent,
        {},
        {
          onData: (c) => {
            taken += c.length
            if (pausedAt === 0 && taken > 1024 * 1024) {
              pausedAt = performance.now()
              return false
            }
            return true
          },
          discard: true,
        },
      )
      await waitFor(() => pausedAt > 0 && blocked, 'the server blocked behind the paused handler')
      // Still held back a while later: nothing reads the socket for us. (The kernel may grow the
      // socket buffers meanwhile and let the server write a little more: bounded, not 64 MiB.)
      await waitFor(() => performance.now() - pausedAt > 300, 'some time paused', { intervalMs: 20 })
      assert.ok(written < 24 * 1024 * 1024, `${written} bytes sent by the server while paused`)
      call.resume()
      await rec.done
      assert.equal(taken, TOTAL)
    } finally {
      await backend.close()
    }
  })

  it('abort() reports its error once and closes the connection; a second abort and a late end are ignored', async () => {
    await withAgent(
      {
        onRequest: (r) => r.conn.write('HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf'),
      },
      async (server, agent) => {
        const { call, rec } = send(agent)
        await waitFor(() => rec.chunks.length === 1, 'the first bytes')
        const err = new SwitchyardError('SWY_CLIENT_ABORTED')
        call.abort(err)
        call.abort(new Error('again'))
        assert.equal(await failure(rec.done), err)
        assert.equal(call.active, false)
        await waitFor(() => server.connections[0]?.closed === true, 'the connection closed')
        server.connections[0]!.write('more bytes')
        assert.equal(rec.errors, 1)
        assert.equal(rec.ends, 0)
      },
    )
  })

  it('close() lets in-flight and queued requests finish and refuses new ones; destroy() fails them', async () => {
    await withAgent({ agent: { maxConnections: 1 } }, async (server, agent) => {
      const inFlight = send(agent, { path: '/1' })
      const queued = send(agent, { path: '/2' })
      await waitFor(() => server.requests.length === 1, 'the first request')
      let closed = false
      const closing = agent.close().then(() => {
        closed = true
      })
      const refused = await failure(send(agent).rec.done)
      assert.equal((refused as SwitchyardError).code, 'SWY_UPSTREAM_RESET')
      server.requests[0]!.conn.write(ok('1'))
      await inFlight.rec.done
      await waitFor(() => server.requests.length === 2, 'the queued request')
      assert.equal(closed, false)
      server.requests[1]!.conn.write(ok('2'))
      assert.equal((await queued.rec.done).body, '2')
      await closing
      assert.equal(agent.stats.open, 0)

      const other = agentFor(server.port, { maxConnections: 1 })
      const a = send(other, { path: '/a' })
      const b = send(other, { path: '/b' })
      await waitFor(() => server.requests.length === 3, 'request a')
      await other.destroy()
      for (const r of [a, b]) assert.equal(((await failure(r.rec.done)) as SwitchyardError).code, 'SWY_SHUTTING_DOWN')
    })
  })
})
