/**
 * `least-connections`: the server with the fewest requests in flight relative to its weight, that is
 * the lowest (in-flight + 1) / weight, as HAProxy's `leastconn` and nginx's `least_conn` weigh it.
 * Servers sit in a binary min-heap on that score (HAProxy keeps a tree for the same reason), so a pick
 * reads the top in O(1) and each start or end of a request moves one server in O(log servers). Ties
 * are broken at random: a server draws a new random tie-breaker whenever its count changes, and the
 * top one when it is picked while tied, so idle servers of equal weight share a quiet pool evenly. The runner-up (the better child of the top)
 * is the second candidate. Servers with weight 0 get nothing.
 *
 * Counts are per process: with several workers each balances its own share of the requests.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { InFlight, loadScores, Preferred, Rotation } from './candidates.js'
import { type Balancer, type BalancerEnv, defaultEnv, type PickContext, type PickReport } from './types.js'

export const schema = z.strictObject({ algorithm: z.literal('least-connections') })

export class LeastConnections implements Balancer {
  readonly algorithm = 'least-connections'
  readonly #env: BalancerEnv
  readonly #inFlight = new InFlight()
  #active: readonly Backend[] = []
  #weights = new Float64Array(0)
  // Every array below has one slot per active server (the heap one per position), and every index
  // read from them is a server index or heap position below n, so their reads are asserted `as number`.
  /** Heap of server indices; #pos[i] is where server i sits in it. */
  #heap = new Int32Array(0)
  #pos = new Int32Array(0)
  /** Score (in flight + 1) / weight, and a random tie-breaker, per server. */
  #score = new Float64Array(0)
  #tie = new Float64Array(0)

  constructor(env: BalancerEnv = defaultEnv) {
    this.#env = env
  }

  update(backends: readonly Backend[]): void {
    const active = backends.filter((b) => b.weight > 0)
    const n = active.length
    this.#active = active
    this.#weights = Float64Array.from(active, (b) => b.weight)
    this.#inFlight.update(active)
    this.#score = new Float64Array(n)
    this.#tie = new Float64Array(n)
    this.#heap = new Int32Array(n)
    this.#pos = new Int32Array(n)
    for (let i = 0; i < n; i++) {
      this.#score[i] = ((this.#inFlight.counts[i] as number) + 1) / (this.#weights[i] as number)
      this.#tie[i] = this.#env.random()
      this.#heap[i] = i
      this.#pos[i] = i
    }
    for (let at = (n >> 1) - 1; at >= 0; at--) this.#siftDown(at)
  }

  pick(_ctx: PickContext): Iterable<Backend> {
    const n = this.#active.length
    if (n === 0) return Rotation.empty
    const h = this.#heap
    const top = h[0] as number
    let second = -1
    if (n > 2) {
      const left = h[1] as number
      const right = h[2] as number
      second = this.#less(left, right) ? left : right
    } else if (n === 2) second = h[1] as number
    // A tie at the top: the top draws a new tie-breaker, so that the next pick (if no request starts
    // in between) may go to another of the tied servers, each as likely.
    if (second >= 0 && this.#score[second] === this.#score[top]) {
      this.#tie[top] = this.#env.random()
      this.#siftDown(0)
    }
    return new Preferred(this.#active, top, second)
  }

  /** The score of every server: (in flight + 1) / weight, the lowest of all first. */
  describe(_ctx: PickContext, servers: readonly Backend[]): PickReport {
    return { method: 'least', servers: loadScores(servers, this.#inFlight) }
  }

  onStart(b: Backend): void {
    const i = this.#inFlight.start(b)
    if (i >= 0) this.#rescore(i)
  }

  onEnd(b: Backend): void {
    const i = this.#inFlight.end(b)
    if (i >= 0) this.#rescore(i)
  }

  #rescore(i: number): void {
    this.#score[i] = ((this.#inFlight.counts[i] as number) + 1) / (this.#weights[i] as number)
    this.#tie[i] = this.#env.random()
    const at = this.#pos[i] as number
    this.#siftUp(at)
    this.#siftDown(this.#pos[i] as number)
  }

  /** Server a ranks before server b. */
  #less(a: number, b: number): boolean {
    const sa = this.#score[a] as number
    const sb = this.#score[b] as number
    return sa < sb || (sa === sb && (this.#tie[a] as number) < (this.#tie[b] as number))
  }

  #swap(x: number, y: number): void {
    const h = this.#heap
    const a = h[x] as number
    const b = h[y] as number
    h[x] = b
    h[y] = a
    this.#pos[b] = x
    this.#pos[a] = y
  }

  #siftUp(at: number): void {
    while (at > 0) {
      const parent = (at - 1) >> 1
      if (!this.#less(this.#heap[at] as number, this.#heap[parent] as number)) return
      this.#swap(at, parent)
      at = parent
    }
  }

  #siftDown(at: number): void {
    const h = this.#heap
    const n = h.length
    for (;;) {
      const left = 2 * at + 1
      if (left >= n) return
      const right = left + 1
      const child = right < n && this.#less(h[right] as number, h[left] as number) ? right : left
      if (!this.#less(h[child] as number, h[at] as number)) return
      this.#swap(at, child)
      at = child
    }
  }
}

export function create(_options: z.infer<typeof schema>, env?: BalancerEnv): Balancer {
  return new LeastConnections(env)
}
