/**
 * `ip-hash`: `ring-hash` keyed on the client address, always: a client keeps its server across
 * requests, restarts and instances with the same server list, and loses it only when that server
 * leaves. Same ring, weights and bounded loads as `ring-hash`. (Behind another proxy, every client
 * shares that proxy's address: use `ring-hash` with `hashOn: header:X-Forwarded-For` there.)
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { RingHash, ringOptions } from './ring-hash.js'
import type { Balancer, PickContext, PickReport } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('ip-hash'), ...ringOptions })

class IpHash extends RingHash {
  override readonly algorithm = 'ip-hash'

  override pick(ctx: PickContext): Iterable<Backend> {
    return super.pick({ clientIp: ctx.clientIp })
  }

  /** Where the client address lands on the ring. */
  override describe(ctx: PickContext, servers: readonly Backend[]): PickReport {
    return super.describe({ clientIp: ctx.clientIp }, servers)
  }
}

export function create(options: z.infer<typeof schema>): Balancer {
  return new IpHash(options)
}
