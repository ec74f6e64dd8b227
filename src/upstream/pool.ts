/**
 * A pool as the data plane sees it: its members (servers with their upstream connections), its
 * balancers, and the admission of requests. Built by the control plane; `admit()` is the request-path
 * entry. A pool whose config is unchanged by a reload is kept whole, balancer state and connections
 * included.
 *
 * - Admission hands out leases (see PoolLease): `admit()` answers `go` with a lease, `wait` (the request
 *   is queued and is granted a lease later, or expires), or `reject` with a code. A lease's `end()` is
 *   idempotent, and so is the end of each try it begins, so the request path keeps no pairing flags.
 * - Backup servers (`backup: true`) have a balancer of their own, asked only when no primary server
 *   can take the request.
 * - Slow start (`slowStart`): a server that a reload adds to an existing pool ramps up. While it does,
 *   when the balancer puts it first it is taken with probability `max(elapsed / slowStart, 5%)`, and
 *   otherwise passed over for the next candidate, so its share grows linearly with every algorithm.
 *   (A hashing algorithm's keys thus reach it gradually too.) A brand-new pool starts at full weight.
 * - Circuit breaking: a server with `maxConnections + maxPending` requests in flight is full, and
 *   passed over like a down one. When every server is full, or the pool serves `queue.maxInFlight`
 *   requests, HTTP requests wait in a FIFO queue (bounded by `queue.size` and `queue.timeout`) that
 *   is served as requests end. The counts and the queue outlive reloads: a queued request, and a
 *   retry waiting out its backoff, are served by the pool's newest generation.
 * - The pool's spec (its config less its servers) is kept apart from its members, which
 *   `setMembers()` replaces without rebuilding the pool.
 */

import {
  type Balancer,
  type BalancerEnv,
  type BalancerTable,
  compileHashOn,
  createBalancer,
  defaultEnv,
  type KeyExtractor,
  type KeySource,
  type Outcome,
  type PickContext,
} from '../balancer/index.js'
import type { PoolConfig, ServerLimits } from '../config/index.js'
import { formatAddress } from '../core/address.js'
import type { Backend } from '../core/backend.js'
import { ConnectEjector, OutlierDetector } from '../health/index.js'
import type { ServerConnections } from '../l7/upstream.js'
import { InFlight } from '../limits/index.js'
import type { DurationCell, Metrics, ServerCells } from '../metrics/index.js'
import { Stickiness } from '../sticky/index.js'
import type { ConnectionRegistry, ServerLoad } from './connections.js'
import { loadUpstreamTls, type UpstreamTls } from './tls.js'

/** One server of the pool with what the request path needs of it, built once per member set. */
export interface Selection {
  readonly backend: Backend
  /** The connections to the server, whichever engine holds them. */
  readonly connections: ServerConnections
  /** This server's request-path metrics (requests, in flight, durations, errors). */
  readonly cells: ServerCells
  /** Host header sent upstream when the pool does not preserve the client's: `host:port`. */
  readonly hostHeader: string
  /** Registry key of the connections, for `release()`. */
  readonly key: string
  /** Requests in flight to the server, from every pool and snapshot that uses its connections. */
  readonly load: ServerLoad
  /** In-flight requests at which the server is full: `maxConnections + maxPending` (Infinity: never). */
  readonly limit: number
  /** In-flight requests its connections carry at once: `maxConnections` (× `maxConcurrentStreams` over HTTP/2). */
  readonly capacity: number
}

/** What admission needs of a request. */
export interface AdmitRequest {
  readonly ctx: PickContext
  /** What a sticky pool reads the binding from; undefined when the pool has no `sticky`. */
  readonly keySource: KeySource | undefined
  /**
   * Reorders or filters the candidates (the `selectUpstream` phase), best first; undefined when no
   * filter has that phase. Called with every available candidate, primaries then backups.
   */
  readonly select?: ((candidates: readonly Selection[]) => readonly Selection[]) | undefined
}

/** A queued request: the pool grants it a lease later, or expires it. */
export interface Waiter {
  /** Bound to one server (sticky): it may start while others cannot, and the reverse. */
  readonly sticky: boolean
  granted(lease: PoolLease): void
  /**
   * It leaves the queue unserved: it waited `queue.timeout` (`SWY_OVERLOADED`), or no server is left
   * that could take it (`SWY_NO_SERVER`: every server down, or removed by a reload).
   */
  rejected(code: 'SWY_NO_SERVER' | 'SWY_OVERLOADED', reason: string): void
}

export type Admission =
  | { readonly kind: 'go'; readonly lease: PoolLease }
  /** Queued: `granted()` or `expired()` follows, unless `cancel()` is called first. */
  | { readonly kind: 'wait'; cancel(): void }
  | {
      readonly kind: 'reject'
      readonly code: 'SWY_NO_SERVER' | 'SWY_OVERLOADED' | 'SWY_RATE_LIMITED'
      readonly reason: string
    }

/** What the generations of a pool (same name, across reloads) share. */
class PoolShared {
  inFlight = 0
  /** Leases held per client address, for `connections.maxClientShare`. */
  readonly perClient = new InFlight()
  /** Waiting requests in arrival order, with their queue-timeout timers and when they came (`performance.now()`). */
  readonly waiting = new Map<
    Waiter,
    { readonly request: AdmitRequest; readonly timer: NodeJS.Timeout; readonly sinceMs: number }
  >()
  /** Time spent in the queue (`switchyard_pool_queue_wait_seconds`), observed as each request leaves it. */
  readonly queueWait: DurationCell
  drainScheduled = false
  /** The generation that serves now (set when a snapshot that holds it is committed). */
  current: UpstreamPool | undefined
  /** Each server's state, and since when (ms since the epoch), as the serving generation last saw it. */
  readonly states = new Map<string, { state: ServerState; sinceMs: number }>()
  /** Servers ejected by passive health (outlier detection or a failed connect), as last reported. */
  ejected: ReadonlyMap<string, EjectionEvent['reason']> = new Map()

  constructor(queueWait: DurationCell) {
    this.queueWait = queueWait
  }

  /** `waiter` leaves the queue (served, expired or gone): its wait is observed. */
  leave(waiter: Waiter, sinceMs: number): void {
    this.waiting.delete(waiter)
    this.queueWait.observe((performance.now() - sinceMs) / 1000)
  }
}

/**
 * Where a server stands, in the order that decides when several hold: taken out at runtime
 * (`disabled`), draining (config or runtime), down by active checks, ejected by passive health, or up.
 */
export type ServerState = 'up' | 'down' | 'ejected' | 'draining' | 'disabled'

/** A server's ejection began or ended (passive health), as the pool's `onEjection` hears it. */
export interface EjectionEvent {
  readonly pool: string
  readonly server: string
  readonly ejected: boolean
  /** What ejected it: `outlier` (failed requests) or `connect-failure`. */
  readonly reason: 'outlier' | 'connect-failure'
}

/** Where a member stands for a new request now (UpstreamPool#standing): what explanations report. */
export interface MemberStanding {
  readonly backend: Backend
  readonly state: ServerState
  /** What ejected it, when `state` is `ejected`. */
  readonly ejectedBy: EjectionEvent['reason'] | undefined
  /** It has `maxConnections + maxPending` requests in flight: it takes no more. */
  readonly full: boolean
  readonly inFlight: number
}

/** Canonical text of a pool's config: equal keys mean a reload left the pool unchanged. */
export function poolKey(config: PoolConfig): string {
  return JSON.stringify(config)
}

export interface PoolOptions {
  /** The pool of the same name that this one replaces on a reload, if any. */
  readonly previous?: UpstreamPool | undefined
  /** Clock and randomness, for tests. */
  readonly env?: BalancerEnv | undefined
  /** Servers that active health checks found down; undefined: the pool has no checks. */
  readonly health?: { readonly down: ReadonlySet<string> } | undefined
  /** Where the algorithm is looked up: the built-ins and those plugins add. Default: the built-ins. */
  readonly balancers?: BalancerTable | undefined
  /** The pool's TLS material, read from its `tls` (upstream/tls.ts). Default: read here. */
  readonly tls?: UpstreamTls | undefined
  /** Told when a server's passive-health ejection begins or ends, while this generation serves. */
  readonly onEjection?: ((event: EjectionEvent) => void) | undefined
}

export class UpstreamPool {
  readonly name: string
  readonly config: PoolConfig
  /** The primary servers' balancer. */
  readonly balancer: Balancer
  /** The backup servers' balancer; undefined when the pool has none. */
  readonly backupBalancer: Balancer | undefined
  /** Canonical text of the config, to tell whether a reload changed this pool. */
  /** TLS to its `https://` servers (the system CAs when the pool has no `tls`). */
  readonly tls: UpstreamTls
  readonly key: string
  /**
   * The request field the balancer hashes (`hashOn`), compiled; undefined when the algorithm hashes
   * nothing or hashes the client address only, so the request path extracts nothing.
   */
  readonly keyOf: KeyExtractor | undefined
  /** Session persistence; undefined when the pool has none. */
  readonly sticky: Stickiness | undefined
  /** Whether the balancers want start/end feedback. */
  readonly #feedback: boolean
  #members = new Map<string, Selection>()
  #backends: readonly Backend[] = []
  readonly #registry: ConnectionRegistry
  readonly #metrics: Metrics
  /** Servers still ramping up: id → when they joined (ms, `performance.now()`). Usually empty. */
  readonly #joined = new Map<string, number>()
  readonly #slowStartMs: number
  readonly #now: () => number
  readonly #random: () => number
  /** Servers that health checks found down, replaced whole on every change; undefined: no checks. */
  readonly #health: { readonly down: ReadonlySet<string> } | undefined
  /** Passive health checking; undefined when off. */
  readonly #outlier: OutlierDetector | undefined
  /** Servers out of rotation after a refused or timed-out connection; undefined when off. */
  readonly #ejector: ConnectEjector | undefined
  /** Too few primary servers are up (`panicThreshold`): health is ignored until more come back. */
  #panic = false
  /** Retries in flight (counted against `budget.minRetries`). */
  #retriesInFlight = 0
  /** Retries earned and not spent (see canRetry). */
  #retryTokens = 0
  /** The generation was replaced by a reload: its leases hop to the newest one for further tries. */
  #retired = false
  readonly #shared: PoolShared
  /** Most leases one client address may hold at once (`connections.maxClientShare`); 0: no limit. */
  #clientCap = 0
  readonly #onEjection: ((event: EjectionEvent) => void) | undefined

  constructor(config: PoolConfig, registry: ConnectionRegistry, metrics: Metrics, options: PoolOptions = {}) {
    const previous = options.previous
    const env = options.env ?? defaultEnv
    this.#health = options.health
    this.#onEjection = options.onEjection
    this.name = config.name
    this.config = config
    this.key = poolKey(config)
    this.tls = options.tls ?? loadUpstreamTls(config.name, config.tls)
    this.#registry = registry
    this.#metrics = metrics
    this.#now = env.now
    this.#random = env.random
    this.#slowStartMs = config.slowStartMs
    this.#shared = previous === undefined ? new PoolShared(metrics.queueWaitOf(config.name)) : previous.#shared
    this.#outlier =
      config.outlier === undefined
        ? undefined
        : OutlierDetector.adopt(
            previous === undefined ? undefined : previous.#outlier,
            config.outlier,
            config.backends.length,
            () => this.healthChanged(),
          )
    const ej = config.connectEjection
    this.#ejector =
      ej === undefined
        ? undefined
        : ConnectEjector.adopt(
            previous === undefined ? undefined : previous.#ejector,
            ej,
            config.timeouts.connectMs,
            // Shared by the generations: it tells the one that serves now, which stays the old one
            // when a reload that built this one is refused.
            (id) => (this.#shared.current ?? this).#othersAvailable(id),
            () => (this.#shared.current ?? this).healthChanged(),
          )
    this.balancer = createBalancer(config.balance, env, options.balancers)
    if (config.backends.some((b) => b.backup))
      this.backupBalancer = createBalancer(config.balance, env, options.balancers)
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
    this.setMembers(config.backends, config.serverLimits)
    if (previous !== undefined && this.#slowStartMs > 0) {
      const now = this.#now()
      for (const b of config.backends) {
        const since = previous.#joined.get(b.id) ?? (previous.#members.has(b.id) ? undefined : now)
        if (since !== undefined && now - since < this.#slowStartMs) this.#joined.set(b.id, since)
      }
    }
  }

  /**
   * Replaces the pool's servers (control plane): connections for the new ones, the old ones released,
   * the balancers updated. `limits` gives every server its connection and pending caps.
   */
  setMembers(backends: readonly Backend[], limits: Readonly<Record<string, ServerLimits>>): void {
    const old = this.#members
    const members = new Map<string, Selection>()
    for (const b of backends) {
      const own = limits[b.id] ?? { maxConnections: this.config.connections.maxPerServer, maxPending: -1 }
      const { maxClientShare: _share, maxPending: _pending, ...shared } = this.config.connections
      const settings = {
        ...shared,
        maxPerServer: own.maxConnections,
        connectMs: this.config.timeouts.connectMs,
        engine: this.config.engine,
        protocol: this.config.protocol,
        sendProxyProtocol: this.config.sendProxyProtocol,
        tls: this.tls,
      }
      const { key, connections, load } = this.#registry.acquire(b, settings)
      const capacity =
        own.maxConnections * (this.config.protocol === 'http1' ? 1 : this.config.connections.maxConcurrentStreams)
      members.set(b.id, {
        backend: b,
        connections,
        cells: this.#metrics.forServer(this.name, b.id),
        hostHeader: formatAddress(b.host, b.port),
        key,
        load,
        // Over HTTP/2, each connection carries up to maxConcurrentStreams requests at once.
        limit: own.maxPending < 0 ? Number.POSITIVE_INFINITY : capacity + own.maxPending,
        capacity,
      })
    }
    this.#members = members
    this.#backends = backends
    this.#clientCap = clientCapOf(this.config, members)
    for (const s of old.values()) this.#registry.release(s.key)
    const ids = new Set(members.keys())
    this.#ejector?.retain(ids)
    this.#outlier?.retain(ids)
    this.healthChanged()
  }

  /** The pool's servers now. */
  get backends(): readonly Backend[] {
    return this.#backends
  }

  /**
   * Gives the balancers the servers that may take new requests: not draining, and not down by health
   * checks. Called when the members change and on every health transition (control plane), so that
   * the balancers spread the load over the servers that are up rather than hand a down server's share
   * to its neighbour.
   */
  healthChanged(): void {
    // A draining server takes no new requests from the balancers; sessions bound to it stay. A
    // disabled one takes none at all.
    const open = this.#backends.filter((b) => !b.draining && !b.disabled)
    const primaries = open.filter((b) => !b.backup)
    const upPrimaries = primaries.filter((b) => !this.#isDown(b.id))
    const threshold = this.config.panicThreshold
    this.#panic = threshold > 0 && primaries.length > 0 && (upPrimaries.length * 100) / primaries.length < threshold
    this.balancer.update(this.#panic ? primaries : upPrimaries)
    this.backupBalancer?.update(open.filter((b) => b.backup && !this.#isDown(b.id)))
    if (this.#shared.current === this) this.#recordStates()
  }

  /** Where each server stands now, with since when (the admin API's view). */
  serverStates(): ReadonlyMap<string, { readonly state: ServerState; readonly sinceMs: number }> {
    return this.#shared.states
  }

  /**
   * Where each member stands now, for explanations (never on the normal request path): its state as
   * the admin API names it, what ejected it, whether it is full; `panic` when the pool ignores health
   * (`panicThreshold`), so that down and ejected servers still take requests.
   */
  standing(): { readonly panic: boolean; readonly members: readonly MemberStanding[] } {
    const ejected = this.#ejectedNow()
    const members = [...this.#members.values()].map((s) => ({
      backend: s.backend,
      state: this.#stateOf(s.backend, ejected),
      ejectedBy: ejected.get(s.backend.id),
      full: isFull(s),
      inFlight: s.load.inFlight,
    }))
    return { panic: this.#panic, members }
  }

  /** Servers that passive health ejected: outlier detection, or a refused or timed-out connect. */
  #ejectedNow(): Map<string, EjectionEvent['reason']> {
    const out = new Map<string, EjectionEvent['reason']>()
    for (const id of this.#outlier?.ejected ?? []) out.set(id, 'outlier')
    for (const id of this.#ejector?.ejected ?? []) out.set(id, 'connect-failure')
    return out
  }

  #stateOf(b: Backend, ejected: ReadonlyMap<string, unknown>): ServerState {
    if (b.disabled) return 'disabled'
    if (b.draining) return 'draining'
    if (this.#health?.down.has(b.id) === true) return 'down'
    return ejected.has(b.id) ? 'ejected' : 'up'
  }

  /** Brings the shared states up to date (serving generation only), telling `onEjection` of changes. */
  #recordStates(): void {
    const shared = this.#shared
    const now = Date.now()
    const ejected = this.#ejectedNow()
    const ids = new Set<string>()
    for (const b of this.#backends) {
      ids.add(b.id)
      const state = this.#stateOf(b, ejected)
      if (shared.states.get(b.id)?.state !== state) shared.states.set(b.id, { state, sinceMs: now })
    }
    for (const id of shared.states.keys()) if (!ids.has(id)) shared.states.delete(id)
    const before = shared.ejected
    shared.ejected = ejected
    const tell = this.#onEjection
    if (tell === undefined) return
    for (const [server, reason] of ejected)
      if (!before.has(server)) tell({ pool: this.name, server, ejected: true, reason })
    for (const [server, reason] of before)
      if (!ejected.has(server) && ids.has(server)) tell({ pool: this.name, server, ejected: false, reason })
  }

  /** Down by active checks, ejected by outlier detection or after a failed connect (and not in panic mode). */
  #isDown(id: string): boolean {
    const down = this.#health?.down
    if (down !== undefined && down.size > 0 && down.has(id)) return true
    const ejected = this.#outlier?.ejected
    if (ejected !== undefined && ejected.size > 0 && ejected.has(id)) return true
    const refused = this.#ejector?.ejected
    return refused !== undefined && refused.size > 0 && refused.has(id)
  }

  /** Some server of the pool besides `id` could take requests (not draining, down, or weight 0). */
  #othersAvailable(id: string): boolean {
    return this.#backends.some((b) => b.id !== id && !b.draining && !b.disabled && b.weight > 0 && !this.#isDown(b.id))
  }

  /** A server came back up (health checks): it ramps up again, with `slowStart`. */
  startRamp(id: string): void {
    if (this.#slowStartMs > 0 && this.#members.has(id)) this.#joined.set(id, this.#now())
  }

  /** Servers still in slow start, with the share of their weight they get now (0.05 to 1). */
  rampingServers(): Map<string, number> {
    const now = this.#now()
    return new Map([...this.#joined].map(([id, since]) => [id, this.#ramp(now, since)]))
  }

  /** This generation serves from now on (its snapshot was committed): queued requests drain here. */
  activate(): void {
    this.#shared.current = this
    this.#recordStates()
    if (this.#shared.waiting.size > 0) this.#scheduleDrain()
  }

  /** A reload replaced this generation: releases its connection references (they close when unused). */
  release(): void {
    this.#retired = true
    for (const d of this.#members.values()) this.#registry.release(d.key)
    this.#members = new Map()
  }

  /** The generation that serves now: this one, or the one a reload put in its place. */
  get #live(): UpstreamPool {
    return this.#retired ? (this.#shared.current ?? this) : this
  }

  /**
   * Admission: a lease when the pool has room and a server can take the request; otherwise the
   * request waits in the queue (when `waiter` is given and the queue has room), or is rejected:
   * `SWY_OVERLOADED` when the pool or its servers are at their limits, `SWY_NO_SERVER` when no server
   * is available at all.
   */
  admit(request: AdmitRequest, waiter?: Waiter): Admission {
    const shared = this.#shared
    const cap = this.#clientCap
    if (cap > 0 && shared.perClient.count(request.ctx.clientIp) >= cap)
      return {
        kind: 'reject',
        code: 'SWY_RATE_LIMITED',
        reason: `the client address holds ${cap} requests of the pool, its share (connections.maxClientShare)`,
      }
    const max = this.config.queue.maxInFlight
    if ((max > 0 && shared.inFlight >= max) || shared.waiting.size > 0)
      return this.#queue(request, waiter, 'the pool is at its in-flight limit')
    const lease = this.#tryLease(request)
    if (lease === 'full') return this.#queue(request, waiter, 'every server that can take the request is full')
    if (lease === undefined) return { kind: 'reject', code: 'SWY_NO_SERVER', reason: 'no server is available' }
    return { kind: 'go', lease }
  }

  /** A lease on the first server that can take the request; `full` when the only ones left are full. */
  #tryLease(request: AdmitRequest): PoolLease | 'full' | undefined {
    let first: Selection | undefined
    let setCookie: string | undefined
    let candidates: Iterator<Selection> | undefined
    if (this.sticky !== undefined && request.keySource !== undefined) {
      const sticky = this.#selectSticky(request.ctx, request.keySource)
      if (sticky === 'full') return 'full'
      first = sticky?.selection
      setCookie = sticky?.setCookie
    } else {
      candidates = this.#candidates(request)
      first = this.#next(candidates, undefined)
    }
    if (first === undefined) return this.saturated() ? 'full' : undefined
    this.#shared.inFlight++
    if (this.#clientCap > 0) this.#shared.perClient.tryAcquire(request.ctx.clientIp, Number.POSITIVE_INFINITY)
    return new PoolLease(this, request, first, setCookie, candidates)
  }

  #queue(request: AdmitRequest, waiter: Waiter | undefined, why: string): Admission {
    const { size, timeoutMs } = this.config.queue
    const waiting = this.#shared.waiting
    if (waiter === undefined || waiting.size >= size)
      return { kind: 'reject', code: 'SWY_OVERLOADED', reason: size === 0 ? why : `${why}, and the queue is full` }
    const sinceMs = performance.now()
    const timer = setTimeout(() => {
      this.#shared.leave(waiter, sinceMs)
      waiter.rejected('SWY_OVERLOADED', `waited ${timeoutMs} ms in the queue`)
    }, timeoutMs)
    waiting.set(waiter, { request, timer, sinceMs })
    this.#scheduleDrain()
    return {
      kind: 'wait',
      cancel: () => {
        const entry = waiting.get(waiter)
        if (entry === undefined) return
        clearTimeout(entry.timer)
        this.#shared.leave(waiter, entry.sinceMs)
      },
    }
  }

  /** Requests waiting in the queue. */
  get queued(): number {
    return this.#shared.waiting.size
  }

  /** Servers ejected by passive health now, with what ejected each, as the serving generation last saw. */
  get ejected(): ReadonlyMap<string, EjectionEvent['reason']> {
    return this.#shared.ejected
  }

  /**
   * Each server's requests waiting for one of its connections now: those in flight beyond its
   * `capacity`, as admission counts them (tunnels hold their place too). A server whose connections
   * another pool shares (same URL and settings) counts at most this pool's own requests.
   */
  pending(): [server: string, count: number][] {
    const out: [string, number][] = []
    for (const s of this.#members.values())
      out.push([s.backend.id, Math.max(0, Math.min(s.cells.inFlight.value, s.load.inFlight - s.capacity))])
    return out
  }

  #scheduleDrain(): void {
    if (this.#shared.drainScheduled) return
    this.#shared.drainScheduled = true
    queueMicrotask(this.#drain)
  }

  /**
   * Grants leases to waiting requests in arrival order while the pool has room, from the generation
   * that serves now. A request that finds no server means none of the others would either, unless
   * they are sticky (bound to a server of their own).
   */
  readonly #drain = (): void => {
    const shared = this.#shared
    shared.drainScheduled = false
    const pool = shared.current ?? this
    const max = pool.config.queue.maxInFlight
    let othersBlocked = false
    for (const [waiter, { request, timer, sinceMs }] of shared.waiting) {
      if (max > 0 && shared.inFlight >= max) return
      if (othersBlocked && !waiter.sticky) continue
      const lease = pool.#tryLease(request)
      if (lease instanceof PoolLease) {
        clearTimeout(timer)
        shared.leave(waiter, sinceMs)
        waiter.granted(lease)
      } else if (lease === undefined && !pool.saturated()) {
        // Nothing can take it (every server down, or removed by the reload): answered, not kept.
        clearTimeout(timer)
        shared.leave(waiter, sinceMs)
        waiter.rejected('SWY_NO_SERVER', 'no server is available')
      } else if (!waiter.sticky) othersBlocked = true
    }
  }

  /** The candidates for a request, best first: primaries, then backups, through `select` when given. */
  #candidates(request: AdmitRequest): Iterator<Selection> {
    const ctx = request.ctx
    const all = this.#selections(this.balancer.pick(ctx), this.backupBalancer, ctx)
    if (request.select === undefined) return all
    const available: Selection[] = []
    for (let r = all.next(); r.done !== true; r = all.next()) if (this.#available(r.value)) available.push(r.value)
    return request.select(available)[Symbol.iterator]()
  }

  /** The balancers' candidates (primaries, then backups) as this generation's members. */
  #selections(primary: Iterable<Backend>, backup: Balancer | undefined, ctx: PickContext): Iterator<Selection> {
    return new MemberWalk(this.#members, primary[Symbol.iterator](), backup, ctx)
  }

  /**
   * The next available server from `candidates` that is none of `tried`; undefined when there is
   * none. Consumes the candidates it passes over, so that a retry continues where the first choice
   * left off (round-robin's next server, P2C's runner-up, the ring's next).
   */
  #next(candidates: Iterator<Selection>, tried: readonly string[] | undefined): Selection | undefined {
    let passedOver: Selection | undefined
    for (let r = candidates.next(); r.done !== true; r = candidates.next()) {
      const selection = r.value
      const id = selection.backend.id
      if (!this.#available(selection) || tried?.includes(id)) continue
      if (this.#joined.size === 0 || !this.#skipWhileRamping(id)) return selection
      passedOver ??= selection
    }
    // Every candidate was ramping and lost its draw: the best of them still beats no server.
    return passedOver
  }

  /**
   * For a pool with `sticky`: the server the request is bound to when it can take it, else the
   * balancer's choice; with the `Set-Cookie` value that binds the client to it, when one is due.
   * `full` when the bound server is up but full: the request waits for it rather than lose its session.
   */
  #selectSticky(
    ctx: PickContext,
    src: KeySource,
  ): { selection: Selection; setCookie: string | undefined } | 'full' | undefined {
    const sticky = this.sticky as Stickiness
    const bound = sticky.bound(src)
    const checkHealth = !this.#panic
    if (typeof bound === 'string') {
      const selection = this.#members.get(bound)
      // Still bound (and up): a renewed cookie only when the binding is past half its life.
      if (selection !== undefined && !selection.backend.disabled && !(checkHealth && this.#isDown(bound))) {
        if (isFull(selection)) return 'full'
        return { selection, setCookie: sticky.issue(bound, bound) }
      }
    } else if (bound !== undefined) {
      for (const backend of bound) {
        const selection = this.#members.get(backend.id)
        if (selection !== undefined && !selection.backend.disabled && !(checkHealth && this.#isDown(backend.id))) {
          if (isFull(selection)) return 'full'
          return { selection, setCookie: undefined }
        }
      }
    }
    const selection = this.#next(this.#selections(this.balancer.pick(ctx), this.backupBalancer, ctx), undefined)
    if (selection === undefined) return undefined
    return { selection, setCookie: sticky.issue(selection.backend.id, typeof bound === 'string' ? bound : undefined) }
  }

  /** The first available server for a request (tests and tools; requests take leases). */
  select(ctx: PickContext): Selection | undefined {
    return this.#next(this.#candidates({ ctx, keySource: undefined }), undefined)
  }

  /** A further server for a lease's retry, from the generation that serves now. */
  nextFor(
    lease: PoolLease,
    candidates: Iterator<Selection> | undefined,
    tried: readonly string[],
  ): Selection | undefined {
    const live = this.#live
    // Sticky pools keep no candidate list, and a new generation has its own: a fresh pick there.
    const list = candidates !== undefined && live === this ? candidates : live.#candidates(lease.request)
    return live.#next(list, tried)
  }

  /** A member of this generation that is up (or the pool is in panic mode) and not full. */
  #available(selection: Selection): boolean {
    const id = selection.backend.id
    return (
      this.#members.get(id) === selection &&
      !selection.backend.disabled &&
      !(!this.#panic && this.#isDown(id)) &&
      !isFull(selection)
    )
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
   * Whether a retry may go now. Each request earns `budget.percent` / 100 of a retry (saved up to
   * RETRY_SAVINGS requests' worth), and each retry spends one, so over time retries stay within that
   * share of the requests, however the pool fails. `budget.minRetries` retries may always be in flight
   * besides, so that a quiet pool can retry at all.
   */
  canRetry(): boolean {
    return this.#retriesInFlight < this.config.retries.budgetMinRetries || this.#retryTokens >= 1
  }

  /** Spends a place in the retry budget; false when it is spent. Ended by `retryEnded()`. */
  takeRetry(): boolean {
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
  earnRetry(): void {
    const share = this.config.retries.budgetPercent / 100
    this.#retryTokens = Math.min(this.#retryTokens + share, Math.max(1, share * RETRY_SAVINGS))
  }

  /** A request (or TCP connection) to `selection`'s server begins: load and balancer feedback. */
  startOn(selection: Selection): void {
    selection.load.inFlight++
    const backend = selection.backend
    if (this.#feedback) (backend.backup ? this.backupBalancer : this.balancer)?.onStart?.(backend)
  }

  /** The request to `selection`'s server ended: `latencyMs` to its response head (or to its end, without one). */
  endOn(selection: Selection, outcome: TryOutcome, latencyMs: number): void {
    selection.load.inFlight--
    const backend = selection.backend
    const balancerOutcome: Outcome = outcome === 'success' ? 'success' : 'failure'
    if (outcome === 'connect-failure') this.#ejector?.refused(selection.backend)
    else if (outcome === 'success') this.#ejector?.succeeded(backend.id)
    this.#outlier?.record(backend.id, outcome === 'success')
    if (this.#feedback)
      (backend.backup ? this.backupBalancer : this.balancer)?.onEnd?.(backend, balancerOutcome, latencyMs)
    if (this.#shared.waiting.size > 0) this.#scheduleDrain()
  }

  /** A lease ended: its place under `queue.maxInFlight` (and its client's share) is free. */
  leaseEnded(clientIp: string): void {
    this.#shared.inFlight--
    this.#shared.perClient.release(clientIp)
    if (this.#shared.waiting.size > 0) this.#scheduleDrain()
  }

  /**
   * Every server that could take the request is full (circuit breaking): what an empty pick means
   * when this is true, rather than no server being up.
   */
  saturated(): boolean {
    const checkHealth = !this.#panic
    let full = false
    for (const s of this.#members.values()) {
      if (s.backend.draining || s.backend.disabled || (checkHealth && this.#isDown(s.backend.id))) continue
      if (!isFull(s)) return false
      full = true
    }
    return full
  }
}

/**
 * Walks the primary balancer's candidates, then (when they run out) the backup balancer's, yielding
 * each as a member of the pool; candidates that are not members (a server list changed under a
 * request) are skipped. A plain iterator rather than a generator: it is made for every request.
 */
class MemberWalk implements Iterator<Selection> {
  readonly #members: ReadonlyMap<string, Selection>
  #current: Iterator<Backend>
  #backup: Balancer | undefined
  readonly #ctx: PickContext

  constructor(
    members: ReadonlyMap<string, Selection>,
    primary: Iterator<Backend>,
    backup: Balancer | undefined,
    ctx: PickContext,
  ) {
    this.#members = members
    this.#current = primary
    this.#backup = backup
    this.#ctx = ctx
  }

  next(): IteratorResult<Selection> {
    for (;;) {
      const r = this.#current.next()
      if (r.done === true) {
        const backup = this.#backup
        if (backup === undefined) return DONE
        this.#backup = undefined
        this.#current = backup.pick(this.#ctx)[Symbol.iterator]()
        continue
      }
      const s = this.#members.get(r.value.id)
      if (s !== undefined) return { done: false, value: s }
    }
  }
}

const DONE: IteratorResult<Selection> = { done: true, value: undefined }

/** How a try ended, for balancers and passive health: a refused or timed-out connect is told apart. */
export type TryOutcome = 'success' | 'failure' | 'connect-failure'

/**
 * One request's hold on a pool: its place under `queue.maxInFlight`, the candidates its retries
 * continue from, the servers it tried. `end()` is idempotent. Each try is a TryLease of its own.
 */
export class PoolLease {
  readonly #pool: UpstreamPool
  readonly request: AdmitRequest
  /** The server of the first try. */
  readonly first: Selection
  /** A sticky binding to send with the response (`Set-Cookie` value), when one is due. */
  readonly setCookie: string | undefined
  #candidates: Iterator<Selection> | undefined
  readonly #tried: string[] = []
  #tries = 0
  #ended = false

  constructor(
    pool: UpstreamPool,
    request: AdmitRequest,
    first: Selection,
    setCookie: string | undefined,
    candidates: Iterator<Selection> | undefined,
  ) {
    this.#pool = pool
    this.request = request
    this.first = first
    this.setCookie = setCookie
    this.#candidates = candidates
  }

  get pool(): UpstreamPool {
    return this.#pool
  }

  /** Tries begun so far (resends of the same try not included). */
  get tries(): number {
    return this.#tries
  }

  /** Begins the first try, or a retry (which must have taken a budget place: see `takeRetry`). */
  begin(selection: Selection, retry: boolean): TryLease {
    if (this.#tries++ === 0) this.#pool.earnRetry()
    this.#tried.push(selection.backend.id)
    return new TryLease(this.#pool, selection, retry)
  }

  /** Sends the same try again (a lost keep-alive race): same server, not a retry. */
  resend(selection: Selection): TryLease {
    return new TryLease(this.#pool, selection, false)
  }

  /**
   * Up to `n` of the candidates after the first, in the order a retry walks them (available or not),
   * left in place for it; none for a sticky lease, which keeps no list. Explanations read the
   * runner-up of a pick here (P2C's other draw).
   */
  upcoming(n: number): readonly Selection[] {
    const list = this.#candidates
    if (list === undefined) return []
    const ahead = list instanceof Lookahead ? list : new Lookahead(list)
    this.#candidates = ahead
    return ahead.peek(n)
  }

  /** The next server for a retry, none of those tried; undefined when there is none. */
  next(): Selection | undefined {
    return this.#pool.nextFor(this, this.#candidates, this.#tried)
  }

  canRetry(): boolean {
    return this.#pool.canRetry()
  }

  takeRetry(): boolean {
    return this.#pool.takeRetry()
  }

  end(): void {
    if (this.#ended) return
    this.#ended = true
    this.#pool.leaseEnded(this.request.ctx.clientIp)
  }
}

/** A candidate walk whose next few items can be read before they are taken (PoolLease#upcoming). */
class Lookahead implements Iterator<Selection> {
  readonly #source: Iterator<Selection>
  readonly #ahead: Selection[] = []

  constructor(source: Iterator<Selection>) {
    this.#source = source
  }

  peek(n: number): readonly Selection[] {
    while (this.#ahead.length < n) {
      const r = this.#source.next()
      if (r.done === true) break
      this.#ahead.push(r.value)
    }
    return this.#ahead.slice(0, n)
  }

  next(): IteratorResult<Selection> {
    const held = this.#ahead.shift()
    return held === undefined ? this.#source.next() : { done: false, value: held }
  }
}

/** One try to one server: its load, its metrics and the balancer's feedback, ended once. */
export class TryLease {
  readonly #pool: UpstreamPool
  readonly selection: Selection
  readonly #retry: boolean
  /** When the try began (`performance.now()`, ms). */
  readonly #startMs: number
  #ended = false

  constructor(pool: UpstreamPool, selection: Selection, retry: boolean) {
    this.#pool = pool
    this.selection = selection
    this.#retry = retry
    this.#startMs = performance.now()
    const cells = selection.cells
    cells.requests.value++
    cells.inFlight.value++
    pool.startOn(selection)
  }

  /** The server's response head arrived: its time to first byte. */
  responded(): void {
    if (!this.#ended) this.selection.cells.ttfb.observe((performance.now() - this.#startMs) / 1000)
  }

  /**
   * The try ended. `latencyMs` is what the balancers learn (to the response head, or to the end without
   * one); `code`, for a failure, is what failed: a SWY_* code, or `5xx` for a server's 5xx answer.
   */
  end(outcome: TryOutcome, latencyMs: number, code?: string): void {
    if (this.#ended) return
    this.#ended = true
    const cells = this.selection.cells
    cells.inFlight.value--
    cells.duration.observe((performance.now() - this.#startMs) / 1000)
    if (code !== undefined) cells.error(code)
    this.#pool.endOn(this.selection, outcome, latencyMs)
    if (this.#retry) this.#pool.retryEnded()
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

/**
 * `connections.maxClientShare` as a count: that share of what the primary servers can carry at once
 * (`maxPerServer` each, times `maxConcurrentStreams` over HTTP/2), at least 1; 0 (no limit) for a share
 * of 1. A client address that holds that many requests of the pool gets 429 for the next, so that one
 * client (a slow reader holding its responses, say) cannot take every upstream connection.
 */
function clientCapOf(config: PoolConfig, members: ReadonlyMap<string, Selection>): number {
  const share = config.connections.maxClientShare
  if (share >= 1) return 0
  const perConnection = config.protocol === 'http1' ? 1 : config.connections.maxConcurrentStreams
  let capacity = 0
  for (const s of members.values())
    if (!s.backend.backup)
      capacity += (config.serverLimits[s.backend.id]?.maxConnections ?? config.connections.maxPerServer) * perConnection
  return capacity === 0 ? 0 : Math.max(1, Math.floor(capacity * share))
}
