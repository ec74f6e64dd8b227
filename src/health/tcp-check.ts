/**
 * `type: tcp`: a connection to each server, which passes once it is established, or, with `expect`,
 * once the server has sent that text (after `send`, when given) within the first 64 KiB.
 */
import { z } from 'zod'
import {
  type CheckTarget,
  checkSocket,
  commonCheckFields,
  MAX_CHECK_READ_BYTES,
  type Probe,
  probeOnce,
} from './check.js'

export const schema = z.strictObject({
  type: z.literal('tcp'),
  send: z.string().min(1).optional().describe('Text to send once connected (e.g. "PING\\r\\n").'),
  expect: z.string().min(1).optional().describe('Text the server must send back (e.g. "+PONG").'),
  ...commonCheckFields,
})

export type TcpCheckOptions = z.infer<typeof schema>

export function create(options: TcpCheckOptions): Probe {
  return (target: CheckTarget, timeoutMs: number) =>
    probeOnce(timeoutMs, (done) => {
      const socket = checkSocket(target)
      socket.on('error', (err: NodeJS.ErrnoException) => done(err.code ?? err.message))
      socket.on('connect', () => {
        if (options.send !== undefined) socket.write(options.send)
        if (options.expect === undefined) done(undefined)
      })
      const expected = options.expect
      if (expected !== undefined) {
        let seen = ''
        socket.setEncoding('latin1')
        socket.on('data', (chunk: string) => {
          seen += chunk
          if (seen.includes(expected)) done(undefined)
          else if (seen.length >= MAX_CHECK_READ_BYTES) done(`no ${JSON.stringify(expected)} in the reply`)
        })
        socket.on('end', () => done(seen.includes(expected) ? undefined : `closed without ${JSON.stringify(expected)}`))
      }
      return () => socket.destroy()
    })
}
