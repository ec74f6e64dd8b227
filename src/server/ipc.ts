/**
 * Messages between the supervisor (the cluster primary) and its workers, over the cluster IPC channel
 * with `advanced` (structured clone) serialization. Requests that expect an answer carry an `id`; the
 * worker answers each with one `reply` of the same id: `ok: false` with the error's message when handling it
 * failed, including for a message the worker does not know.
 */
import type { AddressInfo } from 'node:net'
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import type { RuntimeConfig } from '../config/index.js'
import type { LogLevel } from '../core/logger.js'
import type { EventBody } from './events.js'
import type { StatusReport } from './load-balancer.js'
import type { ListenerReport, PoolReport } from './reports.js'

export type ToWorker =
  /** Build the load balancer from `config` (admin removed: the supervisor serves it) and bind. */
  | { readonly t: 'start'; readonly config: RuntimeConfig; readonly level: LogLevel }
  | { readonly t: 'reload'; readonly id: number; readonly config: RuntimeConfig }
  /** Answer with the registry as JSON (prom-client's `getMetricsAsJSON`). */
  | { readonly t: 'scrape'; readonly id: number }
  | { readonly t: 'status'; readonly id: number }
  /** Answer with the worker's PoolReport[] (states, loads, histograms), for the admin API. */
  | { readonly t: 'pools'; readonly id: number }
  /** Answer with the worker's ListenerReport[] (connections, load, answers by class), for the admin API. */
  | { readonly t: 'listeners'; readonly id: number }
  /** Active health checks run in the supervisor: the servers of `pool` that are down now. */
  | { readonly t: 'health'; readonly pool: string; readonly down: readonly string[] }
  /** Reopen the access log's file (SIGUSR1 to the supervisor, for logrotate). */
  | { readonly t: 'reopen' }
  /** Drain within `gracePeriodMs`, then exit 0. */
  | { readonly t: 'stop'; readonly gracePeriodMs: number }

export type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[]

export type FromWorker =
  /**
   * The worker listens for messages now. Messages sent before that may be lost (IPC messages with no
   * listener are dropped, and an ES module entry attaches its listener late), so `start` waits for it.
   */
  | { readonly t: 'booted' }
  | { readonly t: 'ready'; readonly addresses: Record<string, AddressInfo> }
  /** Start failed; the worker exits 1 after sending this. */
  | { readonly t: 'failed'; readonly code: string; readonly message: string }
  | {
      readonly t: 'reply'
      readonly id: number
      readonly ok: true
      readonly value: WorkerMetrics | StatusReport | readonly PoolReport[] | readonly ListenerReport[] | null
    }
  /** Something the supervisor's event log should have that only a worker sees: a passive-health ejection. */
  | { readonly t: 'event'; readonly event: EventBody }
  | { readonly t: 'reply'; readonly id: number; readonly ok: false; readonly message: string }

/** Environment variable that marks a process as a Switchyard worker. */
export const WORKER_ENV = 'SWITCHYARD_WORKER'

/**
 * Environment variable with the worker's slot index (0 to workers − 1), set by the supervisor at fork.
 * It is the `worker` field of the worker's log lines, as of the supervisor's lines about it; a restarted
 * worker keeps its slot's index and gets a new `pid`.
 */
export const WORKER_INDEX_ENV = 'SWITCHYARD_WORKER_INDEX'
