/**
 * Real gRPC for tests, with @grpc/grpc-js on both ends: a service `test.Echo` whose messages are JSON
 * bytes (no protobuf compiler needed), with the four call kinds, and the standard health service
 * (`grpc.health.v1.Health/Check`) answering a settable status. Each server names itself in every answer,
 * so a test can see where each call went.
 */
import * as grpc from '@grpc/grpc-js'

export type Json = Record<string, unknown>

const json = {
  serialize: (value: Json): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): Json => JSON.parse(bytes.toString('utf8')) as Json,
}

function method(name: string, requestStream: boolean, responseStream: boolean) {
  return {
    path: `/test.Echo/${name}`,
    requestStream,
    responseStream,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: name,
  }
}

export const ECHO_SERVICE = {
  Unary: method('Unary', false, false),
  ServerStream: method('ServerStream', false, true),
  ClientStream: method('ClientStream', true, false),
  Bidi: method('Bidi', true, true),
} satisfies grpc.ServiceDefinition

const raw = (b: Buffer) => b
const HEALTH_SERVICE = {
  Check: {
    path: '/grpc.health.v1.Health/Check',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
    originalName: 'Check',
  },
} satisfies grpc.ServiceDefinition

/** The client of `test.Echo`. */
export const EchoClient = grpc.makeGenericClientConstructor(ECHO_SERVICE, 'Echo')
export type EchoClientType = InstanceType<typeof EchoClient> & Record<string, (...args: unknown[]) => unknown>

export interface GrpcBackend {
  readonly id: string
  readonly port: number
  /** Calls served, by method. */
  readonly calls: Record<string, number>
  /** Calls whose client cancelled them, as the server saw it. */
  cancelled: number
  /** `HealthCheckResponse.status`: 1 SERVING, 2 NOT_SERVING. */
  health: number
  /** Services the health checks asked about. */
  readonly healthAsked: string[]
  close(): Promise<void>
}

/**
 * A `test.Echo` server. Unary: `{ fail: { code, details } }` fails with that status and trailing
 * metadata (`x-trailer` text and `x-trailer-bin` binary); `{ delayMs }` answers late; anything else is
 * echoed with `server` and the request's `x-echo` metadata. ServerStream sends `count` messages;
 * ClientStream sums the `n` it gets; Bidi echoes each message with its `seq`.
 */
export async function grpcBackend(
  id: string,
  credentials: grpc.ServerCredentials = grpc.ServerCredentials.createInsecure(),
): Promise<GrpcBackend> {
  const server = new grpc.Server()
  const state: GrpcBackend = {
    id,
    port: 0,
    calls: {},
    cancelled: 0,
    health: 1,
    healthAsked: [],
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown()
        resolve()
      }),
  }
  const count = (name: string) => {
    state.calls[name] = (state.calls[name] ?? 0) + 1
  }
  server.addService(ECHO_SERVICE, {
    Unary: (call: grpc.ServerUnaryCall<Json, Json>, callback: grpc.sendUnaryData<Json>) => {
      count('Unary')
      call.on('cancelled', () => {
        state.cancelled++
      })
      const req = call.request
      const fail = req.fail as { code: number; details: string } | undefined
      if (fail !== undefined) {
        const trailer = new grpc.Metadata()
        trailer.set('x-trailer', 'from-server')
        trailer.set('x-trailer-bin', Buffer.from([0, 1, 2, 255]))
        return callback({ code: fail.code, details: fail.details, metadata: trailer })
      }
      const initial = new grpc.Metadata()
      initial.set('x-server', id)
      call.sendMetadata(initial)
      const answer = () => callback(null, { server: id, echo: req, meta: call.metadata.get('x-echo').map(String) })
      const delay = req.delayMs as number | undefined
      if (delay === undefined) answer()
      else {
        const t = setTimeout(answer, delay)
        call.on('cancelled', () => clearTimeout(t))
      }
    },
    ServerStream: (call: grpc.ServerWritableStream<Json, Json>) => {
      count('ServerStream')
      const n = call.request.count as number
      for (let i = 0; i < n; i++) call.write({ server: id, i })
      call.end()
    },
    ClientStream: (call: grpc.ServerReadableStream<Json, Json>, callback: grpc.sendUnaryData<Json>) => {
      count('ClientStream')
      let sum = 0
      let messages = 0
      call.on('data', (m: Json) => {
        sum += m.n as number
        messages++
      })
      call.on('end', () => callback(null, { server: id, sum, messages }))
    },
    Bidi: (call: grpc.ServerDuplexStream<Json, Json>) => {
      count('Bidi')
      call.on('cancelled', () => {
        state.cancelled++
      })
      call.on('data', (m: Json) => call.write({ server: id, seq: m.seq }))
      call.on('end', () => call.end())
    },
  })
  server.addService(HEALTH_SERVICE, {
    Check: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      // HealthCheckRequest { string service = 1 }: a one-byte length is enough for test names.
      const req = call.request
      state.healthAsked.push(req.length > 2 ? req.subarray(2).toString('utf8') : '')
      callback(null, Buffer.from([0x08, state.health]))
    },
  })
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', credentials, (err, p) => (err ? reject(err) : resolve(p))),
  )
  return Object.assign(state, { port })
}

/** A unary call as a promise: the answer, or the ServiceError. */
export function unary(
  client: EchoClientType,
  request: Json,
  options: { metadata?: grpc.Metadata; deadlineMs?: number } = {},
): Promise<{ value: Json; headers: grpc.Metadata | undefined }> {
  return new Promise((resolve, reject) => {
    let headers: grpc.Metadata | undefined
    const callOptions: grpc.CallOptions = {}
    if (options.deadlineMs !== undefined) callOptions.deadline = Date.now() + options.deadlineMs
    const call = (client.Unary as (...a: unknown[]) => grpc.ClientUnaryCall)(
      request,
      options.metadata ?? new grpc.Metadata(),
      callOptions,
      (err: grpc.ServiceError | null, value: Json) => (err ? reject(err) : resolve({ value, headers })),
    )
    call.on('metadata', (m: grpc.Metadata) => {
      headers = m
    })
  })
}

export { grpc }
