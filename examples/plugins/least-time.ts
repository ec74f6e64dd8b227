/**
 * A plugin that adds a balancing algorithm, `least-time` (after nginx Plus's least_time): each request
 * goes to the server with the lowest average response time (an exponentially weighted moving average
 * of the time to the response head), weighted by its in-flight requests, so a slow server gets less
 * traffic without being cut off. Pools choose it with `balance: { algorithm: least-time }`.
 *
 * (In your own project, import from 'switchyard-lb' instead of '../../src/index.js'.)
 */
import type { Backend, Balancer, BalancerEnv, Outcome, PickContext } from '../../src/index.js'
import { definePlugin } from '../../src/index.js'

/** Weight of the newest sample in the average. */
const ALPHA = 0.3
/** Average of a server with no sample yet: it is tried early, and learns fast. */
const UNKNOWN_MS = 0

export class LeastTime implements Balancer {
  readonly algorithm = 'least-time'
  #servers: Backend[] = []
  readonly #avgMs = new Map<string, number>()
  readonly #inFlight = new Map<string, number>()
  #next = 0

  update(backends: readonly Backend[]): void {
    this.#servers = backends.filter((b) => b.weight > 0)
    const ids = new Set(this.#servers.map((b) => b.id))
    for (const id of [...this.#avgMs.keys()]) if (!ids.has(id)) this.#avgMs.delete(id)
    for (const id of [...this.#inFlight.keys()]) if (!ids.has(id)) this.#inFlight.delete(id)
  }

  /** Best first: lowest (average + 1 ms) × (in flight + 1) / weight; ties in rotation order. */
  pick(_ctx: PickContext): Iterable<Backend> {
    const n = this.#servers.length
    if (n === 0) return []
    const start = this.#next++ % n
    const order = Array.from({ length: n }, (_, i) => this.#servers[(start + i) % n] as Backend)
    const cost = (b: Backend) =>
      (((this.#avgMs.get(b.id) ?? UNKNOWN_MS) + 1) * ((this.#inFlight.get(b.id) ?? 0) + 1)) / b.weight
    return order
      .map((b) => [b, cost(b)] as const)
      .sort((x, y) => x[1] - y[1])
      .map(([b]) => b)
  }

  onStart(b: Backend): void {
    if (this.#servers.some((s) => s.id === b.id)) this.#inFlight.set(b.id, (this.#inFlight.get(b.id) ?? 0) + 1)
  }

  onEnd(b: Backend, _outcome: Outcome, latencyMs: number): void {
    const inFlight = this.#inFlight.get(b.id)
    if (inFlight === undefined) return
    this.#inFlight.set(b.id, Math.max(0, inFlight - 1))
    const avg = this.#avgMs.get(b.id)
    this.#avgMs.set(b.id, avg === undefined ? latencyMs : avg + ALPHA * (latencyMs - avg))
  }
}

export default definePlugin({
  name: 'least-time',
  balancers: { 'least-time': (_options, _env?: BalancerEnv) => new LeastTime() },
})
