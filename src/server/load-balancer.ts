/**
 * The control plane of one Switchyard instance: it turns a runtime config into listener snapshots and
 * upstream pools, binds the listeners and the admin API, and on reload builds a whole new generation
 * before swapping it in. Pools whose config did not change are carried over with their balancer state
 * and warm connections; listeners whose address did not change keep their socket and connections.
 */

import type { AddressInfo } from 'node:net'
import { AdminServer } from '../admin/server.js'
import type { BalancerTable } from '../balancer/index.js'
import {
  type ConfigIssue,
  formatIssue,
  type ListenerConfig,
  loadConfigFile,
  type RuntimeConfig,
  validateConfig,
} from '../config/index.js'
import { channels } from '../core/channels.js'
import { SwitchyardError } from '../core/errors.js'
import { type Logger, silentLogger } from '../core/logger.js'
import { Shelf } from '../filters/shelf.js'
import type { Filter } from '../filters/types.js'
import { ExternalHealth, HealthMonitor, logTransition, type Transition } from '../health/index.js'
import { HttpListener } from '../listeners/http.js'
import type { ListenerSnapshot } from '../listeners/snapshot.js'
import { TcpListener } from '../listeners/tcp.js'
import type { Listener } from '../listeners/types.js'
import { Metrics } from '../metrics/index.js'
import { balancerTable, loadPlugins, type Plugin, pluginProblems } from '../plugins/index.js'
import { type PreparedTracing, TraceExports, type Tracing } from '../tracing/index.js'
import { ConnectionRegistry } from '../upstream/connections.js'
import { type EjectionEvent, poolKey, UpstreamPool } from '../upstream/pool.js'
import { loadUpstreamTls } from '../upstream/tls.js'
import { VERSION } from '../version.js'
import { AccessLogs, type AccessOutput } from './access-logs.js'
import type { EventLog } from './events.js'
import { EMPTY_HISTOGRAM, type ListenerReport, type PoolReport } from './reports.js'
import { buildSnapshot } from './snapshot.js'
import { ChangeError, Steering } from './steering.js'
import { TlsControl } from './tls-control.js'

export interface LoadBalancerOptions {
  /** Where logs go. Default: a silent logger (embedders opt in). */
  readonly logger?: Logger
  /**
   * Run no health checks here; take the states from `applyHealth()` instead (a worker, fed by its
   * supervisor, which checks each server once for the whole instance). Default: false.
   */
  readonly externalHealth?: boolean
  /** Plugins given in code; they run before the config's `plugins`, in this order. */
  readonly plugins?: readonly Plugin[]
  /**
   * Order no ACME certificate and watch no certificate file here: the supervisor does, and reloads this
   * worker when they change. Default: false.
   */
  readonly externalTls?: boolean
  /** The config file, for `POST /api/v1/reload` (the CLI sets it); undefined: that answers 409. */
  readonly configFile?: string | undefined
}

/** Where a reload came from, for the event log. */
export type ReloadSource = 'file' | 'api' | 'code'

interface ListenerEntry {
  readonly listener: Listener
  readonly config: ListenerConfig
}

/** What the admin API and `status()` report: built from snapshots, never from pool internals. */
export interface StatusReport {
  readonly version: string
  readonly generation: number
  readonly startedAt: string
  readonly listeners: readonly { name: string; listen: string; address: string; inFlight: number; routes: number }[]
  readonly pools: readonly {
    name: string
    algorithm: string
    servers: readonly {
      id: string
      origin: string
      weight: number
      backup: boolean
      /** Share of its weight a server in slow start gets now (0.05 to 1); absent when it is not ramping. */
      slowStart?: number
    }[]
  }[]
}

type State = 'new' | 'starting' | 'running' | 'closing' | 'closed'

export class LoadBalancer {
  readonly metrics = new Metrics()
  readonly #logger: Logger
  readonly #connections: ConnectionRegistry
  #config: RuntimeConfig
  #pools = new Map<string, UpstreamPool>()
  #listeners = new Map<string, ListenerEntry>()
  /** Health checks run here (single process), or states pushed by the supervisor (worker). */
  readonly #healthSource: HealthMonitor | ExternalHealth
  #admin: AdminServer | undefined
  #state: State = 'new'
  #generation = 0
  /** Rule state kept across reloads (rate-limit tables). */
  readonly #shelf = new Shelf()
  #startedAt = new Date()
  /** Serialises reload/close so two control-plane changes never interleave. */
  #queue: Promise<unknown> = Promise.resolve()
  readonly #embeddedPlugins: readonly Plugin[]
  /** ACME and certificate files on disk; undefined in a worker (the supervisor has it). */
  readonly #tlsControl: TlsControl | undefined
  /** Passive-health ejections by `pool\0server`, for the admin API; a removed server's count is dropped. */
  readonly #ejections = new Map<string, number>()
  /** The loaded config, the runtime overrides on it, and the event log. */
  readonly steering: Steering
  readonly configFile: string | undefined
  /** Access-log destinations (stdout, files) across generations. */
  readonly #accessLogs: AccessLogs
  /** Span export across generations. */
  readonly #traces: TraceExports

  constructor(config: RuntimeConfig, options: LoadBalancerOptions = {}) {
    this.#config = config
    this.#logger = options.logger ?? silentLogger()
    this.#accessLogs = new AccessLogs(this.#logger)
    this.#traces = new TraceExports(this.#logger)
    this.configFile = options.configFile
    const self = this
    this.steering = new Steering(config, {
      apply: (effective) => this.#enqueue(() => this.#apply(effective)),
      serverInFlight: async (pool, server) => this.metrics.peekServer(pool, server)?.inFlight.value ?? 0,
      get generation() {
        return self.#generation
      },
      logger: this.#logger,
    })
    this.#connections = new ConnectionRegistry(this.#logger)
    this.#embeddedPlugins = options.plugins ?? []
    for (const [i, p] of this.#embeddedPlugins.entries()) {
      const problems = pluginProblems(p)
      if (problems.length > 0)
        throw new SwitchyardError('SWY_CONFIG_INVALID', `plugins option [${i}]: ${problems.join('; ')}`)
    }
    this.metrics.info.labels(VERSION).set(1)
    this.metrics.setPools(() => this.#pools.values())
    this.metrics.setOverrides(() => this.steering.overrideStates())
    this.#healthSource = options.externalHealth
      ? new ExternalHealth()
      : new HealthMonitor((pool, t) => this.#onHealthChange(pool, t))
    this.#tlsControl = options.externalTls
      ? undefined
      : new TlsControl(this.#logger, () => this.reload(this.steering.base, { validated: true }))
  }

  /** Health transitions, ejections, reloads and runtime changes (the admin API's event stream). */
  get events(): EventLog {
    return this.steering.events
  }

  /** Orders or renews every ACME certificate that is due now; resolves when done (tests, tools). */
  async checkCertificates(): Promise<void> {
    await this.#tlsControl?.checkAcmeNow()
  }

  get config(): RuntimeConfig {
    return this.#config
  }

  get logger(): Logger {
    return this.#logger
  }

  /** Binds every listener and the admin API. Rejects (and unbinds what it bound) on failure. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start a load balancer that is ${this.#state}`)
    this.#state = 'starting'
    this.#startedAt = new Date()
    try {
      await this.steering.restore()
      this.#config = this.steering.effective()
      const plugins = await this.#plugins(this.#config)
      const access = this.#accessLogs.use(this.#config.logging.accessLog)
      const tracing = await this.#traces.prepare(this.#config.tracing)
      tracing.commit(0)
      this.#pools = this.#buildPools(this.#config, new Map(), balancerTable(plugins))
      for (const p of this.#pools.values()) p.activate()
      for (const lc of this.#config.listeners) {
        const listener = createListener(
          this.#runtimeFor(lc, this.#config, this.#pools, plugins, access, tracing.tracing),
        )
        this.#listeners.set(lc.name, { listener, config: lc })
        await listener.listen()
        this.#logger.info({ listener: lc.name, address: addressText(listener.address()) }, `listener ${lc.name} ready`)
      }
      if (this.#config.admin) {
        this.#admin = new AdminServer(this, this.#config.admin)
        const addr = await this.#admin.listen()
        this.#logger.info({ address: addressText(addr) }, 'admin API ready')
      }
      this.#generation = 1
      this.#state = 'running'
      this.#tlsControl?.update(this.#config)
      this.steering.resume()
    } catch (err) {
      await this.#teardown(0)
      this.#accessLogs.close()
      await this.#traces.close()
      this.#state = 'closed'
      throw err
    }
  }

  /**
   * Reopens the access log's file (SIGUSR1, after logrotate renamed it): lines batched so far go to the
   * file as it was, later ones to the file now at the path. Logs each reopened file.
   */
  reopenLogs(): void {
    this.#accessLogs.reopen()
  }

  /**
   * Applies a new config: a RuntimeConfig, or raw input that is validated first. A bad config is
   * rejected with SWY_CONFIG_INVALID and the running config stays in place. Resolves when the new
   * generation serves; old listeners and pools drain in the background. Runtime overrides (admin API)
   * stay on top of it.
   */
  reload(
    input: RuntimeConfig | unknown,
    { validated = false, source = 'code' }: { validated?: boolean; source?: ReloadSource } = {},
  ): Promise<void> {
    let next: RuntimeConfig
    if (validated) next = input as RuntimeConfig
    else {
      const result = validateConfig(input)
      if (!result.ok) {
        this.metrics.reloads.labels('rejected').inc()
        return Promise.reject(configError(result.issues))
      }
      next = result.config
    }
    return this.steering.reload(next, source)
  }

  /** Reloads the config file given as `configFile` (`POST /api/v1/reload`). */
  async reloadFile(): Promise<void> {
    const next = await readConfigFile(this.configFile, this.metrics.reloads)
    await this.steering.reload(next, 'file')
  }

  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(run)
    this.#queue = p.catch(() => {})
    return p
  }

  /** Embedded plugins, then the config's (loaded afresh). */
  async #plugins(config: RuntimeConfig): Promise<Plugin[]> {
    return [...this.#embeddedPlugins, ...(await loadPlugins(config.plugins))]
  }

  async #apply(next: RuntimeConfig): Promise<void> {
    if (this.#state !== 'running') throw new Error(`cannot reload a load balancer that is ${this.#state}`)
    let plugins: Plugin[]
    try {
      plugins = await this.#plugins(next)
    } catch (err) {
      this.metrics.reloads.labels('rejected').inc()
      throw err
    }
    let access: AccessOutput
    let tracing: PreparedTracing
    try {
      access = this.#accessLogs.use(next.logging.accessLog)
      tracing = await this.#traces.prepare(next.tracing)
    } catch (err) {
      this.metrics.reloads.labels('rejected').inc()
      throw err
    }
    const oldPools = this.#pools
    let pools: Map<string, UpstreamPool>
    try {
      pools = this.#buildPools(next, oldPools, balancerTable(plugins))
    } catch (err) {
      tracing.abort()
      this.metrics.reloads.labels('rejected').inc()
      throw err
    }
    const oldListeners = this.#listeners
    const listeners = new Map<string, ListenerEntry>()
    const runtimes = new Map<string, ListenerSnapshot>()
    const started: Listener[] = []
    this.#shelf.begin()
    try {
      for (const lc of next.listeners) {
        const rt = this.#runtimeFor(lc, next, pools, plugins, access, tracing.tracing)
        runtimes.set(lc.name, rt)
        const old = oldListeners.get(lc.name)
        if (old && old.config.listen === lc.listen && old.config.protocol === lc.protocol) {
          listeners.set(lc.name, { listener: old.listener, config: lc })
          continue
        }
        // New or moved listener: bind before the old one closes. Bind failures abort the reload.
        const listener = createListener(rt)
        await listener.listen()
        started.push(listener)
        listeners.set(lc.name, { listener, config: lc })
      }
    } catch (err) {
      for (const l of started) await l.drain(0)
      if (this.#healthSource instanceof HealthMonitor) {
        this.#healthSource.update(this.#config.pools)
        this.metrics.setHealth(this.#healthSource.trackers())
      }
      for (const p of pools.values()) if (oldPools.get(p.name) !== p) p.release()
      tracing.abort()
      this.metrics.reloads.labels('rejected').inc()
      throw err
    }
    // Commit: swap snapshots, then retire what the new generation no longer uses.
    for (const [name, entry] of listeners) entry.listener.swap(runtimes.get(name) as ListenerSnapshot)
    this.#shelf.end()
    this.#accessLogs.retain(next.logging.accessLog)
    tracing.commit(next.shutdown.gracePeriodMs)
    for (const p of pools.values()) p.activate()
    const retiring = [...oldListeners.entries()].filter(([name, e]) => listeners.get(name)?.listener !== e.listener)
    this.#listeners = listeners
    this.#pools = pools
    this.#config = next
    this.#generation++
    this.metrics.reloads.labels('ok').inc()
    this.metrics.retainServers(new Map(next.pools.map((p) => [p.name, new Set(p.backends.map((b) => b.id))])))
    const kept = new Set(next.pools.flatMap((p) => p.backends.map((b) => `${p.name}\0${b.id}`)))
    for (const key of this.#ejections.keys()) if (!kept.has(key)) this.#ejections.delete(key)
    this.#tlsControl?.update(next)
    for (const p of oldPools.values()) if (pools.get(p.name) !== p) p.release()
    for (const [name, e] of retiring) {
      this.#logger.info({ listener: name }, `listener ${name} removed, draining`)
      void e.listener.drain(next.shutdown.gracePeriodMs)
    }
    this.#logger.info(
      { generation: this.#generation, listeners: listeners.size, pools: pools.size },
      `configuration generation ${this.#generation} active`,
    )
  }

  /**
   * Graceful stop: listeners stop accepting, in-flight requests get up to `gracePeriodMs` (default from
   * config) to finish, then every connection is closed. Safe to call more than once.
   */
  close({ gracePeriodMs }: { gracePeriodMs?: number } = {}): Promise<void> {
    const grace = gracePeriodMs ?? this.#config.shutdown.gracePeriodMs
    const run = async () => {
      if (this.#state === 'closed' || this.#state === 'closing') return
      this.#state = 'closing'
      const inFlight = [...this.#listeners.values()].reduce((n, e) => n + e.listener.inFlight, 0)
      this.#logger.info({ inFlight, gracePeriodMs: grace }, 'shutting down: draining in-flight requests')
      await this.#teardown(grace)
      this.#state = 'closed'
      this.#accessLogs.close()
      await this.#traces.close()
      this.#logger.info('shutdown complete')
    }
    const p = this.#queue.then(run)
    this.#queue = p.catch(() => {})
    return p
  }

  async #teardown(graceMs: number): Promise<void> {
    this.steering.close()
    if (this.#healthSource instanceof HealthMonitor) this.#healthSource.stop()
    this.#tlsControl?.stop()
    await Promise.all([...this.#listeners.values()].map((e) => e.listener.drain(graceMs)))
    await this.#admin?.close()
    for (const p of this.#pools.values()) p.release()
    await this.#connections.closeAll(1000)
  }

  /** Bound address of each listener by name (useful with port 0). */
  addresses(): Record<string, AddressInfo> {
    const out: Record<string, AddressInfo> = {}
    for (const [name, e] of this.#listeners) {
      const a = e.listener.address()
      if (a) out[name] = a
    }
    return out
  }

  adminAddress(): AddressInfo | undefined {
    return this.#admin?.address()
  }

  async metricsText(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.metrics.registry.contentType, body: await this.metrics.text() }
  }

  status(): StatusReport {
    return {
      version: VERSION,
      generation: this.#generation,
      startedAt: this.#startedAt.toISOString(),
      listeners: [...this.#listeners.values()].map((e) => ({
        name: e.config.name,
        listen: e.config.listen,
        address: addressText(e.listener.address()),
        inFlight: e.listener.inFlight,
        routes: e.config.routes.length,
      })),
      pools: [...this.#pools.values()].map((p) => {
        const ramping = p.rampingServers()
        return {
          name: p.name,
          algorithm: p.balancer.algorithm,
          servers: p.backends.map((b) => {
            const ramp = ramping.get(b.id)
            const server = { id: b.id, origin: b.origin, weight: b.weight, backup: b.backup }
            return ramp === undefined || ramp >= 1 ? server : { ...server, slowStart: Math.round(ramp * 100) / 100 }
          }),
        }
      }),
    }
  }

  /** Every pool with its servers' states, loads and histograms (the admin API's view). */
  poolReports(): PoolReport[] {
    const trackers = this.#healthSource instanceof HealthMonitor ? this.#healthSource.trackers() : undefined
    const started = this.#startedAt.getTime()
    return [...this.#pools.values()].map((p) => {
      const states = p.serverStates()
      const checks = new Map(
        trackers
          ?.get(p.name)
          ?.states()
          .map((s) => [s.server, s]),
      )
      return {
        name: p.name,
        algorithm: p.balancer.algorithm,
        queued: p.queued,
        servers: p.backends.map((b) => {
          const cells = this.metrics.peekServer(p.name, b.id)
          const st = states.get(b.id)
          const check = checks.get(b.id)
          return {
            name: b.id,
            url: b.origin,
            weight: b.weight,
            backup: b.backup,
            state: st?.state ?? 'up',
            sinceMs: st?.sinceMs ?? started,
            inFlight: cells?.inFlight.value ?? 0,
            requests: cells?.requests.value ?? 0,
            errors: Object.fromEntries([...(cells?.errors ?? [])].map(([code, c]) => [code, c.value])),
            retries: this.metrics.peekRetries(p.name, b.id),
            ejections: this.#ejections.get(`${p.name}\0${b.id}`) ?? 0,
            duration: histogramOf(cells?.duration),
            ttfb: histogramOf(cells?.ttfb),
            health: check === undefined ? undefined : { state: check.state, lastResult: check.lastReason },
          }
        }),
      }
    })
  }

  /** Every listener's open connections, load and answers by status class (the admin API's live view). */
  listenerReports(): ListenerReport[] {
    const pools = ['', ...this.#config.pools.map((p) => p.name)]
    return [...this.#listeners.values()].map(({ listener, config }) => {
      const base = {
        name: config.name,
        address: addressText(listener.address()),
        connections: listener.connections,
        inFlight: listener.inFlight,
      }
      if (config.protocol === 'tcp') {
        let ok = 0
        let error = 0
        // The cells the listener's snapshot was built with: the same ones on every call.
        for (const pool of new Set(config.routes.map((r) => r.pool ?? ''))) {
          const cells = this.metrics.forTcp(config.name, pool)
          ok += cells.ok.value
          error += cells.error.value
        }
        return { ...base, classes: [0, 0, 0, 0, 0], requests: ok + error, failed: error }
      }
      const classes = [0, 0, 0, 0, 0]
      // A snapshot binds cells for every pool of the config and for unrouted requests (''): no cell is made here.
      for (const pool of pools)
        this.metrics.forRoute(config.name, pool).byClass.forEach((c, i) => {
          classes[i] = (classes[i] as number) + c.value
        })
      return { ...base, classes, requests: classes.reduce((n, c) => n + c, 0), failed: classes[4] as number }
    })
  }

  #buildPools(
    cfg: RuntimeConfig,
    previous: ReadonlyMap<string, UpstreamPool>,
    balancers: BalancerTable | undefined,
  ): Map<string, UpstreamPool> {
    const pools = new Map<string, UpstreamPool>()
    for (const pc of cfg.pools) {
      const old = previous.get(pc.name)
      const health = pc.healthCheck === undefined ? undefined : this.#healthView(pc.name)
      // Read on every build: a reload picks up a renewed CA or client certificate under the same paths.
      const tls = loadUpstreamTls(pc.name, pc.tls)
      const same = old !== undefined && old.key === poolKey(pc) && old.tls.fingerprint === tls.fingerprint
      if (!same && pc.tls?.insecureSkipVerify === true)
        this.#logger.warn(
          { pool: pc.name },
          `pool ${pc.name}: tls.insecureSkipVerify is on: server certificates are not verified`,
        )
      pools.set(
        pc.name,
        same
          ? old
          : new UpstreamPool(pc, this.#connections, this.metrics, {
              previous: old,
              health,
              balancers,
              tls,
              onEjection: (e) => this.#onEjection(e),
            }),
      )
    }
    // After the pools: a TLS file that cannot be read has refused the build by now, before any checker changed.
    if (this.#healthSource instanceof HealthMonitor) {
      this.#healthSource.update(cfg.pools)
      this.metrics.setHealth(this.#healthSource.trackers())
    }
    return pools
  }

  /** What a pool reads its down servers from, whichever checker or supervisor provides them. */
  #healthView(pool: string): { readonly down: ReadonlySet<string> } {
    const source = this.#healthSource
    return {
      get down() {
        return source.down(pool)
      },
    }
  }

  /**
   * Worker mode: the supervisor's health states for `pool` (the servers that are down). Servers that
   * came back up ramp up again (slow start); the pool's balancers are updated either way.
   */
  applyHealth(pool: string, down: readonly string[]): void {
    if (!(this.#healthSource instanceof ExternalHealth)) throw new Error('this load balancer runs its own checks')
    const cameBack = this.#healthSource.set(pool, down)
    const p = this.#pools.get(pool)
    for (const id of cameBack) p?.startRamp(id)
    p?.healthChanged()
  }

  #onEjection(e: EjectionEvent): void {
    const what = e.reason === 'outlier' ? 'failed requests' : 'a failed connect'
    if (e.ejected) this.metrics.ejectionOf(e.pool, e.server, e.reason).value++
    if (e.ejected)
      this.#logger.warn({ pool: e.pool, server: e.server }, `server ${e.pool}/${e.server} ejected after ${what}`)
    else this.#logger.info({ pool: e.pool, server: e.server }, `server ${e.pool}/${e.server} back from ejection`)
    if (e.ejected) {
      const key = `${e.pool}\0${e.server}`
      this.#ejections.set(key, (this.#ejections.get(key) ?? 0) + 1)
    }
    this.events.emit({ type: 'ejection', ...e })
  }

  /** Logged once per transition; a server that comes back ramps up again (slow start). */
  #onHealthChange(pool: string, t: Transition): void {
    logTransition(this.#logger, pool, t)
    this.events.emit({ type: 'health', pool, server: t.server, state: t.state, reason: t.reason })
    if (t.state === 'up') this.#pools.get(pool)?.startRamp(t.server)
    this.#pools.get(pool)?.healthChanged()
    if (channels.healthChange.hasSubscribers)
      channels.healthChange.publish({ pool, server: t.server, state: t.state, reason: t.reason })
  }

  #runtimeFor(
    lc: ListenerConfig,
    cfg: RuntimeConfig,
    pools: ReadonlyMap<string, UpstreamPool>,
    plugins: readonly Filter[],
    access: AccessOutput,
    tracing: Tracing | undefined,
  ): ListenerSnapshot {
    return buildSnapshot(lc, cfg, pools, plugins, {
      logger: this.#logger,
      metrics: this.metrics,
      shelf: this.#shelf,
      access,
      tracing,
    })
  }
}

function createListener(rt: ListenerSnapshot): Listener {
  switch (rt.kind) {
    case 'tcp':
      return new TcpListener(rt)
    case 'http':
      return new HttpListener(rt)
    default: {
      const unknown: never = rt
      throw new Error(`unknown listener kind ${JSON.stringify(unknown)}`)
    }
  }
}

/**
 * Reads and validates a config file for a reload; SWY_CONFIG_INVALID with its positioned issues when it
 * is bad (counted as a rejected reload), ChangeError 409 when the instance has no file.
 */
export async function readConfigFile(
  file: string | undefined,
  reloads: { labels(result: string): { inc(): void } },
): Promise<RuntimeConfig> {
  if (file === undefined) throw new ChangeError(409, 'this instance was not started from a config file')
  const result = await loadConfigFile(file)
  if (!result.ok) {
    reloads.labels('rejected').inc()
    throw configError(result.issues)
  }
  return result.config
}

function histogramOf(cell: { counts: Float64Array; sum: number; count: number } | undefined) {
  return cell === undefined ? EMPTY_HISTOGRAM : { counts: [...cell.counts], sum: cell.sum, count: cell.count }
}

export function configError(issues: readonly ConfigIssue[]): SwitchyardError {
  return new SwitchyardError('SWY_CONFIG_INVALID', `invalid configuration:\n${issues.map(formatIssue).join('\n')}`, {
    details: { issues },
  })
}

export function addressText(a: AddressInfo | undefined): string {
  if (!a) return ''
  return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`
}
