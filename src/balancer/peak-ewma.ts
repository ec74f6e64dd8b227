/**
 * `peak-ewma`: the latency-aware balancer of Finagle and Linkerd. Each server's cost is a moving
 * average of its response latency, multiplied by (requests in flight + 1) and divided by its weight;
 * each pick draws `choices` servers at random (in proportion to weight) and takes the cheapest.
 *
 * The average is peak-sensitive: a sample above it replaces it at once, so a server that slows down is
 * avoided at the next pick; samples below it pull it down with a time-based decay,
 * `w = exp(-elapsed / decay)`, so a server recovers its share over a few `decay` periods rather than
 * on one fast answer. A failure counts as a sample of twice the current average (at least 1 ms), so
 * a server that fails fast does not attract traffic. A server with no sample yet costs 0 while idle,
 * which lets new servers be tried at once, and a large penalty per request while its first requests
 * are in flight, which keeps a stalled new server from absorbing everything.
 *
 * State is per process: with several workers each learns from its own requests.
 */
import { z } from 'zod'
import { durationSchema, durationToMs } from '../core/address.js'
import type { Backend } from '../core/backend.js'
import { bestOfDraws, drawMethod, InFlight, Rotation, shortNumber, WeightedDraw } from './candidates.js'
import {
  type Balancer,
  type BalancerEnv,
  defaultEnv,
  type Outcome,
  type PickContext,
  type PickReport,
  type ServerScore,
} from './types.js'

export const schema = z.strictObject({
  algorithm: z.literal('peak-ewma'),
  decay: durationSchema
    .default('10s')
    .describe('Time constant of the latency average: a sample weighs exp(-age / decay).'),
  choices: z.number().int().min(2).max(16).default(2).describe('Servers drawn per pick; the cheapest wins.'),
})

/** Cost per request in flight of a server that has not answered yet (ms): far above any real latency. */
const UNMEASURED_PENALTY_MS = 1e6

export class PeakEwma implements Balancer {
  readonly algorithm = 'peak-ewma'
  readonly #env: BalancerEnv
  readonly #decayMs: number
  readonly #choices: number
  readonly #inFlight = new InFlight()
  #active: readonly Backend[] = []
  #weights = new Float64Array(0)
  #draw = new WeightedDraw([])
  /** Latency average (ms) per server, -1 before its first sample; and when it was last updated. */
  #ewma = new Float64Array(0)
  #stamp = new Float64Array(0)
  /** `now` of the pick being made. */
  #pickedAt = 0

  constructor(decayMs = 10_000, choices = 2, env: BalancerEnv = defaultEnv) {
    this.#decayMs = Math.max(decayMs, 1)
    this.#choices = choices
    this.#env = env
  }

  update(backends: readonly Backend[]): void {
    const old = new Map(this.#active.map((b, i) => [b.id, i]))
    const oldEwma = this.#ewma
    const oldStamp = this.#stamp
    this.#active = backends.filter((b) => b.weight > 0)
    this.#weights = Float64Array.from(this.#active, (b) => b.weight)
    this.#draw = new WeightedDraw(this.#active.map((b) => b.weight))
    this.#ewma = new Float64Array(this.#active.length).fill(-1)
    this.#stamp = new Float64Array(this.#active.length)
    this.#active.forEach((b, i) => {
      const j = old.get(b.id)
      if (j !== undefined) {
        this.#ewma[i] = oldEwma[j] ?? -1
        this.#stamp[i] = oldStamp[j] ?? 0
      }
    })
    this.#inFlight.update(this.#active)
  }

  /** The current cost of server `i` (an index into the active list): decayed average × (in flight + 1) / weight. */
  cost(i: number, now: number): number {
    const pending = this.#inFlight.counts[i] as number
    const ewma = this.#ewma[i] as number
    if (ewma < 0) return pending === 0 ? 0 : (UNMEASURED_PENALTY_MS * pending) / (this.#weights[i] as number)
    const decayed = ewma * Math.exp(-(now - (this.#stamp[i] as number)) / this.#decayMs)
    return (decayed * (pending + 1)) / (this.#weights[i] as number)
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return Rotation.empty
    this.#pickedAt = this.#env.now()
    return bestOfDraws(this.#active, this.#draw, this.#env.random, this.#choices, this.#costNow)
  }

  /** The cost of server `i` at the time of the current pick. */
  readonly #costNow = (i: number): number => this.cost(i, this.#pickedAt)

  /**
   * Each server's cost now (what the pick compared: the decayed average × (in flight + 1) / weight),
   * with its average and requests in flight; the first two candidates are the draws of a P2C pick.
   */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    const now = this.#env.now()
    const scores = servers.map((b): ServerScore => {
      const i = this.#inFlight.indexOf(b)
      if (i < 0) return { id: b.id, note: 'not in rotation' }
      const pending = this.#inFlight.counts[i] as number
      const ewma = this.#ewma[i] as number
      const cost = this.cost(i, now)
      const weight = this.#weights[i] as number
      const load = pending === 0 ? '' : ` ${pending} in flight`
      if (ewma < 0)
        return { id: b.id, score: cost, note: `no sample${load}`, detail: { inFlight: pending, weight, cost } }
      const ewmaMs = ewma * Math.exp(-(now - (this.#stamp[i] as number)) / this.#decayMs)
      return {
        id: b.id,
        score: cost,
        note: `ewma ${shortNumber(ewmaMs)}ms${load}${weight === 1 ? '' : ` weight ${weight}`}`,
        detail: { ewmaMs, inFlight: pending, weight, cost },
      }
    })
    return { method: drawMethod(this.#choices), servers: scores }
  }

  onStart(b: Backend): void {
    this.#inFlight.start(b)
  }

  onEnd(b: Backend, outcome: Outcome, latencyMs: number): void {
    const i = this.#inFlight.end(b)
    if (i < 0) return
    const now = this.#env.now()
    const prev = this.#ewma[i] as number
    const sample = outcome === 'failure' ? Math.max(latencyMs, 2 * Math.max(prev, 0), 1) : Math.max(latencyMs, 0)
    if (prev < 0 || sample > prev) this.#ewma[i] = sample
    else {
      const w = Math.exp(-(now - (this.#stamp[i] as number)) / this.#decayMs)
      this.#ewma[i] = prev * w + sample * (1 - w)
    }
    this.#stamp[i] = now
  }
}

export function create(options: z.infer<typeof schema>, env?: BalancerEnv): Balancer {
  return new PeakEwma(durationToMs(options.decay), options.choices, env)
}
