/**
 * `least-request`: power of `choices` random choices (P2C by default), Envoy's default balancer. Each
 * pick draws `choices` servers at random in proportion to their weight and takes the one with the
 * fewest requests in flight per unit of weight; the other draws follow as candidates. O(choices) per
 * pick, whatever the pool size, and far less herding than a global least-connections when many
 * balancers share the servers.
 *
 * Counts are per process: with several workers each balances its own share of the requests.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { bestOfDraws, drawMethod, InFlight, loadScores, Rotation, WeightedDraw } from './candidates.js'
import { type Balancer, type BalancerEnv, defaultEnv, type PickContext, type PickReport } from './types.js'

export const schema = z.strictObject({
  algorithm: z.literal('least-request'),
  choices: z
    .number()
    .int()
    .min(2)
    .max(16)
    .default(2)
    .describe('Servers drawn per pick; the least loaded of them wins.'),
})

export class LeastRequest implements Balancer {
  readonly algorithm = 'least-request'
  readonly #env: BalancerEnv
  readonly #choices: number
  readonly #inFlight = new InFlight()
  #active: readonly Backend[] = []
  #weights = new Float64Array(0)
  #draw = new WeightedDraw([])

  constructor(choices = 2, env: BalancerEnv = defaultEnv) {
    this.#choices = choices
    this.#env = env
  }

  update(backends: readonly Backend[]): void {
    this.#active = backends.filter((b) => b.weight > 0)
    this.#weights = Float64Array.from(this.#active, (b) => b.weight)
    this.#draw = new WeightedDraw(this.#active.map((b) => b.weight))
    this.#inFlight.update(this.#active)
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return Rotation.empty
    return bestOfDraws(this.#active, this.#draw, this.#env.random, this.#choices, this.#score)
  }

  /** Requests in flight per unit of weight, counting the new one. */
  readonly #score = (i: number): number => ((this.#inFlight.counts[i] as number) + 1) / (this.#weights[i] as number)

  /** The drawn servers' scores: (in flight + 1) / weight; the first two candidates are the draws of a P2C pick. */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    return { method: drawMethod(this.#choices), servers: loadScores(servers, this.#inFlight) }
  }

  onStart(b: Backend): void {
    this.#inFlight.start(b)
  }

  onEnd(b: Backend): void {
    this.#inFlight.end(b)
  }
}

export function create(options: z.infer<typeof schema>, env?: BalancerEnv): Balancer {
  return new LeastRequest(options.choices, env)
}
