/**
 * Per-key counts of what is in flight (requests, connections), for concurrency limits. A key exists
 * only while its count is above 0, so the table is never larger than what is in flight.
 */
export class InFlight {
  readonly #counts = new Map<string, number>()

  /** Counts one more for `key` unless it already has `limit`; false: at the limit, nothing counted. */
  tryAcquire(key: string, limit: number): boolean {
    const n = this.#counts.get(key) ?? 0
    if (n >= limit) return false
    this.#counts.set(key, n + 1)
    return true
  }

  /** One less for `key` (a key at 0 is forgotten). Call once per successful `tryAcquire`. */
  release(key: string): void {
    const n = this.#counts.get(key)
    if (n === undefined) return
    if (n <= 1) this.#counts.delete(key)
    else this.#counts.set(key, n - 1)
  }

  count(key: string): number {
    return this.#counts.get(key) ?? 0
  }

  /** Keys with something in flight. */
  get size(): number {
    return this.#counts.size
  }
}
