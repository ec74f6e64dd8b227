/**
 * `pools`: traffic splitting (canary). A route names weighted pools instead of one; each request goes
 * to one of them, in proportion to the weights. With `sticky` on the pools, a client stays on its side
 * of the split:
 * - a request that carries a valid binding of one side's `cookie` or `app-cookie` session goes to that
 *   side;
 * - with `client-ip` or `header:NAME` stickiness on a side, the side is chosen by a hash of that key,
 *   so the same client always lands on the same side (the same in every process and instance).
 * Other requests draw a side at random.
 */
import { z } from 'zod'
import { hash32 } from '../balancer/hash.js'
import { headerValue } from '../balancer/hash-key.js'
import type { FilterEnv } from './env.js'
import type { Filter, FilterContext } from './types.js'

export const schema = z
  .array(
    z.strictObject({
      pool: z.string().describe('Name of a pool.'),
      weight: z.number().int().min(0).max(1000).describe('Relative share of the requests.'),
    }),
  )
  .min(1)
  // All weights 0 would leave the route with no pool at all: every request would fail.
  .refine((sides) => sides.some((s) => s.weight > 0), {
    error: 'expected at least one pool with a weight above 0, found only weights of 0',
  })
  .describe("Split the route's requests over several pools by weight (canary), instead of one `pool`.")

/** Seed of the split's hash, so that it does not line up with the pools' own hashing of the same key. */
const SPLIT_SEED = 0x5b1d

export function create(options: z.output<typeof schema>, env: FilterEnv, random: () => number = Math.random): Filter {
  const sides = options.filter((s) => s.weight > 0)
  const total = sides.reduce((n, s) => n + s.weight, 0)
  const pools = sides.map((s) => {
    const pool = env.pools.get(s.pool)
    if (pool === undefined) throw new Error(`unvalidated split pool ${s.pool}`)
    return pool
  })
  const sticky = pools.map((p) => p.sticky)
  const hashHeader = sticky.find((s) => s?.config.mode === 'header')?.config
  const hashed = sticky.some((s) => s?.config.mode === 'client-ip' || s?.config.mode === 'header')
  const bound = sticky.some((s) => s?.config.mode === 'cookie' || s?.config.mode === 'app-cookie')
  const pick = (u: number): string => {
    let x = u * total
    for (const s of sides) {
      x -= s.weight
      if (x < 0) return s.pool
    }
    return (sides[sides.length - 1] as { pool: string }).pool
  }
  return {
    name: 'pools',
    onRoute(ctx: FilterContext) {
      if (total === 0) return
      const r = ctx.request
      if (bound) {
        const src = { clientIp: r.clientIp, rawHeaders: r.rawHeaders, url: r.url }
        for (let i = 0; i < pools.length; i++) {
          const s = sticky[i]
          if ((s?.config.mode === 'cookie' || s?.config.mode === 'app-cookie') && typeof s.bound(src) === 'string')
            return ctx.usePool((pools[i] as { name: string }).name)
        }
      }
      if (hashed) {
        const key =
          hashHeader?.mode === 'header' ? (headerValue(r.rawHeaders, hashHeader.header) ?? r.clientIp) : r.clientIp
        return ctx.usePool(pick(hash32(key, SPLIT_SEED) / 2 ** 32))
      }
      ctx.usePool(pick(random()))
    },
  }
}
