/**
 * `random`: a server drawn at random in proportion to its weight (prefix sums, O(log servers) per
 * pick); then the others in rotation order. Stateless, so it needs no coordination between workers or
 * instances, and it spreads evenly over many requests. Servers with weight 0 get nothing.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { Rotation, WeightedDraw, weightScores } from './candidates.js'
import { type Balancer, type BalancerEnv, defaultEnv, type PickContext, type PickReport } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('random') })

export class RandomBalancer implements Balancer {
  readonly algorithm = 'random'
  readonly #env: BalancerEnv
  #active: readonly Backend[] = []
  #draw = new WeightedDraw([])

  constructor(env: BalancerEnv = defaultEnv) {
    this.#env = env
  }

  update(backends: readonly Backend[]): void {
    this.#active = backends.filter((b) => b.weight > 0)
    this.#draw = new WeightedDraw(this.#active.map((b) => b.weight))
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return Rotation.empty
    return new Rotation(this.#active, this.#draw.draw(this.#env.random()))
  }

  /** No scores: a draw in proportion to the weights. */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    return { method: 'draw', servers: weightScores(servers) }
  }
}

export function create(_options: z.infer<typeof schema>, env?: BalancerEnv): Balancer {
  return new RandomBalancer(env)
}
