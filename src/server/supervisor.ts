/**
 * Multi-process mode (`workers` above 1): this process is the `node:cluster` primary and owns the
 * control plane (config, reloads, the admin API); each worker runs one event loop with a whole data
 * plane. Workers share the listening sockets through the cluster module and accept from them
 * themselves; `NODE_CLUSTER_SCHED_POLICY=rr` makes the primary accept and hand connections out
 * round-robin instead (see docs/workers.md).
 *
 * - A worker that exits unasked is restarted after a backoff that doubles from 100 ms up to 10 s, and
 *   resets once a worker has lived 10 s. The other workers keep accepting meanwhile.
 * - Reloads go to every worker as a validated config; each applies it as a generation swap. Reloads
 *   (and close) run one at a time, in the order they were asked for. A reload is all or nothing: if any
 *   worker rejects it (or does not answer within 10 s), the workers that took it are reloaded with the
 *   previous config, the generation stays, and the reload counts as `rejected`. A worker that cannot go
 *   back is replaced by a fresh one, which starts on the previous config.
 * - A worker that starts while a reload runs, and so got the config from before it, is brought up to
 *   date once it serves.
 * - `/metrics` sums every worker's series (prom-client's cluster aggregation) and adds the
 *   supervisor's own; the Node process metrics stay one set per process, labelled `worker` (the slot,
 *   or `supervisor`). `/api/status` adds up in-flight counts and lists the workers.
 * - Per-worker state: balancer positions (each worker runs its own round-robin, so the split over
 *   servers is even overall but not interleaved exactly) and upstream connections.
 */
import cluster, { type Worker } from 'node:cluster'
import type { AddressInfo } from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { AggregatorRegistry } from 'prom-client'
import { AdminServer, type AdminSource } from '../admin/server.js'
import type { RuntimeConfig } from '../config/index.js'
import { ERROR_CODES, type ErrorCode, SwitchyardError } from '../core/errors.js'
import type { Logger, LogLevel } from '../core/logger.js'
import { HealthMonitor, logTransition, type Transition } from '../health/index.js'
import { processMetricsJson, SUPERVISOR_METRICS, SupervisorMetrics } from '../metrics/index.js'
import { VERSION } from '../version.js'
import type { EventLog } from './events.js'
import { type FromWorker, type ToWorker, WORKER_ENV, WORKER_INDEX_ENV, type WorkerMetrics } from './ipc.js'
import { addressText, type ReloadSource, readConfigFile, type StatusReport } from './load-balancer.js'
import { type ListenerReport, mergeListenerReports, mergePoolReports, type PoolReport } from './reports.js'
import { Steering } from './steering.js'
import { TlsControl } from './tls-control.js'

const here = fileURLToPath(import.meta.url)
/** The worker entry beside this file: .js from dist/, .ts when run from source through tsx. */
const WORKER_ENTRY = path.join(path.dirname(here), `worker-main${path.extname(here)}`)

const MIN_BACKOFF_MS = 100
const MAX_BACKOFF_MS = 10_000
/** A worker that lived this long resets its slot's backoff. */
const STABLE_MS = 10_000
/** How long a worker may take to answer a scrape, status or reload. */
const ASK_TIMEOUT_MS = 10_000
/** Added to the grace period before a worker that does not exit is killed. */
const STOP_MARGIN_MS = 5_000

type SlotState = 'starting' | 'ready' | 'stopping' | 'waiting' | 'gone'

interface Slot {
  readonly index: number
  state: SlotState
  worker: Worker | undefined
  startedAtMs: number
  backoffMs: number
  restarts: number
  timer: NodeJS.Timeout | undefined
  /** The generation whose config the slot's worker runs (set when it is sent a config). */
  generation: number
}

interface Pending {
  /** The cluster id of the worker asked. */
  readonly workerId: number
  resolve(value: unknown): void
  reject(err: Error): void
  timer: NodeJS.Timeout
}

/** A worker that did not answer in time: it may still act on the message later. */
class NoAnswer extends Error {}

export interface SupervisorOptions {
  readonly logger: Logger
  readonly level: LogLevel
  /** The config file, for `POST /api/v1/reload`; undefined: that answers 409. */
  readonly configFile?: string | undefined
}

export interface ClusterStatus extends Omit<StatusReport, 'generation'> {
  readonly generation: number
  readonly workers: readonly { index: number; pid: number | undefined; state: SlotState; restarts: number }[]
}

export class Supervisor implements AdminSource {
  readonly metrics = new SupervisorMetrics()
  readonly #logger: Logger
  readonly #level: LogLevel
  #config: RuntimeConfig
  #slots: Slot[] = []
  #admin: AdminServer | undefined
  #addresses: Record<string, AddressInfo> = {}
  #state: 'new' | 'running' | 'closing' | 'closed' = 'new'
  #generation = 1
  #startedAt = new Date()
  #nextId = 1
  readonly #pending = new Map<number, Pending>()
  /** Active health checks, once for the whole instance; states are pushed to the workers. */
  readonly #health: HealthMonitor
  /** ACME and certificate files on disk, once for the whole instance: a change reloads every worker. */
  readonly #tlsControl: TlsControl
  /** Resolvers waiting for the first `ready` (or failure) of a worker, by worker id. */
  readonly #starting = new Map<number, { resolve(): void; reject(err: Error): void }>()
  /** Serialises reloads, catch-ups and close, so that two control-plane changes never interleave. */
  #queue: Promise<unknown> = Promise.resolve()
  /** The loaded config, the runtime overrides on it, and the event log, for the whole instance. */
  readonly steering: Steering
  readonly configFile: string | undefined

  constructor(config: RuntimeConfig, options: SupervisorOptions) {
    this.#config = config
    this.#logger = options.logger
    this.#level = options.level
    this.configFile = options.configFile
    this.metrics.info.labels(VERSION).set(1)
    this.metrics.setOverrides(() => this.steering.overrideStates())
    this.#health = new HealthMonitor((pool, t) => this.#onHealthChange(pool, t))
    this.#tlsControl = new TlsControl(this.#logger, () => this.reload(this.steering.base))
    const self = this
    this.steering = new Steering(config, {
      apply: (effective) => this.#enqueue(() => this.#reload(effective)),
      serverInFlight: async (pool, server) =>
        (await this.poolReports()).find((p) => p.name === pool)?.servers.find((s) => s.name === server)?.inFlight ?? 0,
      get generation() {
        return self.#generation
      },
      logger: this.#logger,
    })
  }

  get events(): EventLog {
    return this.steering.events
  }

  get config(): RuntimeConfig {
    return this.#config
  }

  /** Forks the workers and waits until every one serves; then binds the admin API. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`cannot start a supervisor that is ${this.#state}`)
    this.#state = 'running'
    this.#startedAt = new Date()
    // Workers accept from the shared listening socket themselves, unless NODE_CLUSTER_SCHED_POLICY says
    // otherwise (Node's own variable; `rr` makes this process accept and hand connections out). With
    // `rr`, a connection being handed to a worker as it dies is never answered (a Node limitation);
    // with a shared socket, the kernel resets only the connections the dead worker had accepted.
    if (process.env.NODE_CLUSTER_SCHED_POLICY === undefined) cluster.schedulingPolicy = cluster.SCHED_NONE
    cluster.setupPrimary({ exec: WORKER_ENTRY, args: [], serialization: 'advanced' })
    try {
      await this.steering.restore()
    } catch (err) {
      this.#state = 'closed'
      throw err
    }
    this.#config = this.steering.effective()
    this.#updateHealth(this.#config)
    try {
      await Promise.all(Array.from({ length: this.#config.workers }, (_, i) => this.#spawn(this.#newSlot(i))))
      if (this.#config.admin) {
        this.#admin = new AdminServer(this, this.#config.admin)
        const addr = await this.#admin.listen()
        this.#logger.info({ address: addressText(addr) }, 'admin API ready')
      }
    } catch (err) {
      await this.close({ gracePeriodMs: 0 })
      throw err
    }
    this.#updateGauge()
    this.#tlsControl.update(this.#config)
    this.steering.resume()
    this.#logger.info({ workers: this.#slots.length, pid: process.pid }, `${this.#slots.length} workers serving`)
  }

  addresses(): Record<string, AddressInfo> {
    return { ...this.#addresses }
  }

  adminAddress(): AddressInfo | undefined {
    return this.#admin?.address()
  }

  /**
   * Sends a validated config to every worker, growing or shrinking the worker set to `workers`. Runs
   * after any reload or close already asked for. Rejects, with the old generation still serving on
   * every worker, when a worker rejects the config or does not answer within 10 s.
   */
  reload(next: RuntimeConfig, source: ReloadSource = 'code'): Promise<void> {
    return this.steering.reload(next, source)
  }

  /** Reloads the config file given as `configFile` (`POST /api/v1/reload`). */
  async reloadFile(): Promise<void> {
    await this.steering.reload(await readConfigFile(this.configFile, this.metrics.reloads), 'file')
  }

  async #reload(next: RuntimeConfig): Promise<void> {
    if (this.#state !== 'running') throw new Error(`cannot reload a supervisor that is ${this.#state}`)
    const live = this.#slots.flatMap((s) => (s.state === 'ready' && s.worker ? [{ slot: s, worker: s.worker }] : []))
    const results = await Promise.allSettled(live.map((l) => this.#ask(l.worker, { t: 'reload', config: next })))
    const outcomes = live.map((l, i) => ({ slot: l.slot, result: results[i] as PromiseSettledResult<unknown> }))
    const failed = outcomes.flatMap(({ slot, result }) =>
      result.status === 'rejected' ? [`worker ${slot.index}: ${(result.reason as Error).message}`] : [],
    )
    if (failed.length > 0) {
      // All or nothing. A worker that rejected kept the old config; one that took the new config, or
      // did not answer (and may still apply it), is reloaded with the old one.
      const back = outcomes
        .filter(({ result }) => result.status === 'fulfilled' || result.reason instanceof NoAnswer)
        .map(({ slot }) => slot)
      await this.#rollBack(back)
      this.metrics.reloads.labels('rejected').inc()
      const rolledBack = back.length > 0 ? `; worker ${back.map((s) => s.index).join(', ')} rolled back` : ''
      throw new Error(
        `${failed.length} of ${live.length} workers rejected the configuration (${failed.join('; ')})${rolledBack}; generation ${this.#generation} still active`,
      )
    }
    this.#config = next
    this.#generation++
    for (const { slot } of live) slot.generation = this.#generation
    this.metrics.reloads.labels('ok').inc()
    this.#updateHealth(next)
    this.#tlsControl.update(next)
    for (const w of this.#connectedWorkers()) this.#sendHealth(w)
    // Workers that started during the reload were given the previous config.
    const reloaded = new Set(live.map((l) => l.slot))
    for (const s of this.#slots) if (!reloaded.has(s)) await this.#catchUp(s)
    await this.#scale(next.workers)
    this.#logger.info(
      { generation: this.#generation, workers: next.workers },
      `configuration generation ${this.#generation} active`,
    )
  }

  /** Reloads `slots` with the running config; a worker that cannot go back is replaced. */
  async #rollBack(slots: readonly Slot[]): Promise<void> {
    await Promise.all(
      slots.map(async (s) => {
        const worker = s.worker
        if (!worker || s.state !== 'ready') return
        try {
          await this.#ask(worker, { t: 'reload', config: this.#config })
          this.#logger.warn(
            { worker: s.index, pid: worker.process.pid, generation: this.#generation },
            `worker ${s.index} rolled back to configuration generation ${this.#generation}`,
          )
        } catch (err) {
          this.#replace(s, `it could not go back to generation ${this.#generation}: ${(err as Error).message}`)
        }
      }),
    )
  }

  /** A ready worker that runs an older generation than the supervisor's is reloaded, or replaced. */
  async #catchUp(slot: Slot): Promise<void> {
    const worker = slot.worker
    if (this.#state !== 'running' || slot.state !== 'ready' || !worker || slot.generation === this.#generation) return
    const generation = this.#generation
    try {
      await this.#ask(worker, { t: 'reload', config: this.#config })
      if (slot.worker === worker) slot.generation = generation
    } catch (err) {
      this.#replace(slot, `it could not take configuration generation ${generation}: ${(err as Error).message}`)
    }
  }

  /**
   * Asks a worker whose config is not the supervisor's to drain and exit (SIGTERM; SIGKILL after the
   * grace period and a margin). Its slot restarts it, as after a crash, with the running config.
   */
  #replace(slot: Slot, why: string): void {
    const worker = slot.worker
    if (!worker || worker.isDead()) return
    this.#logger.error({ worker: slot.index, pid: worker.process.pid }, `replacing worker ${slot.index}: ${why}`)
    worker.process.kill('SIGTERM')
    const killer = setTimeout(
      () => worker.process.kill('SIGKILL'),
      this.#config.shutdown.gracePeriodMs + STOP_MARGIN_MS,
    )
    worker.once('exit', () => clearTimeout(killer))
  }

  #enqueue<T>(run: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(run)
    this.#queue = p.catch(() => {})
    return p
  }

  /**
   * Asks every worker to reopen the access log's file (SIGUSR1, for logrotate): each worker has it
   * open, appending, and reopens it when the message comes. Workers starting later open it afresh.
   */
  reopenLogs(): void {
    const workers = this.#connectedWorkers()
    this.#logger.info({ workers: workers.length }, `asking ${workers.length} workers to reopen their log files`)
    for (const w of workers) w.send({ t: 'reopen' } satisfies ToWorker)
  }

  /**
   * Stops every worker (each drains within `gracePeriodMs`), then the admin API. Runs after a reload
   * already under way.
   */
  close({ gracePeriodMs }: { gracePeriodMs?: number } = {}): Promise<void> {
    return this.#enqueue(() => this.#close(gracePeriodMs))
  }

  async #close(gracePeriodMs: number | undefined): Promise<void> {
    if (this.#state === 'closing' || this.#state === 'closed') return
    this.#state = 'closing'
    this.steering.close()
    const grace = gracePeriodMs ?? this.#config.shutdown.gracePeriodMs
    this.#health.stop()
    this.#tlsControl.stop()
    await Promise.all(this.#slots.map((s) => this.#stopSlot(s, grace)))
    await this.#admin?.close()
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer)
      p.reject(new Error('supervisor closed'))
    }
    this.#pending.clear()
    this.#state = 'closed'
    this.#updateGauge()
  }

  async metricsText(): Promise<{ contentType: string; body: string }> {
    const lists = await Promise.all(
      this.#readyWorkers().map(
        (w) => this.#ask(w, { t: 'scrape' }).catch(() => undefined) as Promise<WorkerMetrics | undefined>,
      ),
    )
    const perWorker = lists.flatMap((l) => (l ? [l.filter((m) => !SUPERVISOR_METRICS.includes(m.name))] : []))
    this.#updateGauge()
    const own = await this.metrics.registry.metrics()
    // The process metrics, each process's own (the workers' labelled with their slot), stand apart in the sum.
    const processes = [...perWorker, await processMetricsJson({ worker: 'supervisor' })]
    const summed = await AggregatorRegistry.aggregate(processes).metrics()
    return { contentType: this.metrics.registry.contentType, body: `${own}\n${summed}` }
  }

  /** Every pool with its servers, the workers' reports added up (the admin API's view). */
  async poolReports(): Promise<PoolReport[]> {
    const reports = (
      await Promise.all(
        this.#readyWorkers().map(
          (w) => this.#ask(w, { t: 'pools' }).catch(() => undefined) as Promise<PoolReport[] | undefined>,
        ),
      )
    ).filter((r): r is PoolReport[] => r !== undefined)
    const trackers = this.#health.trackers()
    return mergePoolReports(reports).map((pool) => {
      const checks = new Map(
        trackers
          .get(pool.name)
          ?.states()
          .map((s) => [s.server, s]),
      )
      return {
        ...pool,
        servers: pool.servers.map((server) => {
          const check = checks.get(server.name)
          return check === undefined
            ? server
            : { ...server, health: { state: check.state, lastResult: check.lastReason } }
        }),
      }
    })
  }

  /** Every listener's connections, load and answers by class, the workers' reports added up. */
  async listenerReports(): Promise<ListenerReport[]> {
    const reports = await Promise.all(
      this.#readyWorkers().map(
        (w) => this.#ask(w, { t: 'listeners' }).catch(() => undefined) as Promise<ListenerReport[] | undefined>,
      ),
    )
    return mergeListenerReports(reports.filter((r): r is ListenerReport[] => r !== undefined))
  }

  async status(): Promise<ClusterStatus> {
    const reports = (
      await Promise.all(
        this.#readyWorkers().map(
          (w) => this.#ask(w, { t: 'status' }).catch(() => undefined) as Promise<StatusReport | undefined>,
        ),
      )
    ).filter((r): r is StatusReport => r !== undefined)
    const first = reports[0]
    return {
      version: VERSION,
      generation: this.#generation,
      startedAt: this.#startedAt.toISOString(),
      listeners: (first?.listeners ?? []).map((l) => ({
        ...l,
        inFlight: reports.reduce((n, r) => n + (r.listeners.find((x) => x.name === l.name)?.inFlight ?? 0), 0),
      })),
      pools: first?.pools ?? [],
      workers: this.#slots.map((s) => ({
        index: s.index,
        pid: s.worker?.process.pid,
        state: s.state,
        restarts: s.restarts,
      })),
    }
  }

  // --- workers ---------------------------------------------------------------------------------

  #newSlot(index: number): Slot {
    const slot: Slot = {
      index,
      state: 'starting',
      worker: undefined,
      startedAtMs: 0,
      backoffMs: MIN_BACKOFF_MS,
      restarts: 0,
      timer: undefined,
      generation: this.#generation,
    }
    this.#slots[index] = slot
    return slot
  }

  #updateHealth(config: RuntimeConfig): void {
    this.#health.update(config.pools)
    this.metrics.setHealth(this.#health.trackers())
  }

  /** Every checked pool's down servers, to one worker (after its start, and after a reload). */
  #sendHealth(worker: Worker): void {
    for (const pool of this.#health.trackers().keys())
      worker.send({ t: 'health', pool, down: [...this.#health.down(pool)] } satisfies ToWorker)
  }

  /** Logged once for the instance, and pushed to every worker. */
  #onHealthChange(pool: string, t: Transition): void {
    logTransition(this.#logger, pool, t)
    this.events.emit({ type: 'health', pool, server: t.server, state: t.state, reason: t.reason })
    const msg: ToWorker = { t: 'health', pool, down: [...this.#health.down(pool)] }
    for (const w of this.#connectedWorkers()) w.send(msg)
  }

  /** Workers that can take messages, whether they serve yet or are starting. */
  #connectedWorkers(): Worker[] {
    return this.#slots.flatMap((s) => (s.worker?.isConnected() ? [s.worker] : []))
  }

  #readyWorkers(): Worker[] {
    return this.#slots.flatMap((s) => (s.state === 'ready' && s.worker?.isConnected() ? [s.worker] : []))
  }

  /** Forks a worker into `slot`; resolves once it serves, rejects if it fails to start. */
  #spawn(slot: Slot): Promise<void> {
    slot.state = 'starting'
    slot.timer = undefined
    slot.startedAtMs = Date.now()
    const worker = cluster.fork({ [WORKER_ENV]: '1', [WORKER_INDEX_ENV]: String(slot.index) })
    slot.worker = worker
    const started = new Promise<void>((resolve, reject) => this.#starting.set(worker.id, { resolve, reject }))
    worker.on('message', (msg: FromWorker) => this.#onMessage(slot, worker, msg))
    worker.on('exit', (code, signal) => this.#onExit(slot, worker, code, signal))
    worker.on('error', (err) => this.#logger.warn({ err, worker: slot.index }, 'worker IPC error'))
    return started
  }

  #onMessage(slot: Slot, worker: Worker, msg: FromWorker): void {
    switch (msg.t) {
      case 'booted': {
        const start: ToWorker = { t: 'start', config: this.#config, level: this.#level }
        slot.generation = this.#generation
        worker.send(start)
        this.#sendHealth(worker)
        return
      }
      case 'ready': {
        if (slot.worker === worker && slot.state === 'starting') slot.state = 'ready'
        this.#addresses = msg.addresses
        this.#starting.get(worker.id)?.resolve()
        this.#starting.delete(worker.id)
        this.#updateGauge()
        if (slot.generation !== this.#generation) void this.#enqueue(() => this.#catchUp(slot))
        return
      }
      case 'failed': {
        const code = (msg.code in ERROR_CODES ? msg.code : 'SWY_INTERNAL') as ErrorCode
        this.#starting.get(worker.id)?.reject(new SwitchyardError(code, msg.message))
        this.#starting.delete(worker.id)
        return
      }
      case 'event':
        this.events.emit(msg.event)
        return
      case 'reply': {
        const p = this.#pending.get(msg.id)
        if (!p) return
        this.#pending.delete(msg.id)
        clearTimeout(p.timer)
        if (msg.ok) p.resolve(msg.value)
        else p.reject(new Error(msg.message))
        return
      }
      default: {
        const unknown: never = msg
        this.#logger.warn({ msg: unknown }, 'unknown message from a worker')
      }
    }
  }

  #onExit(slot: Slot, worker: Worker, code: number | null, signal: string | null): void {
    const starting = this.#starting.get(worker.id)
    if (starting) {
      this.#starting.delete(worker.id)
      starting.reject(new Error(`worker ${slot.index} exited during start (${signal ?? `code ${code}`})`))
    }
    for (const [id, p] of this.#pending) {
      if (p.workerId !== worker.id) continue
      this.#pending.delete(id)
      clearTimeout(p.timer)
      p.reject(new Error(`worker ${slot.index} exited (${signal ?? `code ${code}`})`))
    }
    if (slot.worker !== worker) return
    slot.worker = undefined
    this.#updateGauge()
    if (slot.state === 'stopping' || this.#state !== 'running') {
      slot.state = 'gone'
      return
    }
    const wasReady = slot.state === 'ready'
    const livedMs = Date.now() - slot.startedAtMs
    if (livedMs >= STABLE_MS) slot.backoffMs = MIN_BACKOFF_MS
    const delayMs = slot.backoffMs
    slot.backoffMs = Math.min(slot.backoffMs * 2, MAX_BACKOFF_MS)
    slot.state = 'waiting'
    slot.restarts++
    this.metrics.workerRestarts.inc()
    this.events.emit({
      type: 'worker',
      action: 'exited',
      worker: slot.index,
      pid: worker.process.pid,
      message: `worker ${slot.index} exited (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`,
    })
    this.#logger.error(
      { worker: slot.index, pid: worker.process.pid, code, signal, restartInMs: delayMs },
      `worker ${slot.index} exited ${wasReady ? 'while serving' : 'while starting'} (${signal ?? `code ${code}`}); restarting in ${delayMs} ms`,
    )
    slot.timer = setTimeout(() => {
      if (this.#state !== 'running' || slot.state !== 'waiting') return
      this.#spawn(slot).then(
        () => {
          const pid = slot.worker?.process.pid
          this.#logger.info({ worker: slot.index, pid }, `worker ${slot.index} restarted`)
          this.events.emit({
            type: 'worker',
            action: 'restarted',
            worker: slot.index,
            pid,
            message: `worker ${slot.index} restarted`,
          })
        },
        (err: Error) =>
          this.#logger.error({ worker: slot.index, err: err.message }, `worker ${slot.index} failed to restart`),
      )
    }, delayMs)
  }

  /** Asks a worker to drain and exit; SIGKILL if it is still there after the grace period and a margin. */
  async #stopSlot(slot: Slot, graceMs: number): Promise<void> {
    if (slot.timer) clearTimeout(slot.timer)
    slot.timer = undefined
    const worker = slot.worker
    slot.state = 'stopping'
    if (!worker || worker.isDead()) {
      slot.state = 'gone'
      return
    }
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()))
    if (worker.isConnected()) worker.send({ t: 'stop', gracePeriodMs: graceMs } satisfies ToWorker)
    else worker.process.kill('SIGTERM')
    const killer = setTimeout(() => worker.process.kill('SIGKILL'), graceMs + STOP_MARGIN_MS)
    await exited
    clearTimeout(killer)
  }

  async #scale(count: number): Promise<void> {
    const current = this.#slots.length
    if (count > current) {
      await Promise.all(Array.from({ length: count - current }, (_, i) => this.#spawn(this.#newSlot(current + i))))
    } else if (count < current) {
      const extra = this.#slots.slice(count)
      this.#slots = this.#slots.slice(0, count)
      await Promise.all(extra.map((s) => this.#stopSlot(s, this.#config.shutdown.gracePeriodMs)))
    }
    this.#updateGauge()
  }

  #ask(
    worker: Worker,
    msg:
      | { t: 'reload'; config: RuntimeConfig }
      | { t: 'scrape' }
      | { t: 'status' }
      | { t: 'pools' }
      | { t: 'listeners' },
  ): Promise<unknown> {
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id)
        reject(new NoAnswer(`no answer to "${msg.t}" within ${ASK_TIMEOUT_MS} ms`))
      }, ASK_TIMEOUT_MS)
      this.#pending.set(id, { workerId: worker.id, resolve, reject, timer })
      worker.send({ ...msg, id } as ToWorker)
    })
  }

  #updateGauge(): void {
    this.metrics.workers.set(this.#slots.filter((s) => s.state === 'ready' && s.worker).length)
  }
}
