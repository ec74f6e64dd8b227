/** Shared pieces for balancers: a best-first candidate iterator and smooth weighted selection. */
import type { Backend } from '../core/backend.js'
import type { ServerScore } from './types.js'

const EMPTY: readonly Backend[] = []

/**
 * Yields `list[first]`, then the rest of `list` in rotation order, each once. One allocation per pick.
 */
export class Rotation implements IterableIterator<Backend> {
  #list: readonly Backend[]
  #first: number
  #i = 0

  constructor(list: readonly Backend[], first: number) {
    this.#list = list
    this.#first = first
  }

  next(): IteratorResult<Backend> {
    const n = this.#list.length
    if (this.#i >= n) return { done: true, value: undefined }
    const idx = (this.#first + this.#i++) % n
    return { done: false, value: this.#list[idx] as Backend }
  }

  [Symbol.iterator](): IterableIterator<Backend> {
    return this
  }

  static readonly empty: Iterable<Backend> = EMPTY
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b]
  return a
}

/**
 * nginx's smooth weighted round-robin over a fixed list of weights: each step adds every weight to its
 * running score, picks the highest, and subtracts the total from it. Over `sum(weights)` steps each index
 * is chosen exactly `weight` times, spread as evenly as possible. Weights must be positive integers.
 */
export class SmoothWeights {
  readonly #weights: Int32Array
  readonly #current: Int32Array
  readonly total: number

  constructor(weights: readonly number[]) {
    const g = weights.reduce((acc, w) => gcd(acc, w), 0) || 1
    this.#weights = Int32Array.from(weights, (w) => w / g)
    this.#current = new Int32Array(weights.length)
    this.total = this.#weights.reduce((a, b) => a + b, 0)
  }

  /** Index chosen by the next step, or -1 when there are no weights. O(n). */
  next(): number {
    const w = this.#weights
    const cur = this.#current
    let best = -1
    let bestScore = Number.NEGATIVE_INFINITY
    for (let i = 0; i < w.length; i++) {
      const score = (cur[i] as number) + (w[i] as number)
      cur[i] = score
      if (score > bestScore) {
        bestScore = score
        best = i
      }
    }
    if (best >= 0) (cur[best] as number) -= this.total
    return best
  }
}

/**
 * Yields `list[first]`, then `list[second]` (unless -1 or equal to `first`), then the rest of `list` in
 * rotation order after `first`, each server once. For algorithms whose first choices come from a
 * comparison (least-connections, P2C): the runner-up is the next best candidate.
 */
export class Preferred implements IterableIterator<Backend> {
  readonly #list: readonly Backend[]
  readonly #first: number
  readonly #second: number
  #step = 0

  constructor(list: readonly Backend[], first: number, second = -1) {
    this.#list = list
    this.#first = first
    this.#second = second === first ? -1 : second
  }

  next(): IteratorResult<Backend> {
    const n = this.#list.length
    for (;;) {
      const step = this.#step++
      if (step === 0) return { done: false, value: this.#list[this.#first] as Backend }
      if (step === 1 && this.#second >= 0) return { done: false, value: this.#list[this.#second] as Backend }
      // Steps 2..n walk the rotation after `first` (step 1 does so too when there is no second).
      const offset = this.#second >= 0 ? step - 1 : step
      if (offset >= n) return { done: true, value: undefined }
      const idx = (this.#first + offset) % n
      if (idx === this.#second) continue
      return { done: false, value: this.#list[idx] as Backend }
    }
  }

  [Symbol.iterator](): IterableIterator<Backend> {
    return this
  }
}

/**
 * Requests in flight per server, for load-aware algorithms: an array indexed like the balancer's
 * server list, with counts carried across `update()` for servers that stay (matched by id).
 */
export class InFlight {
  #index = new Map<string, number>()
  counts = new Float64Array(0)
  total = 0

  /** Re-indexes for `list`, keeping the counts of servers that stay. */
  update(list: readonly Backend[]): void {
    const counts = new Float64Array(list.length)
    const index = new Map<string, number>()
    let total = 0
    list.forEach((b, i) => {
      index.set(b.id, i)
      const old = this.#index.get(b.id)
      const count = old === undefined ? 0 : (this.counts[old] ?? 0)
      counts[i] = count
      total += count
    })
    this.#index = index
    this.counts = counts
    this.total = total
  }

  /** Index of `b` in the current list, or -1 when it is not in it (removed by an update). */
  indexOf(b: Backend): number {
    return this.#index.get(b.id) ?? -1
  }

  start(b: Backend): number {
    const i = this.indexOf(b)
    if (i >= 0) {
      ;(this.counts[i] as number)++
      this.total++
    }
    return i
  }

  end(b: Backend): number {
    const i = this.indexOf(b)
    if (i >= 0 && (this.counts[i] as number) > 0) {
      ;(this.counts[i] as number)--
      this.total--
    }
    return i
  }
}

/** Draws an index with probability proportional to its weight: prefix sums and a binary search, O(log n). */
export class WeightedDraw {
  readonly #prefix: Float64Array
  readonly total: number

  constructor(weights: readonly number[]) {
    this.#prefix = new Float64Array(weights.length)
    let sum = 0
    weights.forEach((w, i) => {
      sum += w
      this.#prefix[i] = sum
    })
    this.total = sum
  }

  /** An index for the uniform number `u` in [0, 1); -1 when there are no weights. */
  draw(u: number): number {
    const p = this.#prefix
    if (p.length === 0 || this.total <= 0) return -1
    const x = u * this.total
    let lo = 0
    let hi = p.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((p[mid] as number) > x) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}

/** Redraws when a draw repeats the best so far: distinct choices with probability 1 - (share of best)^4. */
const DISTINCT_REDRAWS = 3

/**
 * Power of `choices` random choices: draws servers in proportion to their weight and ranks them by
 * `score` (lower is better). Draws are of distinct servers where the pool allows (as Finagle's P2C): a
 * few redraws when a draw repeats the current best, so a lone slow server is not chosen by drawing it
 * twice. The best draw comes first, the runner-up second, then the rest in rotation order.
 */
export function bestOfDraws(
  active: readonly Backend[],
  draw: WeightedDraw,
  random: () => number,
  choices: number,
  score: (i: number) => number,
): Preferred {
  let best = -1
  let bestScore = Number.POSITIVE_INFINITY
  let second = -1
  let secondScore = Number.POSITIVE_INFINITY
  for (let k = 0; k < choices; k++) {
    let i = draw.draw(random())
    for (let retry = 0; retry < DISTINCT_REDRAWS && i === best && active.length > 1; retry++) i = draw.draw(random())
    if (i === best) continue
    const s = score(i)
    if (s < bestScore) {
      second = best
      secondScore = bestScore
      best = i
      bestScore = s
    } else if (i !== second && s < secondScore) {
      second = i
      secondScore = s
    }
  }
  return new Preferred(active, best, second)
}

/** A number in a note: two decimals below 10, one below 100, none above (`1.25`, `34.5`, `812`). */
export function shortNumber(n: number): string {
  const abs = Math.abs(n)
  if (abs < 10) return String(Math.round(n * 100) / 100)
  if (abs < 100) return String(Math.round(n * 10) / 10)
  return String(Math.round(n))
}

/** Scores of the weighted rotations and draws: no score, the weight. */
export function weightScores(servers: readonly Backend[]): ServerScore[] {
  return servers.map((b) => ({ id: b.id, note: `weight ${b.weight}`, detail: { weight: b.weight } }))
}

/**
 * Scores of the load-aware algorithms: requests in flight per unit of weight, counting the new one, as
 * they compare them. A server not in `inFlight`'s list (not in rotation) has no score.
 */
export function loadScores(servers: readonly Backend[], inFlight: InFlight): ServerScore[] {
  return servers.map((b) => {
    const i = inFlight.indexOf(b)
    if (i < 0) return { id: b.id, note: 'not in rotation' }
    const count = inFlight.counts[i] as number
    const weight = b.weight
    return {
      id: b.id,
      score: (count + 1) / weight,
      note: weight === 1 ? `${count} in flight` : `${count} in flight weight ${weight}`,
      detail: { inFlight: count, weight },
    }
  })
}

/** The `method` of a best-of-`choices` draw: `p2c` for two. */
export function drawMethod(choices: number): string {
  return choices === 2 ? 'p2c' : `best-of-${choices}`
}
