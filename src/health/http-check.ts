/**
 * `type: http`: a request to each server (method, path, Host header), which passes when the status is
 * in one of `expectStatus`'s ranges and, with `expectBody`, the first 64 KiB of the body contain that
 * text. One fresh connection per check (`Connection: close`), so a check also proves that the server
 * accepts connections.
 */
import { request } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { z } from 'zod'
import { tlsConnectOptions } from '../upstream/tls.js'
import {
  type CheckTarget,
  checkSocket,
  commonCheckFields,
  MAX_CHECK_READ_BYTES,
  type Probe,
  probeOnce,
} from './check.js'

const statusRange = z
  .union([z.number().int().min(100).max(599), z.string().regex(/^[1-5]\d\d(-[1-5]\d\d)?$/)])
  .describe('A status (200) or a range ("200-399").')

export const schema = z.strictObject({
  type: z.literal('http'),
  method: z.enum(['GET', 'HEAD', 'OPTIONS']).default('GET').describe('Request method.'),
  path: z.string().startsWith('/').default('/').describe('Request path, with any query.'),
  host: z.string().optional().describe('Host header. Absent: the server address.'),
  expectStatus: z
    .array(statusRange)
    .min(1)
    .default(['200-399'])
    .describe('Statuses that pass: numbers or ranges such as "200-399".'),
  expectBody: z.string().min(1).optional().describe('Text the start of the body (64 KiB) must contain.'),
  ...commonCheckFields,
})

export type HttpCheckOptions = z.infer<typeof schema>

function statusMatcher(ranges: readonly (number | string)[]): (status: number) => boolean {
  const pairs = ranges.map((r) => {
    if (typeof r === 'number') return [r, r] as const
    const [lo, hi = lo] = r.split('-').map(Number) as [number, number?]
    return [lo, hi] as const
  })
  return (status) => pairs.some(([lo, hi]) => status >= lo && status <= hi)
}

export function create(options: HttpCheckOptions): Probe {
  const passes = statusMatcher(options.expectStatus)
  return (target: CheckTarget, timeoutMs: number) =>
    probeOnce(timeoutMs, (done) => {
      const host = target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`
      const common = {
        method: options.method,
        path: options.path,
        agent: false as const,
        headers: { host: options.host ?? host, 'user-agent': 'switchyard-health-check', connection: 'close' },
      }
      // An https:// server is checked over TLS, verified as its requests are.
      const tls = target.tls === undefined ? undefined : tlsConnectOptions(target.tls, target.host, target.port)
      const req =
        target.prefix !== undefined
          ? // No agent: node:http then opens the connection with `createConnection`.
            request({ ...common, agent: undefined, createConnection: () => checkSocket(target, tls) })
          : tls === undefined
            ? request({ host: target.host, port: target.port, ...common })
            : httpsRequest({ ...tls, ...common })
      req.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
      req.on('response', (res) => {
        const status = res.statusCode ?? 0
        if (!passes(status)) return done(`status ${status}`)
        const expected = options.expectBody
        if (expected === undefined || options.method === 'HEAD') return done(undefined)
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (chunk: string) => {
          body += chunk
          if (body.includes(expected)) done(undefined)
          else if (body.length >= MAX_CHECK_READ_BYTES) done(`body lacks ${JSON.stringify(expected)}`)
        })
        res.on('end', () => done(body.includes(expected) ? undefined : `body lacks ${JSON.stringify(expected)}`))
        res.on('error', () => done('response aborted'))
      })
      req.end()
      return () => req.destroy()
    })
}
