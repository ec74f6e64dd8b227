/**
 * What a listener serves from: an immutable snapshot, built by the control plane for each config
 * generation and swapped whole on reload. A union keyed on `kind`: HTTP listeners (routes, pipeline,
 * forwarding policy) and TCP listeners (one pool). Requests and connections keep the snapshot they
 * started with.
 */
import type { ChallengeAnswers } from '../acme/index.js'
import type { ListenerConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { ExplainPolicy } from '../explain/index.js'
import type { ListenerPipeline } from '../filters/pipeline.js'
import type { AccessLog } from '../l7/access-log.js'
import type { ForwardingPolicy } from '../l7/headers.js'
import type { Router } from '../l7/router.js'
import type { PoolTarget, RouteTarget } from '../l7/target.js'
import type { Metrics, RouteMetrics, TcpMetrics } from '../metrics/index.js'
import type { Tracing } from '../tracing/index.js'
import type { UpstreamPool } from '../upstream/pool.js'
import type { ListenerTls } from './certificates.js'

interface SnapshotBase {
  readonly config: ListenerConfig
  readonly logger: Logger
  /**
   * The access-log writer; undefined when the logger drops even `warn` lines. Requests that fail on the
   * server side are written at `warn` whether or not `accessInfo` is on.
   */
  readonly accessLog: AccessLog | undefined
  /**
   * One `info` line per request or connection (logging.accessLog; on the process log, only when the
   * logger writes `info`).
   */
  readonly accessInfo: boolean
  /** Share of successful requests and connections logged (`logging.accessLog.sample`); 1: all. */
  readonly accessSample: number
  /** W3C trace context and span export; undefined when tracing is off. HTTP listeners only. */
  readonly tracing: Tracing | undefined
  readonly metrics: Metrics
}

export interface HttpSnapshot extends SnapshotBase {
  readonly kind: 'http'
  /** `https` for TLS listeners: what X-Forwarded-Proto and Forwarded say. */
  readonly proto: 'http' | 'https'
  /** Certificates, read when the snapshot was built (https only). */
  readonly tls: ListenerTls | undefined
  readonly router: Router<RouteTarget>
  readonly forwarding: ForwardingPolicy
  /** Listener-level filters (plugins, then built-in rules), for `onRequest`. */
  readonly pipeline: ListenerPipeline
  /** Every pool of the config with this listener's metric cells, for `usePool`. */
  readonly pools: ReadonlyMap<string, PoolTarget>
  /** Metrics for requests that matched no route. */
  readonly unrouted: RouteMetrics
  /** ACME http-01 answers, when a listener of the config has `tls.acme`; undefined otherwise. */
  readonly acmeChallenges: ChallengeAnswers | undefined
  /** Who may ask for request explanations; undefined: the listener has no `explain` (off). */
  readonly explain: ExplainPolicy | undefined
}

/** A route of a `tcp` listener: its pool, and the TLS server names that take it (passthrough). */
export interface TcpRoute {
  /** Lower-case names, `*.` wildcards for one label; undefined: every connection. */
  readonly sni: readonly string[] | undefined
  readonly pool: UpstreamPool
  readonly tcp: TcpMetrics
}

export interface TcpSnapshot extends SnapshotBase {
  readonly kind: 'tcp'
  /** In order; the ClientHello is read only when one of them has `sni`. */
  readonly routes: readonly TcpRoute[]
  /** Some route matches by SNI: each connection's first bytes are read for its server name. */
  readonly bySni: boolean
}

export type ListenerSnapshot = HttpSnapshot | TcpSnapshot
