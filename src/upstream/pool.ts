/**
 * A pool as the data plane sees it: its backends, its balancer, and one upstream dispatcher per backend.
 * Built by the control plane; `select()` is the request-path entry. A pool whose config is unchanged by a
 * reload is kept whole, balancer state and connections included.
 */
import type { Pool as UndiciPool } from 'undici'
import { type Balancer, createBalancer, type PickContext } from '../balancer/index.js'
import type { PoolConfig } from '../config/index.js'
import { formatAddress } from '../core/address.js'
import type { Backend } from '../core/backend.js'
import type { Cell, Metrics } from '../metrics/index.js'
import type { ConnectionRegistry } from './connections.js'

/** One server of the pool with what the request path needs of it, built once per snapshot. */
export interface Selection {
  readonly backend: Backend
  readonly dispatcher: UndiciPool
  /** This server's `switchyard_upstream_requests_total` cell. */
  readonly counter: Cell
  /** Host header sent upstream when the pool does not preserve the client's: `host:port`. */
  readonly hostHeader: string
  /** Registry key of the dispatcher, for `release()`. */
  readonly key: string
}

/** Canonical text of a pool's config: equal keys mean a reload left the pool unchanged. */
export function poolKey(config: PoolConfig): string {
  return JSON.stringify(config)
}

export class UpstreamPool {
  readonly name: string
  readonly config: PoolConfig
  readonly balancer: Balancer
  /** Canonical text of the config, to tell whether a reload changed this pool. */
  readonly key: string
  readonly #dispatchers = new Map<string, Selection>()
  readonly #registry: ConnectionRegistry

  constructor(config: PoolConfig, registry: ConnectionRegistry, metrics: Metrics) {
    this.name = config.name
    this.config = config
    this.key = poolKey(config)
    this.#registry = registry
    const settings = { ...config.connections, connectMs: config.timeouts.connectMs }
    for (const b of config.backends) {
      const { key, pool } = registry.acquire(b, settings)
      this.#dispatchers.set(b.id, {
        backend: b,
        dispatcher: pool,
        counter: metrics.forServer(config.name, b.id),
        hostHeader: formatAddress(b.host, b.port),
        key,
      })
    }
    this.balancer = createBalancer(config.balance)
    this.balancer.update(config.backends)
  }

  /**
   * The first available candidate from the balancer, with its dispatcher; undefined when none is.
   * Every configured backend counts as available until health checking exists.
   */
  select(ctx: PickContext): Selection | undefined {
    for (const backend of this.balancer.pick(ctx)) {
      const selection = this.#dispatchers.get(backend.id)
      if (selection) return selection
    }
    return undefined
  }

  /** Releases this pool's connection references (they close when no other snapshot uses them). */
  release(): void {
    for (const d of this.#dispatchers.values()) this.#registry.release(d.key)
    this.#dispatchers.clear()
  }
}
