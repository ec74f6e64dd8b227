/**
 * `ring-hash`: a consistent hash ring (see hash-ring.ts) over the pool's servers, keyed by the
 * request field named in `hashOn` (the client address by default). The same key reaches the same
 * server for as long as that server stays; when one server of n leaves, only its ~1/n of the keys
 * move. Weights set each server's share of the ring. With `hashBalanceFactor`, a server holding more
 * than that factor times its share of the requests in flight passes new keys on along the ring.
 * O(log points) per pick.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { hashOnSchema } from './hash-key.js'
import { HashRing } from './hash-ring.js'
import type { Balancer, PickContext, PickReport } from './types.js'

/** Least ring points by default: 512 per server in a pool of 10 (weight 1), for shares within a few percent. */
export const DEFAULT_MIN_RING_SIZE = 4096

export const ringOptions = {
  minRingSize: z
    .number()
    .int()
    .min(1)
    .max(1 << 23)
    .default(DEFAULT_MIN_RING_SIZE)
    .describe('Least number of points on the ring; more points give shares closer to the weights.'),
  hashBalanceFactor: z
    .number()
    .min(1)
    .optional()
    .describe(
      'Bounded loads: a server holding this factor times its share of the requests in flight (e.g. 1.25) takes no new keys until it drains. Absent: no bound.',
    ),
}

export const schema = z.strictObject({
  algorithm: z.literal('ring-hash'),
  hashOn: hashOnSchema,
  ...ringOptions,
})

export class RingHash implements Balancer {
  readonly algorithm: string = 'ring-hash'
  readonly #ring: HashRing

  constructor(options: { minRingSize: number; hashBalanceFactor?: number | undefined }) {
    this.#ring = new HashRing(options)
  }

  update(backends: readonly Backend[]): void {
    this.#ring.update(backends)
  }

  pick(ctx: PickContext): Iterable<Backend> {
    return this.#ring.candidates(ctx.hashKey ?? ctx.clientIp)
  }

  /** Where the request's key lands on the ring. */
  describe(ctx: PickContext, servers: readonly Backend[]): PickReport {
    return this.#ring.describe(ctx.hashKey ?? ctx.clientIp, servers)
  }

  onStart(b: Backend): void {
    this.#ring.onStart(b)
  }

  onEnd(b: Backend): void {
    this.#ring.onEnd(b)
  }
}

export function create(options: z.infer<typeof schema>): Balancer {
  return new RingHash(options)
}
