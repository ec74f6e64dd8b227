/**
 * `maglev`: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016). Each server walks its own
 * permutation of a prime-sized lookup table (offset and skip from two hashes of its id) and claims
 * free slots in turns until the table is full; a key is looked up in one step, `table[hash % size]`.
 * Shares follow the weights to within one slot, and when one server of n leaves, only slightly more
 * than 1/n of the keys move. The table is built in `update()`; a pick is O(1).
 *
 * Weights: in each round a server gains weight / max weight of a turn and takes a slot per whole turn,
 * so over the build it claims slots in proportion to its weight. Servers are ordered by id first, so
 * the table does not depend on the order of the config's server list.
 */
import { z } from 'zod'
import type { Backend } from '../core/backend.js'
import { hash32, isPrime } from './hash.js'
import { hashOnSchema } from './hash-key.js'
import type { Balancer, PickContext, PickReport } from './types.js'

export const DEFAULT_TABLE_SIZE = 65537

export const schema = z.strictObject({
  algorithm: z.literal('maglev'),
  hashOn: hashOnSchema,
  tableSize: z
    .number()
    .int()
    .refine(isPrime, { error: 'expected a prime number such as 65537 or 655373' })
    .default(DEFAULT_TABLE_SIZE)
    .describe(
      'Slots in the lookup table: a prime, ideally 100 or more times the number of servers. Raised to the next prime above 100 × servers for larger pools.',
    ),
})

/** Seeds of the two hashes that give each server its permutation (offset, skip). */
const OFFSET_SEED = 0x9e3779b9
const SKIP_SEED = 0x7f4a7c15

export class Maglev implements Balancer {
  readonly algorithm = 'maglev'
  readonly #tableSize: number
  #active: readonly Backend[] = []
  #table = new Int32Array(0)

  constructor(tableSize = DEFAULT_TABLE_SIZE) {
    this.#tableSize = tableSize
  }

  /** Slots in the current table. */
  get size(): number {
    return this.#table.length
  }

  update(backends: readonly Backend[]): void {
    const active = backends.filter((b) => b.weight > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    this.#active = active
    const n = active.length
    if (n === 0) {
      this.#table = new Int32Array(0)
      return
    }
    const m = this.#tableSize >= n * 100 ? this.#tableSize : nextPrime(n * 100)
    const offset = Float64Array.from(active, (b) => hash32(b.id, OFFSET_SEED) % m)
    const skip = Float64Array.from(active, (b) => (hash32(b.id, SKIP_SEED) % (m - 1)) + 1)
    const maxWeight = active.reduce((max, b) => Math.max(max, b.weight), 0)
    const share = Float64Array.from(active, (b) => b.weight / maxWeight)
    const credit = new Float64Array(n)
    const nextStep = new Float64Array(n)
    const table = new Int32Array(m).fill(-1)
    let filled = 0
    while (filled < m) {
      // i < n indexes the per-server arrays, and slot < m the table.
      for (let i = 0; i < n && filled < m; i++) {
        const first = offset[i] as number
        const stride = skip[i] as number
        ;(credit[i] as number) += share[i] as number
        while ((credit[i] as number) >= 1 && filled < m) {
          ;(credit[i] as number) -= 1
          let slot = (first + (nextStep[i] as number) * stride) % m
          while ((table[slot] as number) >= 0) {
            ;(nextStep[i] as number)++
            slot = (first + (nextStep[i] as number) * stride) % m
          }
          table[slot] = i
          ;(nextStep[i] as number)++
          filled++
        }
      }
    }
    this.#table = table
  }

  pick(ctx: PickContext): Iterable<Backend> {
    if (this.#active.length === 0) return []
    return new TableWalk(this.#active, this.#table, hash32(ctx.hashKey ?? ctx.clientIp) % this.#table.length)
  }

  /** The table slot the request's key hashes to; the servers of the slots after it follow. */
  describe(ctx: PickContext, servers: readonly Backend[]): PickReport {
    const value = hash32(ctx.hashKey ?? ctx.clientIp)
    const scores = servers.map((b) => ({ id: b.id, note: '' }))
    const size = this.#table.length
    if (size === 0) return { method: 'hash', servers: scores }
    return { method: 'hash', servers: scores, hash: { value, unit: 'slot', at: value % size, size } }
  }
}

/** Yields the server of `slot`, then the servers of the following slots, each once. */
class TableWalk implements IterableIterator<Backend> {
  readonly #active: readonly Backend[]
  readonly #table: Int32Array
  readonly #slot: number
  #step = 0
  #yielded = 0
  #seen: Uint8Array | undefined

  constructor(active: readonly Backend[], table: Int32Array, slot: number) {
    this.#active = active
    this.#table = table
    this.#slot = slot
  }

  // Slots are taken modulo the table size, and every slot holds a server index below n (a full table).
  next(): IteratorResult<Backend> {
    const n = this.#active.length
    const m = this.#table.length
    if (this.#yielded >= n) return { done: true, value: undefined }
    if (this.#yielded === 1 && this.#seen === undefined) {
      this.#seen = new Uint8Array(n)
      this.#seen[this.#table[this.#slot] as number] = 1
    }
    while (this.#step < m) {
      const owner = this.#table[(this.#slot + this.#step++) % m] as number
      if (this.#seen !== undefined) {
        if (this.#seen[owner] === 1) continue
        this.#seen[owner] = 1
      }
      this.#yielded++
      return { done: false, value: this.#active[owner] as Backend }
    }
    return { done: true, value: undefined }
  }

  [Symbol.iterator](): IterableIterator<Backend> {
    return this
  }
}

function nextPrime(n: number): number {
  let p = n % 2 === 0 ? n + 1 : n
  while (!isPrime(p)) p += 2
  return p
}

export function create(options: z.infer<typeof schema>): Balancer {
  return new Maglev(options.tableSize)
}
