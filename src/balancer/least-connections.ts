/**
 * `least-connections`: the server with the fewest requests in flight relative to its weight, that is
 * the lowest (in-flight + 1) / weight, as HAProxy's `leastconn` and nginx's `least_conn` weigh it. Ties
 * are broken at random, so that idle servers share a quiet pool evenly. O(servers) per pick. The
 * runner-up is the second candidate. Servers with weight 0 get nothing.
 *
 * Counts are per process: with several workers each balances its own share of the requests.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { InFlight, Preferred, Rotation } from './candidates.js'
import { type Balancer, type BalancerEnv, defaultEnv, type PickContext } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('least-connections') })

export class LeastConnections implements Balancer {
  readonly algorithm = 'least-connections'
  readonly #env: BalancerEnv
  readonly #inFlight = new InFlight()
  #active: readonly Backend[] = []
  #weights = new Float64Array(0)

  constructor(env: BalancerEnv = defaultEnv) {
    this.#env = env
  }

  update(backends: readonly Backend[]): void {
    this.#active = backends.filter((b) => b.weight > 0)
    this.#weights = Float64Array.from(this.#active, (b) => b.weight)
    this.#inFlight.update(this.#active)
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    const n = this.#active.length
    if (n === 0) return Rotation.empty
    const counts = this.#inFlight.counts
    const w = this.#weights
    let best = -1
    let bestScore = Number.POSITIVE_INFINITY
    let second = -1
    let secondScore = Number.POSITIVE_INFINITY
    let ties = 0
    for (let i = 0; i < n; i++) {
      const score = (counts[i]! + 1) / w[i]!
      if (score < bestScore) {
        second = best
        secondScore = bestScore
        best = i
        bestScore = score
        ties = 1
      } else if (score === bestScore) {
        // Reservoir sampling over the tied servers: each ends up first with probability 1/ties.
        ties++
        if (this.#env.random() * ties < 1) {
          second = best
          secondScore = bestScore
          best = i
        } else if (second < 0 || score < secondScore) {
          second = i
          secondScore = score
        }
      } else if (score < secondScore) {
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

export function create(_options: z.infer<typeof schema>, env?: BalancerEnv): Balancer {
  return new LeastConnections(env)
}
