/**
 * The table of `sticky: { mode: app-cookie:NAME }`: session cookie value → server id, learnt from the
 * `Set-Cookie` headers of the servers (after HAProxy's `appsession` and `stick-table`). Bounded: at most
 * `maxEntries` sessions, the least recently used evicted first; an entry unused for `ttlMs` is dropped
 * when next read. A Map in recency order, so every operation is O(1). The clock is passed in.
 *
 * Per process: with several workers, a session learnt by one worker is unknown to the others, which
 * then balance its first request there and learn it from that server's response only if it sets the
 * cookie again. Documented; `cookie` mode has no such limit.
 */
export class SessionTable {
  readonly #maxEntries: number
  readonly #ttlMs: number
  readonly #entries = new Map<string, { server: string; lastUsedMs: number }>()

  constructor(maxEntries: number, ttlMs: number) {
    this.#maxEntries = Math.max(1, maxEntries)
    this.#ttlMs = ttlMs
  }

  get size(): number {
    return this.#entries.size
  }

  /** The server of session `key`, refreshing its recency; undefined when unknown or expired. */
  get(key: string, nowMs: number): string | undefined {
    const e = this.#entries.get(key)
    if (e === undefined) return undefined
    this.#entries.delete(key)
    if (this.#ttlMs > 0 && nowMs - e.lastUsedMs > this.#ttlMs) return undefined
    e.lastUsedMs = nowMs
    this.#entries.set(key, e)
    return e.server
  }

  /** Binds session `key` to `server`, evicting the least recently used entry when full. */
  set(key: string, server: string, nowMs: number): void {
    this.#entries.delete(key)
    this.#entries.set(key, { server, lastUsedMs: nowMs })
    if (this.#entries.size > this.#maxEntries) {
      const oldest = this.#entries.keys().next().value
      if (oldest !== undefined) this.#entries.delete(oldest)
    }
  }

  /** Forgets every session of `server` (it left the pool). O(entries). */
  dropServer(server: string): void {
    for (const [key, e] of this.#entries) if (e.server === server) this.#entries.delete(key)
  }
}
