/**
 * `weighted-round-robin`: nginx's smooth weighted round-robin, computed live on every pick (O(servers)).
 * It gives the same shares as `round-robin` but keeps its running scores across picks rather than a
 * precomputed schedule, which is the form that later per-server effective weights (slow start) plug into.
 * Servers with weight 0 get nothing.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { Rotation, SmoothWeights, weightScores } from './candidates.js'
import type { Balancer, PickContext, PickReport } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('weighted-round-robin') })

export class WeightedRoundRobin implements Balancer {
  readonly algorithm = 'weighted-round-robin'
  #active: readonly Backend[] = []
  #smooth = new SmoothWeights([])

  update(backends: readonly Backend[]): void {
    this.#active = backends.filter((b) => b.weight > 0)
    this.#smooth = new SmoothWeights(this.#active.map((b) => b.weight))
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return Rotation.empty
    return new Rotation(this.#active, this.#smooth.next())
  }

  /** No scores: each server in turn, as often as its weight. */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    return { method: 'rotation', servers: weightScores(servers) }
  }
}

export function create(_options: z.infer<typeof schema>): Balancer {
  return new WeightedRoundRobin()
}
