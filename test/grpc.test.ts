/**
 * gRPC through Switchyard, end to end, with @grpc/grpc-js as the real client and the real servers: an
 * `http2` listener in front of `protocol: h2c` (and `h2` over TLS) pools. Unary and the three streaming
 * kinds, status codes and trailers (binary metadata too), a deadline that runs out inside Switchyard,
 * cancellation both ways, per-call balancing over one client connection, Switchyard's own errors in
 * gRPC form, and the `grpc` health check.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { connect as h2connect, constants as h2constants } from 'node:http2'
import { type AddressInfo, createServer as createNetServer } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import {
  EchoClient,
  type EchoClientType,
  type GrpcBackend,
  grpc,
  grpcBackend,
  type Json,
  unary,
} from './helpers/grpc.js'
import { h2Frame } from './helpers/h2-frames.js'
import { waitFor } from './helpers/wait.js'

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/tls/${name}`, import.meta.url))

function grpcConfig(servers: string[], pool: Partial<ConfigInput['pools'][number]> = {}): ConfigInput {
  return {
    logging: { accessLog: false },
    listeners: [{ name: 'g', listen: '127.0.0.1:0', http2: true, routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', protocol: 'h2c', balance: { algorithm: 'round-robin' }, servers, ...pool }],
  }
}

async function startLb(config: ConfigInput): Promise<{ lb: LoadBalancer; address: string }> {
  const lb = createLoadBalancer(config)
  await lb.start()
  return { lb, address: `127.0.0.1:${Object.values(lb.addresses())[0]?.port}` }
}

function client(address: string): EchoClientType {
  return new EchoClient(address, grpc.credentials.createInsecure()) as EchoClientType
}

describe('gRPC to h2c servers', () => {
  let backends: GrpcBackend[]
  let lb: LoadBalancer
  let c: EchoClientType

  before(async () => {
    backends = await Promise.all(['a', 'b', 'c'].map((id) => grpcBackend(id)))
    const started = await startLb(grpcConfig(backends.map((b) => `http://127.0.0.1:${b.port}`)))
    lb = started.lb
    c = client(started.address)
  })

  after(async () => {
    c.close()
    await lb.close({ gracePeriodMs: 200 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('balances unary calls on one client connection per call, across the 3 servers', async () => {
    const seen: Record<string, number> = {}
    for (let i = 0; i < 30; i++) {
      const metadata = new grpc.Metadata()
      metadata.set('x-echo', `m${i}`)
      const { value, headers } = await unary(c, { i }, { metadata })
      assert.deepEqual(value.echo, { i })
      assert.deepEqual(value.meta, [`m${i}`])
      assert.equal(headers?.get('x-server')[0], value.server)
      seen[value.server as string] = (seen[value.server as string] ?? 0) + 1
    }
    // Round-robin per call: 10 each, although the client holds one HTTP/2 connection.
    assert.deepEqual(seen, { a: 10, b: 10, c: 10 })
  })

  it('relays status codes, messages and trailing metadata, binary metadata included', async () => {
    const err = (await unary(c, { fail: { code: grpc.status.NOT_FOUND, details: 'no such thing, ünïcode' } }).then(
      () => assert.fail('the call succeeded'),
      (e: grpc.ServiceError) => e,
    )) as grpc.ServiceError
    assert.equal(err.code, grpc.status.NOT_FOUND)
    assert.equal(err.details, 'no such thing, ünïcode')
    assert.deepEqual(err.metadata.get('x-trailer'), ['from-server'])
    assert.deepEqual(err.metadata.get('x-trailer-bin'), [Buffer.from([0, 1, 2, 255])])
  })

  it('carries server streaming, client streaming and a bidi stream of 10,000 messages', async () => {
    const streamed: Json[] = []
    await new Promise<void>((resolve, reject) => {
      const call = (c.ServerStream as (r: Json) => grpc.ClientReadableStream<Json>)({ count: 500 })
      call.on('data', (m: Json) => streamed.push(m))
      call.on('error', reject)
      call.on('end', () => resolve())
    })
    assert.equal(streamed.length, 500)
    assert.deepEqual(
      streamed.map((m) => m.i),
      Array.from({ length: 500 }, (_, i) => i),
    )

    const summed = await new Promise<Json>((resolve, reject) => {
      const call = (c.ClientStream as (cb: (e: Error | null, v: Json) => void) => grpc.ClientWritableStream<Json>)(
        (e, v) => (e ? reject(e) : resolve(v)),
      )
      for (let n = 1; n <= 1000; n++) call.write({ n })
      call.end()
    })
    assert.equal(summed.sum, 500_500)
    assert.equal(summed.messages, 1000)

    const total = 10_000
    const echoed = await new Promise<number[]>((resolve, reject) => {
      const got: number[] = []
      const call = (c.Bidi as () => grpc.ClientDuplexStream<Json, Json>)()
      call.on('data', (m: Json) => got.push(m.seq as number))
      call.on('error', reject)
      call.on('end', () => resolve(got))
      let seq = 0
      const pump = () => {
        while (seq < total) if (!call.write({ seq: seq++ })) return void call.once('drain', pump)
        call.end()
      }
      pump()
    })
    assert.equal(echoed.length, total)
    assert.ok(
      echoed.every((s, i) => s === i),
      'the bidi stream kept its order',
    )
  })

  it('propagates a client cancellation to the server', async () => {
    const target = backends.map((b) => b.cancelled)
    const call = (c.Bidi as () => grpc.ClientDuplexStream<Json, Json>)()
    const first = new Promise<void>((resolve) => call.once('data', () => resolve()))
    call.on('error', () => {})
    call.write({ seq: 0 })
    await first
    call.cancel()
    await waitFor(
      () => backends.some((b, i) => b.cancelled > (target[i] as number)),
      'the server to see the cancellation',
    )
  })

  it('takes grpc-timeout 0 as already past, and one longer than a timer can wait as none', async () => {
    const session = h2connect(`http://${lbAddress(lb)}`)
    try {
      const call = async (timeout: string) => {
        const stream = session.request({
          ':method': 'POST',
          ':path': '/test.Echo/Unary',
          'content-type': 'application/grpc',
          te: 'trailers',
          'grpc-timeout': timeout,
        })
        const body = Buffer.from(JSON.stringify({ t: timeout }))
        const frame = Buffer.alloc(5)
        frame.writeUInt32BE(body.length, 1)
        stream.end(Buffer.concat([frame, body]))
        return (await responseOf(stream)).trailers['grpc-status']
      }
      assert.equal(await call('0S'), String(grpc.status.DEADLINE_EXCEEDED))
      // 99,999,999 hours: past Node's longest timer (about 24.8 days), so, in effect, no deadline.
      assert.equal(await call('99999999H'), String(grpc.status.OK))
    } finally {
      session.close()
    }
  })

  it('ends a call whose grpc-timeout runs out inside Switchyard with DEADLINE_EXCEEDED', async () => {
    // A raw HTTP/2 client, so that only Switchyard enforces the deadline (grpc-js would also cancel).
    const session = h2connect(`http://${lbAddress(lb)}`)
    try {
      const stream = session.request({
        ':method': 'POST',
        ':path': '/test.Echo/Unary',
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': '150m',
      })
      const body = Buffer.from(JSON.stringify({ delayMs: 5000 }))
      const frame = Buffer.alloc(5)
      frame.writeUInt32BE(body.length, 1)
      stream.end(Buffer.concat([frame, body]))
      const { headers, trailers, rstCode } = await responseOf(stream)
      assert.equal(rstCode, 0)
      assert.equal(headers[':status'], 200)
      assert.match(String(headers['content-type']), /^application\/grpc/)
      assert.equal(trailers['grpc-status'], String(grpc.status.DEADLINE_EXCEEDED))
      assert.match(String(trailers['grpc-message']), /SWY_TIMEOUT/)
    } finally {
      session.close()
    }
  })
})

describe('gRPC errors and health', () => {
  it("answers Switchyard's own errors in gRPC form: UNAVAILABLE when no server can be reached", async () => {
    const { lb, address } = await startLb(
      grpcConfig(['http://127.0.0.1:1'], { retries: { attempts: 0 }, ejectOnConnectFailure: false }),
    )
    const c = client(address)
    try {
      const err = (await unary(c, {}).then(
        () => assert.fail('the call succeeded'),
        (e: grpc.ServiceError) => e,
      )) as grpc.ServiceError
      assert.equal(err.code, grpc.status.UNAVAILABLE)
      assert.match(err.details, /SWY_UPSTREAM_CONNECT/)
    } finally {
      c.close()
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('relays a server cancellation as CANCELLED, before and after the response head', async () => {
    // A server that writes its HTTP/2 frames by hand (node:http2 would end a stream before it resets
    // it): the first stream is reset with CANCEL at once, the second after a response head.
    const server = createNetServer((socket) => {
      let buffered = Buffer.alloc(0)
      let prefaceSeen = false
      let streams = 0
      socket.on('error', () => {})
      socket.write(h2Frame(4, 0, 0, Buffer.alloc(0))) // SETTINGS
      socket.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk])
        if (!prefaceSeen) {
          if (buffered.length < 24) return
          buffered = buffered.subarray(24)
          prefaceSeen = true
        }
        while (buffered.length >= 9) {
          const length = buffered.readUIntBE(0, 3)
          if (buffered.length < 9 + length) return
          const type = buffered[3] as number
          const flags = buffered[4] as number
          const id = buffered.readUInt32BE(5) & 0x7fffffff
          buffered = buffered.subarray(9 + length)
          if (type === 4 && (flags & 1) === 0) socket.write(h2Frame(4, 1, 0, Buffer.alloc(0))) // SETTINGS ACK
          if (type !== 1) continue
          const cancel = Buffer.alloc(4)
          cancel.writeUInt32BE(h2constants.NGHTTP2_CANCEL)
          // HEADERS (END_HEADERS): `:status: 200` is entry 8 of the HPACK static table.
          if (++streams === 2) socket.write(h2Frame(1, 4, id, Buffer.from([0x88])))
          socket.write(h2Frame(3, 0, id, cancel)) // RST_STREAM
        }
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as AddressInfo).port
    const { lb, address } = await startLb(grpcConfig([`http://127.0.0.1:${port}`], { retries: { attempts: 0 } }))
    const session = h2connect(`http://${address}`)
    try {
      for (const path of ['/test.Echo/Early', '/test.Echo/Late']) {
        const stream = session.request({
          ':method': 'POST',
          ':path': path,
          'content-type': 'application/grpc',
          te: 'trailers',
        })
        stream.end(Buffer.alloc(5))
        const r = await responseOf(stream)
        const outcome = { status: r.trailers['grpc-status'], rst: r.rstCode }
        // Before the head: Switchyard answers CANCELLED itself; after it, the client's stream is reset
        // with CANCEL, as the server's was.
        if (path.endsWith('Early')) assert.deepEqual(outcome, { status: String(grpc.status.CANCELLED), rst: 0 })
        else assert.deepEqual(outcome, { status: undefined, rst: h2constants.NGHTTP2_CANCEL })
      }
    } finally {
      session.close()
      await lb.close({ gracePeriodMs: 200 })
      server.close()
    }
  })

  it('takes a server the grpc health check finds NOT_SERVING out of rotation, and asks about the named service', async () => {
    const backends = await Promise.all(['a', 'b'].map((id) => grpcBackend(id)))
    ;(backends[1] as GrpcBackend).health = 2 // NOT_SERVING
    const { lb, address } = await startLb(
      grpcConfig(
        backends.map((b) => `http://127.0.0.1:${b.port}`),
        { healthCheck: { type: 'grpc', service: 'test.Echo', interval: '20ms', timeout: '1s', rise: 1, fall: 1 } },
      ),
    )
    const c = client(address)
    try {
      await waitFor(() => (backends[1] as GrpcBackend).healthAsked.length >= 2, 'health checks of b')
      assert.ok((backends[1] as GrpcBackend).healthAsked.every((s) => s === 'test.Echo'))
      const seen = new Set<string>()
      for (let i = 0; i < 10; i++) seen.add((await unary(c, {})).value.server as string)
      assert.deepEqual([...seen], ['a'])
      // Back to SERVING: it takes calls again.
      ;(backends[1] as GrpcBackend).health = 1
      await waitFor(async () => (await unary(c, {})).value.server === 'b', 'b back in rotation')
    } finally {
      c.close()
      await lb.close({ gracePeriodMs: 200 })
      await Promise.all(backends.map((b) => b.close()))
    }
  })
})

describe('gRPC to h2 servers (TLS, ALPN)', () => {
  it('calls a TLS gRPC server through a protocol h2 pool, verified against its CA', async () => {
    const backend = await grpcBackend(
      'tls',
      grpc.ServerCredentials.createSsl(null, [
        { cert_chain: readFileSync(fixture('cert.pem')), private_key: readFileSync(fixture('key.pem')) },
      ]),
    )
    const { lb, address } = await startLb(
      grpcConfig([`https://localhost:${backend.port}`], {
        protocol: 'h2',
        tls: { ca: fixture('cert.pem') },
        healthCheck: { type: 'grpc', interval: '50ms', rise: 1, fall: 1 },
      }),
    )
    const c = client(address)
    try {
      await waitFor(() => backend.healthAsked.length > 0, 'a health check over TLS')
      const { value } = await unary(c, { hello: 'tls' })
      assert.equal(value.server, 'tls')
      assert.deepEqual(value.echo, { hello: 'tls' })
    } finally {
      c.close()
      await lb.close({ gracePeriodMs: 200 })
      await backend.close()
    }
  })
})

function lbAddress(lb: LoadBalancer): string {
  return `127.0.0.1:${Object.values(lb.addresses())[0]?.port}`
}

/** A raw HTTP/2 response once its stream closed: its head, its trailers and the RST_STREAM code (0: none). */
function responseOf(
  stream: ReturnType<ReturnType<typeof h2connect>['request']>,
): Promise<{ headers: Record<string, unknown>; trailers: Record<string, unknown>; rstCode: number }> {
  return new Promise((resolve) => {
    let headers: Record<string, unknown> = {}
    let trailers: Record<string, unknown> = {}
    stream.on('response', (h) => {
      headers = h
    })
    stream.on('trailers', (t) => {
      trailers = t
    })
    stream.on('error', () => {}) // the code is read on close
    stream.on('close', () => resolve({ headers, trailers, rstCode: stream.rstCode ?? 0 }))
    stream.resume()
  })
}
