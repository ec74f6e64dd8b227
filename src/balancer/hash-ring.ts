/**
 * The consistent hash ring behind `ring-hash` and `ip-hash` (ketama-style). Each server owns points on
 * a 32-bit ring, `hash32("<id>#<n>")` for n = 0, 1, ..., weight × a power of two of them, with at
 * least `minRingSize` points in all; a key belongs to the first point at or after its hash. Removing a server
 * moves only the keys of its points; two instances built from the same servers map every key alike.
 *
 * Bounded loads (Mirrokni, Thorup and Zadimoghaddam, "Consistent Hashing with Bounded Loads"; HAProxy's
 * `hash-balance-factor`): with a factor c, a server already holding at least c × its weighted share of
 * the requests in flight (rounded up, counting the new one) is passed over for the next one on the
 * ring. No server then holds more than about c × the mean, whatever the key skew, and keys move only
 * while their server is saturated.
 */
import type { Backend } from '../core/backend.js'
import { InFlight } from './candidates.js'
import { hash32 } from './hash.js'
import type { PickReport, ServerScore } from './types.js'

export interface RingOptions {
  /** Least number of points on the ring. */
  readonly minRingSize: number
  /** Bounded loads factor (>= 1), or undefined for none. */
  readonly hashBalanceFactor?: number | undefined
}

/** Most points on a ring, whatever the weights and `minRingSize` ask for. */
const MAX_RING_SIZE = 1 << 23

export class HashRing {
  readonly #options: RingOptions
  readonly #inFlight = new InFlight()
  #active: readonly Backend[] = []
  /** Sorted point hashes, and the index (into #active) of each point's server. */
  #points = new Uint32Array(0)
  #owners = new Int32Array(0)
  #weightShare = new Float64Array(0)

  constructor(options: RingOptions) {
    this.#options = options
  }

  get size(): number {
    return this.#points.length
  }

  update(backends: readonly Backend[]): void {
    const active = backends.filter((b) => b.weight > 0)
    const totalWeight = active.reduce((sum, b) => sum + b.weight, 0)
    const perWeight = pointsPerWeight(this.#options.minRingSize, totalWeight)
    const total = active.reduce((sum, b) => sum + b.weight * perWeight, 0)
    const hashes = new Uint32Array(total)
    const owners = new Int32Array(total)
    let k = 0
    active.forEach((b, i) => {
      const points = b.weight * perWeight
      for (let n = 0; n < points; n++) {
        hashes[k] = hash32(`${b.id}#${n}`)
        owners[k] = i
        k++
      }
    })
    // Sort points by hash; equal hashes (rare) are ordered by server id, so every instance agrees.
    // `order` holds point indices below `total`, and every owner is an index into `active`.
    const order = Array.from({ length: total }, (_, j) => j)
    order.sort(
      (x, y) =>
        (hashes[x] as number) - (hashes[y] as number) ||
        compareIds((active[owners[x] as number] as Backend).id, (active[owners[y] as number] as Backend).id),
    )
    this.#points = Uint32Array.from(order, (j) => hashes[j] as number)
    this.#owners = Int32Array.from(order, (j) => owners[j] as number)
    this.#active = active
    this.#weightShare = Float64Array.from(active, (b) => b.weight / totalWeight)
    this.#inFlight.update(active)
  }

  /** Candidates for `key`, best first: ring order from the key's point, saturated servers last. */
  candidates(key: string): Iterable<Backend> {
    if (this.#active.length === 0) return []
    const start = this.#firstPointAt(hash32(key))
    const factor = this.#options.hashBalanceFactor
    return new RingWalk(this, start, factor === undefined ? -1 : this.#firstUnsaturated(start, factor))
  }

  /**
   * Where `key` lands on the ring, for explanations (changes nothing). With bounded loads, each of
   * `servers` says its requests in flight and its bound: a server at its bound passes keys on.
   */
  describe(key: string, servers: readonly Backend[]): PickReport {
    const value = hash32(key)
    const factor = this.#options.hashBalanceFactor
    const next = this.#inFlight.total + 1
    const scores = servers.map((b): ServerScore => {
      const i = this.#inFlight.indexOf(b)
      if (factor === undefined || i < 0) return { id: b.id, note: '' }
      const inFlight = this.#inFlight.counts[i] as number
      const bound = Math.ceil(factor * next * (this.#weightShare[i] as number))
      return {
        id: b.id,
        note: `${inFlight} in flight bound ${bound}${inFlight + 1 > bound ? ' full' : ''}`,
        detail: { inFlight, bound },
      }
    })
    if (this.#points.length === 0) return { method: 'hash', servers: scores }
    return {
      method: 'hash',
      servers: scores,
      hash: { value, unit: 'point', at: this.#firstPointAt(value), size: this.#points.length },
    }
  }

  /** The server of point `p` (below `size`). */
  ownerAt(p: number): number {
    return this.#owners[p] as number
  }

  /** Server `i` (below `servers`), as `ownerAt` gives it. */
  backendAt(i: number): Backend {
    return this.#active[i] as Backend
  }

  get servers(): number {
    return this.#active.length
  }

  onStart(b: Backend): void {
    this.#inFlight.start(b)
  }

  onEnd(b: Backend): void {
    this.#inFlight.end(b)
  }

  #firstPointAt(h: number): number {
    const p = this.#points
    let lo = 0
    let hi = p.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((p[mid] as number) < h) lo = mid + 1
      else hi = mid
    }
    return lo === p.length ? 0 : lo
  }

  /** The first server from point `start` on whose load stays within its bound; -1 when all are full. */
  #firstUnsaturated(start: number, factor: number): number {
    const counts = this.#inFlight.counts
    const next = this.#inFlight.total + 1
    const n = this.#points.length
    for (let step = 0; step < n; step++) {
      const owner = this.#owners[(start + step) % n] as number
      const bound = Math.ceil(factor * next * (this.#weightShare[owner] as number))
      if ((counts[owner] as number) + 1 <= bound) return owner
    }
    return -1
  }
}

/**
 * Points per unit of weight: the power of two that puts at least `minRingSize` points on the ring
 * (at most twice that), and at most MAX_RING_SIZE. A power of two, so that adding or removing a
 * server rarely changes it: the other servers then keep exactly their points, and only the keys of
 * the server that came or went move. When it does change, each server keeps its first points (their
 * hashes depend only on the server id and the point's number) and gains or loses the rest.
 */
function pointsPerWeight(minRingSize: number, totalWeight: number): number {
  if (totalWeight <= 0) return 1
  let perWeight = 2 ** Math.max(0, Math.ceil(Math.log2(minRingSize / totalWeight)))
  while (perWeight > 1 && perWeight * totalWeight > MAX_RING_SIZE) perWeight /= 2
  return perWeight
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/**
 * Walks the ring from a point, yielding each server once: `preferred` first when it is set (the
 * bounded-loads choice), then the others in ring order. The set of servers seen is allocated only
 * when a second candidate is asked for.
 */
class RingWalk implements IterableIterator<Backend> {
  readonly #ring: HashRing
  readonly #start: number
  readonly #preferred: number
  /** The server yielded first, -1 before. */
  #first = -1
  #step = 0
  #yielded = 0
  #seen: Uint8Array | undefined

  constructor(ring: HashRing, start: number, preferred: number) {
    this.#ring = ring
    this.#start = start
    this.#preferred = preferred
  }

  next(): IteratorResult<Backend> {
    const ring = this.#ring
    if (this.#first < 0) {
      this.#first = this.#preferred >= 0 ? this.#preferred : ring.ownerAt(this.#start)
      this.#yielded = 1
      return { done: false, value: ring.backendAt(this.#first) }
    }
    if (this.#yielded >= ring.servers) return { done: true, value: undefined }
    if (this.#seen === undefined) {
      this.#seen = new Uint8Array(ring.servers)
      this.#seen[this.#first] = 1
    }
    const n = ring.size
    while (this.#step < n) {
      const owner = ring.ownerAt((this.#start + this.#step++) % n)
      if (this.#seen[owner] === 1) continue
      this.#seen[owner] = 1
      this.#yielded++
      return { done: false, value: ring.backendAt(owner) }
    }
    return { done: true, value: undefined }
  }

  [Symbol.iterator](): IterableIterator<Backend> {
    return this
  }
}
