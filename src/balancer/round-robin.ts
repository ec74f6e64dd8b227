/**
 * `round-robin`: each server in turn, in proportion to its weight. The order is nginx's smooth weighted
 * sequence, computed once in `update()` into a schedule, so `pick()` is O(1). With equal weights it is a
 * plain rotation. When the schedule would be too large (a very long weight cycle), picks compute the same
 * sequence live instead. Servers with weight 0 get nothing.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { Rotation, SmoothWeights, weightScores } from './candidates.js'
import type { Balancer, PickContext, PickReport } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('round-robin') })

/** Largest schedule kept in memory (entries); larger weight cycles are computed per pick. */
const MAX_SCHEDULE = 1 << 16

export class RoundRobin implements Balancer {
  readonly algorithm = 'round-robin'
  #active: readonly Backend[] = []
  #schedule: Int32Array = new Int32Array(0)
  #live: SmoothWeights | undefined
  #cursor = 0

  update(backends: readonly Backend[]): void {
    const active = backends.filter((b) => b.weight > 0)
    const smooth = new SmoothWeights(active.map((b) => b.weight))
    this.#active = active
    this.#cursor = 0
    if (smooth.total > MAX_SCHEDULE) {
      this.#live = smooth
      this.#schedule = new Int32Array(0)
      return
    }
    this.#live = undefined
    const schedule = new Int32Array(smooth.total)
    for (let i = 0; i < schedule.length; i++) schedule[i] = smooth.next()
    this.#schedule = schedule
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return Rotation.empty
    let first: number
    if (this.#live) first = this.#live.next()
    else {
      first = this.#schedule[this.#cursor] as number
      this.#cursor = (this.#cursor + 1) % this.#schedule.length
    }
    return new Rotation(this.#active, first)
  }

  /** No scores: each server in turn, as often as its weight. */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    return { method: 'rotation', servers: weightScores(servers) }
  }
}

export function create(_options: z.infer<typeof schema>): Balancer {
  return new RoundRobin()
}
