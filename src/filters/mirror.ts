/**
 * `mirror`: shadow traffic. A share of the route's requests is copied to another pool as it is sent
 * upstream; the copy's response is read and discarded. Fire-and-forget: the client's response never
 * waits for the copy or depends on it. Bounded: at most `maxInFlight` copies per process at once (more
 * are skipped and counted), each under the mirror pool's own limits and timeouts, and a request body is
 * copied only when it was read whole (see `retries.bufferBytes`) and is at most `maxBodyBytes`; other
 * requests with a body are not mirrored.
 */
import type { Socket } from 'node:net'
import { z } from 'zod'
import { classifyUpstreamError, isConnectFailure, SwitchyardError } from '../core/errors.js'
import type { UpstreamHandler } from '../l7/upstream.js'
import type { TryOutcome } from '../upstream/pool.js'
import type { FilterEnv } from './env.js'
import type { Filter, ForwardedRequest } from './types.js'

export const schema = z
  .strictObject({
    pool: z.string().describe('Name of the pool that receives the copies.'),
    percent: z.number().min(0).max(100).default(100).describe('Share of the requests copied, in percent.'),
    maxInFlight: z
      .number()
      .int()
      .min(1)
      .default(64)
      .describe('Most copies in flight at once (per process); further requests are not copied.'),
    maxBodyBytes: z
      .number()
      .int()
      .min(0)
      .default(64 * 1024)
      .describe('Largest request body copied; requests with larger (or streamed) bodies are not copied.'),
  })
  .describe('Copy a share of the requests to another pool and discard its answers (shadow traffic).')

/** Copies in flight, and copies skipped, per mirror pool: shared by every snapshot. */
const state = new Map<string, { inFlight: number; skipped: number }>()

export function mirrorStats(pool: string): { inFlight: number; skipped: number } {
  return state.get(pool) ?? { inFlight: 0, skipped: 0 }
}

export function create(options: z.output<typeof schema>, env: FilterEnv, random: () => number = Math.random): Filter {
  const pool = env.pools.get(options.pool)
  if (pool === undefined) throw new Error(`unvalidated mirror pool ${options.pool}`)
  let stats = state.get(options.pool)
  if (stats === undefined) {
    stats = { inFlight: 0, skipped: 0 }
    state.set(options.pool, stats)
  }
  const counts = stats
  const cells = env.metrics?.mirrorOf(options.pool)
  return {
    name: 'mirror',
    onForward(ctx, request: ForwardedRequest) {
      if (random() * 100 >= options.percent) return
      if (request.hasBody && (request.body === undefined || request.body.length > options.maxBodyBytes)) return
      if (counts.inFlight >= options.maxInFlight) {
        counts.skipped++
        if (cells !== undefined) cells.skipped.value++
        return
      }
      const admission = pool.admit({ ctx: { clientIp: ctx.request.clientIp }, keySource: undefined })
      if (admission.kind !== 'go') {
        counts.skipped++
        if (cells !== undefined) cells.skipped.value++
        return
      }
      if (cells !== undefined) cells.sent.value++
      const lease = admission.lease
      const tryLease = lease.begin(lease.first, false)
      counts.inFlight++
      const startMs = performance.now()
      let settled = false
      const done = (outcome: TryOutcome) => {
        if (settled) return
        settled = true
        counts.inFlight--
        tryLease.end(outcome, performance.now() - startMs)
        lease.end()
      }
      const handler: UpstreamHandler = {
        onUpstreamHead: () => true,
        onUpstreamData: () => true,
        onUpstreamEnd: () => done('success'),
        onUpstreamError: (err) => {
          const code = classifyUpstreamError(err).code
          done(isConnectFailure(code) ? 'connect-failure' : 'failure')
        },
        onUpstreamSocket: (_socket: Socket) => {},
      }
      const call = lease.first.connections.call(handler)
      const config = pool.config
      try {
        call.send({
          method: request.method,
          path: request.path,
          headers: request.headers,
          body: request.body ?? null,
          headersTimeoutMs: config.timeouts.responseHeadersMs,
          bodyTimeoutMs: config.timeouts.idleMs,
          closeAfter: config.connections.keepAliveMs === 0,
        })
      } catch (err) {
        call.abort(new SwitchyardError('SWY_INTERNAL', 'mirror failed', { cause: err }))
        done('failure')
      }
    },
  }
}
