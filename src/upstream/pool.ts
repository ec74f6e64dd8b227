/**
 * A pool as the data plane sees it: its backends, its balancers, and one upstream dispatcher per
 * backend. Built by the control plane; `select()` is the request-path entry. A pool whose config is
 * unchanged by a reload is kept whole, balancer state and connections included.
 *
 * - Backup servers (`backup: true`) have a balancer of their own, asked only when no primary server
 *   can take the request.
 * - Slow start (`slowStart`): a server that a reload adds to an existing pool ramps up. While it does,
 *   when the balancer puts it first it is taken with probability `max(elapsed / slowStart, 5%)`, and
 *   otherwise passed over for the next candidate, so its share grows linearly with every algorithm.
 *   (A hashing algorithm's keys thus reach it gradually too.) A brand-new pool starts at full weight.
 * - Circuit breaking: a server with `maxConnections + maxPending` requests in flight is full, and
 *   passed over like a down one. When every server is full, or the pool serves `queue.maxInFlight`
 *   requests, HTTP requests wait in a FIFO queue (bounded by `queue.size` and `queue.timeout`) that
 *   is served as requests end. The counts and the queue outlive reloads.
 */
import type { Pool as UndiciPool } from 'undici'
import {
  type Balancer,
  type BalancerEnv,
  compileHashOn,
  createBalancer,
  defaultEnv,
  type KeyExtractor,
  type KeySource,
  type Outcome,
  type PickContext,
} from '../balancer/index.js'
import type { PoolConfig } from '../config/index.js'
import { formatAddress } from '../core/address.js'
import type { Backend } from '../core/backend.js'
import { OutlierDetector } from '../health/index.js'
import type { Cell, Metrics } from '../metrics/index.js'
import { Stickiness } from '../sticky/index.js'
import type { ConnectionRegistry, ServerLoad } from './connections.js'

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
  /** Requests in flight to the server, from every pool and snapshot that uses its connections. */
  readonly load: ServerLoad
  /** In-flight requests at which the server is full: `maxConnections + maxPending` (Infinity: never). */
  readonly limit: number
}

/** A request waiting in a pool's queue (see UpstreamPool#enqueue). */
export interface QueuedRequest {
  /** Bound to one server (sticky): it may start while others cannot, and the reverse. */
  readonly sticky: boolean
  /** Tries to start now: false when it must keep waiting (no server has room for it). */
  resume(): boolean
  /** It waited `queue.timeout`: answer 503 SWY_OVERLOADED. */
  expire(): void
}

/** What the generations of a pool (same name, across reloads) share: in-flight count and queue. */
class PoolShared {
  inFlight = 0
  /** Waiting requests in arrival order, with their queue-timeout timers. */
  readonly waiting = new Map<QueuedRequest, NodeJS.Timeout>()
  drainScheduled = false
}

/** Canonical text of a pool's config: equal keys mean a reload left the pool unchanged. */
export function poolKey(config: PoolConfig): string {
  return JSON.stringify(config)
}

export class UpstreamPool {
  readonly name: string
  readonly config: PoolConfig
  /** The primary servers' balancer. */
  readonly balancer: Balancer
  /** The backup servers' balancer; undefined when the pool has none. */
  readonly backupBalancer: Balancer | undefined
  /** Canonical text of the config, to tell whether a reload changed this pool. */
  readonly key: string
  /**
   * The request field the balancer hashes (`hashOn`), compiled; undefined when the algorithm hashes
   * nothing or hashes the client address only, so the request path extracts nothing.
   */
  readonly keyOf: KeyExtractor | undefined
  /** Session persistence; undefined when the pool has none. */
  readonly sticky: Stickiness | undefined
  /** Whether the balancers want `started()`/`ended()` feedback. */
  readonly #feedback: boolean
  readonly #dispatchers = new Map<string, Selection>()
  readonly #registry: ConnectionRegistry
  /** Servers still ramping up: id → when they joined (ms, `performance.now()`). Usually empty. */
  readonly #joined = new Map<string, number>()
  readonly #slowStartMs: number
  readonly #now: () => number
  readonly #random: () => number

  /** Servers that health checks found down, replaced whole on every change; undefined: no checks. */
  readonly #health: { readonly down: ReadonlySet<string> } | undefined
  /** Passive health checking; undefined when off. */
  readonly #outlier: OutlierDetector | undefined
  /** Too few primary servers are up (`panicThreshold`): health is ignored until more come back. */
  #panic = false
  /** Retries in flight (counted against `budget.minRetries`). */
  #retriesInFlight = 0
  /** Retries earned and not spent (see tryRetry). */
  #retryTokens = 0
  readonly #shared: PoolShared

  /**
   * `previous`: the pool of the same name that this one replaces on a reload, if any: servers it did
   * not have start slowly (with `slowStart`), and servers still ramping in it keep ramping.
   * `health`: the pool's health tracker, when it has active checks.
   */
  constructor(
    config: PoolConfig,
    registry: ConnectionRegistry,
    metrics: Metrics,
    previous?: UpstreamPool,
    env: BalancerEnv = defaultEnv,
    health?: { readonly down: ReadonlySet<string> },
  ) {
    this.#health = health
    this.#outlier =
      config.outlier === undefined
        ? undefined
        : new OutlierDetector(config.outlier, config.backends.length, () => this.healthChanged())
    this.name = config.name
    this.config = config
    this.key = poolKey(config)
    this.#registry = registry
    this.#now = env.now
    this.#random = env.random
    this.#slowStartMs = config.slowStartMs
    this.#shared = previous === undefined ? new PoolShared() : previous.#shared
    for (const b of config.backends) {
      // The config gives every server its limits (its own, or the pool's).
      const limits = config.serverLimits[b.id]!
      const settings = {
        ...config.connections,
        maxPerServer: limits.maxConnections,
        connectMs: config.timeouts.connectMs,
      }
      const { key, pool, load } = registry.acquire(b, settings)
      this.#dispatchers.set(b.id, {
        backend: b,
        dispatcher: pool,
        counter: metrics.forServer(config.name, b.id),
        hostHeader: formatAddress(b.host, b.port),
        key,
        load,
        limit: limits.maxPending < 0 ? Number.POSITIVE_INFINITY : limits.maxConnections + limits.maxPending,
      })
    }
    this.balancer = createBalancer(config.balance, env)
    if (config.backends.some((b) => b.backup)) this.backupBalancer = createBalancer(config.balance, env)
    this.healthChanged()
    const st = config.sticky
    this.sticky =
      st === undefined
        ? undefined
        : new Stickiness(
            config.name,
            st.mode === 'cookie' ? { ...st, secret: Buffer.from(st.secretHex, 'hex') } : st,
            config.backends.filter((b) => !b.backup),
            undefined,
            previous?.sticky,
          )
    const hashOn = 'hashOn' in config.balance ? config.balance.hashOn : undefined
    this.keyOf = hashOn === undefined || hashOn === 'client-ip' ? undefined : compileHashOn(hashOn)
    this.#feedback = this.balancer.onStart !== undefined || this.balancer.onEnd !== undefined
    if (previous !== undefined && this.#slowStartMs > 0) {
      const now = this.#now()
      for (const b of config.backends) {
        const since = previous.#joined.get(b.id) ?? (previous.#dispatchers.has(b.id) ? undefined : now)
        if (since !== undefined && now - since < this.#slowStartMs) this.#joined.set(b.id, since)
      }
    }
  }

  /**
   * Gives the balancers the servers that may take new requests: not draining, and not down by health
   * checks. Called at construction and on every health transition (control plane), so that the
   * balancers spread the load over the servers that are up rather than hand a down server's share to
   * its neighbour.
   */
  healthChanged(): void {
    // A draining server takes no new requests from the balancers; sessions bound to it stay.
    const open = this.config.backends.filter((b) => !b.draining)
    const primaries = open.filter((b) => !b.backup)
    const upPrimaries = primaries.filter((b) => !this.#isDown(b.id))
    const threshold = this.config.panicThreshold
    this.#panic = threshold > 0 && primaries.length > 0 && (upPrimaries.length * 100) / primaries.length < threshold
    this.balancer.update(this.#panic ? primaries : upPrimaries)
    this.backupBalancer?.update(open.filter((b) => b.backup && !this.#isDown(b.id)))
  }

  /** Down by active checks or ejected by outlier detection (and not in panic mode). */
  #isDown(id: string): boolean {
    const down = this.#health?.down
    if (down !== undefined && down.size > 0 && down.has(id)) return true
    const ejected = this.#outlier?.ejected
    return ejected !== undefined && ejected.size > 0 && ejected.has(id)
  }

  /** A server came back up (health checks): it ramps up again, with `slowStart`. */
  startRamp(id: string): void {
    if (this.#slowStartMs > 0 && this.#dispatchers.has(id)) this.#joined.set(id, this.#now())
  }

  /** Servers still in slow start, with the share of their weight they get now (0.05 to 1). */
  rampingServers(): Map<string, number> {
    const now = this.#now()
    return new Map([...this.#joined].map(([id, since]) => [id, this.#ramp(now, since)]))
  }

  /**
   * The first available candidate, primary servers first, then backups, with its dispatcher;
   * undefined when none is. Every configured server counts as available until health checking exists.
   */
  select(ctx: PickContext): Selection | undefined {
    return this.take(this.candidates(ctx), ctx)
  }

  /** The primary balancer's candidates for a request, best first; keep them to `take()` retries from. */
  candidates(ctx: PickContext): IterableIterator<Backend> {
    return this.balancer.pick(ctx)[Symbol.iterator]() as IterableIterator<Backend>
  }

  /**
   * The next available server from `candidates` that is none of `tried`, else from the backups;
   * undefined when there is none. Consumes the candidates it passes over, so that a retry continues
   * where the first choice left off (round-robin's next server, P2C's runner-up, the ring's next).
   */
  take(candidates: IterableIterator<Backend>, ctx: PickContext, tried?: readonly string[]): Selection | undefined {
    return (
      this.#first(candidates, tried) ??
      (this.backupBalancer === undefined ? undefined : this.#first(this.backupBalancer.pick(ctx), tried))
    )
  }

  /**
   * For a pool with `sticky`: the server the request is bound to when it can take it, else the
   * balancer's choice; with the `Set-Cookie` value that binds the client to it, when one is due.
   * `full` when the bound server is up but full: the request waits for it rather than lose its session.
   */
  selectSticky(
    ctx: PickContext,
    src: KeySource,
  ): { selection: Selection; setCookie: string | undefined } | 'full' | undefined {
    const sticky = this.sticky!
    const bound = sticky.bound(src)
    const checkHealth = !this.#panic
    if (typeof bound === 'string') {
      const selection = this.#dispatchers.get(bound)
      // Still bound (and up): a renewed cookie only when the binding is past half its life.
      if (selection !== undefined && !(checkHealth && this.#isDown(bound))) {
        if (isFull(selection)) return 'full'
        return { selection, setCookie: sticky.issue(bound, bound) }
      }
    } else if (bound !== undefined) {
      for (const backend of bound) {
        const selection = this.#dispatchers.get(backend.id)
        if (selection !== undefined && !(checkHealth && this.#isDown(backend.id))) {
          if (isFull(selection)) return 'full'
          return { selection, setCookie: undefined }
        }
      }
    }
    const selection = this.select(ctx)
    if (selection === undefined) return undefined
    return { selection, setCookie: sticky.issue(selection.backend.id, typeof bound === 'string' ? bound : undefined) }
  }

  #first(candidates: Iterable<Backend>, exclude?: readonly string[]): Selection | undefined {
    let passedOver: Selection | undefined
    const checkHealth = !this.#panic
    for (const backend of candidates) {
      const selection = this.#dispatchers.get(backend.id)
      if (selection === undefined || (checkHealth && this.#isDown(backend.id))) continue
      if (exclude?.includes(backend.id) || isFull(selection)) continue
      if (this.#joined.size === 0 || !this.#skipWhileRamping(backend.id)) return selection
      passedOver ??= selection
    }
    // Every candidate was ramping and lost its draw: the best of them still beats no server.
    return passedOver
  }

  /** True when a ramping server loses its draw for this request. Ends the ramp when it is over. */
  #skipWhileRamping(id: string): boolean {
    const since = this.#joined.get(id)
    if (since === undefined) return false
    const now = this.#now()
    if (now - since >= this.#slowStartMs) {
      this.#joined.delete(id)
      return false
    }
    return this.#random() >= this.#ramp(now, since)
  }

  #ramp(now: number, since: number): number {
    return Math.min(1, Math.max(MIN_RAMP, (now - since) / this.#slowStartMs))
  }

  /**
   * Takes a place in the retry budget. Each request earns `budget.percent` / 100 of a retry (saved up
   * to RETRY_SAVINGS requests' worth), and each retry spends one, so over time retries stay within
   * that share of the requests, however the pool fails. `budget.minRetries` retries may always be in
   * flight besides, so that a quiet pool can retry at all. False when the budget is spent. Pair with
   * `retryEnded()`.
   */
  tryRetry(): boolean {
    if (this.#retriesInFlight < this.config.retries.budgetMinRetries) {
      this.#retriesInFlight++
      return true
    }
    if (this.#retryTokens < 1) return false
    this.#retryTokens -= 1
    this.#retriesInFlight++
    return true
  }

  retryEnded(): void {
    this.#retriesInFlight--
  }

  /** A request to this pool began (its first try): it earns its share of a retry. */
  requestBegan(): void {
    const share = this.config.retries.budgetPercent / 100
    this.#retryTokens = Math.min(this.#retryTokens + share, Math.max(1, share * RETRY_SAVINGS))
  }

  /** A request (or TCP connection) to `selection`'s server begins. Pair with exactly one `ended()`. */
  started(selection: Selection): void {
    selection.load.inFlight++
    const backend = selection.backend
    if (this.#feedback) (backend.backup ? this.backupBalancer : this.balancer)?.onStart?.(backend)
  }

  /** The request to `selection`'s server ended: `latencyMs` to its response head (or to its end, without one). */
  ended(selection: Selection, outcome: Outcome, latencyMs: number): void {
    selection.load.inFlight--
    const backend = selection.backend
    this.#outlier?.record(backend.id, outcome === 'success')
    if (this.#feedback) (backend.backup ? this.backupBalancer : this.balancer)?.onEnd?.(backend, outcome, latencyMs)
    if (this.#shared.waiting.size > 0) this.#scheduleDrain()
  }

  /**
   * Every server that could take the request is full (circuit breaking): what an empty `take()` or
   * `select()` means when this is true, rather than no server being up.
   */
  saturated(): boolean {
    const checkHealth = !this.#panic
    let full = false
    for (const s of this.#dispatchers.values()) {
      if (s.backend.draining || (checkHealth && this.#isDown(s.backend.id))) continue
      if (!isFull(s)) return false
      full = true
    }
    return full
  }

  /** The pool may start another request now: under `queue.maxInFlight`, and nobody waiting before it. */
  admits(): boolean {
    const max = this.config.queue.maxInFlight
    return (max === 0 || this.#shared.inFlight < max) && this.#shared.waiting.size === 0
  }

  /** A request started (it holds a place under `queue.maxInFlight`). Pair with `requestEnded()`. */
  admitted(): void {
    this.#shared.inFlight++
  }

  requestEnded(): void {
    this.#shared.inFlight--
    if (this.#shared.waiting.size > 0) this.#scheduleDrain()
  }

  /**
   * Queues a request that cannot start yet; false when the queue is full (or there is none). It is
   * resumed, in arrival order, as requests end, or expired after `queue.timeout`.
   */
  enqueue(request: QueuedRequest): boolean {
    const { size, timeoutMs } = this.config.queue
    const waiting = this.#shared.waiting
    if (waiting.size >= size) return false
    const timer = setTimeout(() => {
      waiting.delete(request)
      request.expire()
    }, timeoutMs)
    waiting.set(request, timer)
    this.#scheduleDrain()
    return true
  }

  /** Takes a request out of the queue (its client left). */
  dequeue(request: QueuedRequest): void {
    const timer = this.#shared.waiting.get(request)
    if (timer === undefined) return
    clearTimeout(timer)
    this.#shared.waiting.delete(request)
  }

  /** Requests waiting in the queue. */
  get queued(): number {
    return this.#shared.waiting.size
  }

  #scheduleDrain(): void {
    if (this.#shared.drainScheduled) return
    this.#shared.drainScheduled = true
    queueMicrotask(this.#drain)
  }

  /**
   * Starts waiting requests in arrival order while the pool has room. A request that finds no server
   * means none of the others would either, unless they are sticky (bound to a server of their own).
   */
  readonly #drain = (): void => {
    const shared = this.#shared
    shared.drainScheduled = false
    const max = this.config.queue.maxInFlight
    let othersBlocked = false
    for (const [request, timer] of shared.waiting) {
      if (max > 0 && shared.inFlight >= max) return
      if (othersBlocked && !request.sticky) continue
      if (request.resume()) {
        clearTimeout(timer)
        shared.waiting.delete(request)
      } else if (!request.sticky) othersBlocked = true
    }
  }

  /** Releases this pool's connection references (they close when no other snapshot uses them). */
  release(): void {
    for (const d of this.#dispatchers.values()) this.#registry.release(d.key)
    this.#dispatchers.clear()
  }
}

/** The server has `maxConnections + maxPending` requests in flight: it takes no more (circuit breaking). */
function isFull(selection: Selection): boolean {
  return selection.load.inFlight >= selection.limit
}

/** Requests whose share of a retry the budget saves up: a burst of failures can spend at most this much. */
const RETRY_SAVINGS = 100

/** Share of its weight a server gets at the start of its slow start. */
const MIN_RAMP = 0.05
