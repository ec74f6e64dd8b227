/**
 * `type: grpc`: the standard gRPC health service (`grpc.health.v1.Health/Check`), asked about
 * `service` (empty: the server as a whole). Passes when the call ends with `grpc-status: 0` and the
 * answer says SERVING. Spoken over HTTP/2: with TLS (ALPN `h2`) to an `https://` server, verified as its
 * requests are, in clear (h2c, prior knowledge) to an `http://` one. One fresh connection per check.
 */
import { connect as h2connect } from 'node:http2'
import { z } from 'zod'
import { formatAddress } from '../core/address.js'
import {
  firstMessage,
  frameMessage,
  GRPC_STATUS,
  healthCheckRequest,
  healthCheckStatus,
  SERVING,
} from '../http2/grpc.js'
import { tlsConnectOptions } from '../upstream/tls.js'
import {
  type CheckTarget,
  checkSocket,
  commonCheckFields,
  MAX_CHECK_READ_BYTES,
  type Probe,
  probeOnce,
} from './check.js'

export const schema = z.strictObject({
  type: z.literal('grpc'),
  service: z
    .string()
    .default('')
    .describe('Service name asked about (`HealthCheckRequest.service`). Empty: the server as a whole.'),
  authority: z.string().optional().describe('`:authority` of the check. Absent: the server address.'),
  ...commonCheckFields,
})

export type GrpcCheckOptions = z.infer<typeof schema>

const SERVING_STATUS_NAMES = ['UNKNOWN', 'SERVING', 'NOT_SERVING', 'SERVICE_UNKNOWN']

export function create(options: GrpcCheckOptions): Probe {
  const body = frameMessage(healthCheckRequest(options.service))
  return (target: CheckTarget, timeoutMs: number) =>
    probeOnce(timeoutMs, (done) => {
      const authority = options.authority ?? formatAddress(target.host, target.port)
      const socket = checkSocket(
        target,
        target.tls === undefined
          ? undefined
          : { ...tlsConnectOptions(target.tls, target.host, target.port), ALPNProtocols: ['h2'] },
      )
      const session = h2connect(`${target.tls === undefined ? 'http' : 'https'}://${authority}`, {
        createConnection: () => socket,
        settings: { enablePush: false },
      })
      session.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
      const stream = session.request(
        {
          ':method': 'POST',
          ':path': '/grpc.health.v1.Health/Check',
          'content-type': 'application/grpc',
          te: 'trailers',
          'user-agent': 'switchyard-health-check',
        },
        { endStream: false },
      )
      stream.end(body)
      let data = Buffer.alloc(0)
      let httpStatus = 0
      let grpcStatus: string | undefined
      stream.on('response', (headers) => {
        httpStatus = Number(headers[':status'])
        // A trailers-only answer carries the status in its one HEADERS frame.
        grpcStatus = headers['grpc-status'] as string | undefined
      })
      stream.on('data', (chunk: Buffer) => {
        if (data.length < MAX_CHECK_READ_BYTES) data = Buffer.concat([data, chunk])
      })
      stream.on('trailers', (headers) => {
        grpcStatus = headers['grpc-status'] as string | undefined
      })
      stream.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
      stream.on('end', () => {
        if (httpStatus !== 200) return done(`status ${httpStatus}`)
        if (grpcStatus !== String(GRPC_STATUS.OK)) return done(`grpc-status ${grpcStatus ?? 'missing'}`)
        const message = firstMessage(data)
        if (message === undefined || message.compressed) return done('no HealthCheckResponse')
        const status = healthCheckStatus(message.message)
        if (status === undefined) return done('an unreadable HealthCheckResponse')
        done(status === SERVING ? undefined : (SERVING_STATUS_NAMES[status] ?? `status ${status}`))
      })
      stream.resume()
      return () => session.destroy()
    })
}
