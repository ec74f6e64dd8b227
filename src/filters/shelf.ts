/**
 * State that a rule keeps across reloads: a rate-limit table that a reload rebuilt would give every
 * client a fresh bucket (nginx keeps its `limit_req` zones across a reload too). The instance owns one
 * shelf; a rule takes its state by a key that names the rule's place and settings, so that a reload
 * that keeps them finds the same object, and one that changes them starts afresh.
 *
 * Each reload is a generation: `begin()` before its snapshots are built, `end()` after; what no
 * snapshot of the new generation took is dropped (the old snapshots keep their own references while
 * their requests finish).
 */
export class Shelf {
  readonly #items = new Map<string, unknown>()
  #taken = new Set<string>()

  /** The object kept under `key`, made by `create` when there is none. */
  take<T>(key: string, create: () => T): T {
    this.#taken.add(key)
    if (this.#items.has(key)) return this.#items.get(key) as T
    const value = create()
    this.#items.set(key, value)
    return value
  }

  begin(): void {
    this.#taken = new Set()
  }

  /** Drops what this generation did not take. */
  end(): void {
    for (const key of this.#items.keys()) if (!this.#taken.has(key)) this.#items.delete(key)
  }

  get size(): number {
    return this.#items.size
  }
}
