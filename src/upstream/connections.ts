/**
 * Upstream connection pools (undici `Pool`, one per server origin and settings), shared by every
 * snapshot that references them. A reload that keeps a server keeps its warm keep-alive connections;
 * a pool nobody references any more is closed gracefully: queued and in-flight requests finish first.
 */
import { Pool } from 'undici'
import type { PoolConfig } from '../config/index.js'
import type { Backend } from '../core/backend.js'

/** Requests in flight to one server (its connection pool), counted across every snapshot that uses it. */
export interface ServerLoad {
  inFlight: number
}

interface Entry {
  readonly pool: Pool
  readonly load: ServerLoad
  refs: number
}

export class ConnectionRegistry {
  readonly #entries = new Map<string, Entry>()

  /** Takes a reference on the dispatcher for `backend` with `settings`; pair with `release`. */
  acquire(
    backend: Backend,
    settings: PoolConfig['connections'] & { readonly connectMs: number },
  ): { key: string; pool: Pool; load: ServerLoad } {
    const key = `${backend.origin}|${settings.connectMs}|${settings.maxPerServer}|${settings.keepAliveMs}`
    let entry = this.#entries.get(key)
    if (!entry) {
      entry = {
        pool: new Pool(backend.origin, {
          connections: settings.maxPerServer,
          pipelining: 1,
          // keepAlive 0: every request closes its connection (see the exchange); undici needs a positive value.
          keepAliveTimeout: Math.max(settings.keepAliveMs, 1),
          // Also the longest a server's Keep-Alive hint may keep an idle connection: never past ours.
          keepAliveMaxTimeout: Math.max(settings.keepAliveMs, 1),
          connect: { timeout: settings.connectMs, noDelay: true },
          strictContentLength: true,
        }),
        load: { inFlight: 0 },
        refs: 0,
      }
      this.#entries.set(key, entry)
    }
    entry.refs++
    return { key, pool: entry.pool, load: entry.load }
  }

  /** Drops a reference; the last one closes the dispatcher once its requests are done. */
  release(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    if (--entry.refs > 0) return
    this.#entries.delete(key)
    entry.pool.close().catch(() => {})
  }

  /** Closes everything; in-flight requests are aborted after `graceMs`. */
  async closeAll(graceMs: number): Promise<void> {
    const pools = [...this.#entries.values()].map((e) => e.pool)
    this.#entries.clear()
    await Promise.all(
      pools.map(async (p) => {
        const timer = setTimeout(() => p.destroy().catch(() => {}), graceMs)
        try {
          await p.close()
        } catch {
          // destroyed after the grace period: nothing more to do
        } finally {
          clearTimeout(timer)
        }
      }),
    )
  }

  get size(): number {
    return this.#entries.size
  }
}
