/** Shared pieces for balancers: a best-first candidate iterator and smooth weighted selection. */
import type { Backend } from '../core/backend.js'

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
    return { done: false, value: this.#list[idx]! }
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
      const score = cur[i]! + w[i]!
      cur[i] = score
      if (score > bestScore) {
        bestScore = score
        best = i
      }
    }
    if (best >= 0) cur[best]! -= this.total
    return best
  }
}
