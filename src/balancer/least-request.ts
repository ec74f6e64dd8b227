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
import { InFlight, Preferred, Rotation, WeightedDraw } from './candidates.js'
import { type Balancer, type BalancerEnv, defaultEnv, type PickContext } from './types.js'

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

/** Redraws when a draw repeats the best so far: distinct choices with probability 1 - (share of best)^4. */
const DISTINCT_REDRAWS = 3

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
    const counts = this.#inFlight.counts
    let best = -1
    let bestScore = Number.POSITIVE_INFINITY
    let second = -1
    let secondScore = Number.POSITIVE_INFINITY
    for (let k = 0; k < this.#choices; k++) {
      let i = this.#draw.draw(this.#env.random())
      // Draws are of distinct servers where the pool allows (as Finagle's P2C): a few redraws when a
      // draw repeats the current best, so a lone slow server is not chosen by drawing it twice.
      for (let retry = 0; retry < DISTINCT_REDRAWS && i === best && this.#active.length > 1; retry++)
        i = this.#draw.draw(this.#env.random())
      if (i === best) continue
      const score = (counts[i]! + 1) / this.#weights[i]!
      if (score < bestScore) {
        second = best
        secondScore = bestScore
        best = i
        bestScore = score
      } else if (i !== second && score < secondScore) {
        second = i
        secondScore = score
      }
    }
    return new Preferred(this.#active, best, second)
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
