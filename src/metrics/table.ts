/**
 * Every metric Switchyard exports, declared in one table (after Envoy's stats.h): its name, type, help
 * and labels. Nothing else names a metric: the registry (metrics.ts) is built from this table, and
 * docs/observability.md and examples/grafana/switchyard.json are checked against it (test/metrics.test.ts).
 *
 * Labels are bounded by the config: listener, pool, server, route and limit names, status classes and
 * SWY_* codes. Never a raw path, a host, or a client address.
 *
 * Node process metrics (`nodejs_*`, `process_*`) are prom-client's defaults (process.ts), not listed here.
 */

/** One metric: its `type` says which prom-client class exposes it. */
export interface MetricDef {
  readonly name: string
  readonly type: 'counter' | 'gauge' | 'histogram'
  readonly help: string
  readonly labelNames: readonly string[]
}

export const METRICS = {
  requests: {
    name: 'switchyard_http_requests_total',
    type: 'counter',
    help: 'HTTP requests answered, by listener, pool and status class (1xx..5xx).',
    labelNames: ['listener', 'pool', 'class'],
  },
  duration: {
    name: 'switchyard_http_request_duration_seconds',
    type: 'histogram',
    help: 'Time from the request head to the end of the response, by listener and pool.',
    labelNames: ['listener', 'pool'],
  },
  inFlight: {
    name: 'switchyard_http_requests_in_flight',
    type: 'gauge',
    help: 'Requests being handled now, by listener.',
    labelNames: ['listener'],
  },
  errors: {
    name: 'switchyard_errors_total',
    type: 'counter',
    help: 'Requests that ended in a Switchyard error, by pool and SWY_* code.',
    labelNames: ['pool', 'code'],
  },
  connectionsRefused: {
    name: 'switchyard_connections_refused_total',
    type: 'counter',
    help: 'Client connections closed as soon as they were accepted, by listener and reason (access, max-connections, connections-per-ip, connection-rate).',
    labelNames: ['listener', 'reason'],
  },
  upstreamRequests: {
    name: 'switchyard_upstream_requests_total',
    type: 'counter',
    help: 'Requests sent to each upstream server.',
    labelNames: ['pool', 'server'],
  },
  upstreamInFlight: {
    name: 'switchyard_upstream_requests_in_flight',
    type: 'gauge',
    help: 'Requests in flight to each upstream server now, by pool and server.',
    labelNames: ['pool', 'server'],
  },
  upstreamDuration: {
    name: 'switchyard_upstream_request_duration_seconds',
    type: 'histogram',
    help: "Time from the start of a try to its end (the server's response complete, or the try failed), by pool and server.",
    labelNames: ['pool', 'server'],
  },
  upstreamTtfb: {
    name: 'switchyard_upstream_ttfb_seconds',
    type: 'histogram',
    help: "Time from the start of a try to the server's response head (time to first byte), by pool and server.",
    labelNames: ['pool', 'server'],
  },
  upstreamErrors: {
    name: 'switchyard_upstream_errors_total',
    type: 'counter',
    help: 'Tries to each server that failed, by pool, server and code: the SWY_* code of the failure, or 5xx for an answer of status 500 to 599.',
    labelNames: ['pool', 'server', 'code'],
  },
  upstreamRetries: {
    name: 'switchyard_upstream_retries_total',
    type: 'counter',
    help: 'Requests sent again, by pool, the server whose try failed, and reason: connect-failure, reset, timeout, status (a retry to another server), keepalive-race (the same try again after a reused connection closed under it), refused-stream (HTTP/2: a stream the server refused unprocessed, sent again on another stream).',
    labelNames: ['pool', 'server', 'reason'],
  },
  retryBudgetExhausted: {
    name: 'switchyard_upstream_retry_budget_exhausted_total',
    type: 'counter',
    help: "Retries not made because the pool's retry budget (retries.budget) was spent, by pool.",
    labelNames: ['pool'],
  },
  ejections: {
    name: 'switchyard_upstream_ejections_total',
    type: 'counter',
    help: 'Servers taken out of rotation by passive health, by pool, server and reason (outlier: failed requests; connect-failure: a refused or timed-out connect).',
    labelNames: ['pool', 'server', 'reason'],
  },
  ejected: {
    name: 'switchyard_upstream_ejected_servers',
    type: 'gauge',
    help: 'Servers out of rotation by passive health now, by pool and reason (outlier, connect-failure).',
    labelNames: ['pool', 'reason'],
  },
  upstreamPending: {
    name: 'switchyard_upstream_requests_pending',
    type: 'gauge',
    help: 'Requests in flight to a server beyond what its connections carry at once (maxPerServer, times maxConcurrentStreams over HTTP/2): those waiting for one of its connections now, bounded by maxPending. By pool and server.',
    labelNames: ['pool', 'server'],
  },
  queueDepth: {
    name: 'switchyard_pool_queue_depth',
    type: 'gauge',
    help: "Requests waiting in the pool's queue now (queue.size: the pool at queue.maxInFlight, or every server full), by pool.",
    labelNames: ['pool'],
  },
  queueWait: {
    name: 'switchyard_pool_queue_wait_seconds',
    type: 'histogram',
    help: "Time requests spent in the pool's queue, observed as each leaves it (served, timed out, or gone), by pool.",
    labelNames: ['pool'],
  },
  rateLimited: {
    name: 'switchyard_rate_limit_rejections_total',
    type: 'counter',
    help: 'Requests refused 429 by a rateLimit rule, by listener, route (its name, or its position from 0; empty for a listener rule), limit (its name) and kind (rate, concurrent).',
    labelNames: ['listener', 'route', 'limit', 'kind'],
  },
  accessDenied: {
    name: 'switchyard_access_denied_total',
    type: 'counter',
    help: 'Requests refused by an access rule (403; on a route also action close), by listener and route (its name, or its position from 0; empty for a listener rule). Connections closed as they are accepted count in switchyard_connections_refused_total.',
    labelNames: ['listener', 'route'],
  },
  mirrorRequests: {
    name: 'switchyard_mirror_requests_total',
    type: 'counter',
    help: 'Requests copied to a mirror pool (outcome sent), or not copied because the mirror was at its in-flight cap or refused admission (outcome skipped).',
    labelNames: ['pool', 'outcome'],
  },
  tcpConnections: {
    name: 'switchyard_tcp_connections_total',
    type: 'counter',
    help: 'TCP (layer 4) connections ended, by listener, pool and outcome (ok: piped to a server; error: no server reached).',
    labelNames: ['listener', 'pool', 'outcome'],
  },
  tcpActive: {
    name: 'switchyard_tcp_connections_active',
    type: 'gauge',
    help: 'TCP (layer 4) client connections open now, by listener.',
    labelNames: ['listener'],
  },
  tcpBytes: {
    name: 'switchyard_tcp_bytes_total',
    type: 'counter',
    help: 'Bytes piped by TCP (layer 4) listeners, by listener and direction (in: from clients, out: to clients).',
    labelNames: ['listener', 'direction'],
  },
  tunnels: {
    name: 'switchyard_tunnels_total',
    type: 'counter',
    help: 'WebSocket and other upgraded connections (tunnels) opened, by pool.',
    labelNames: ['pool'],
  },
  tunnelsActive: {
    name: 'switchyard_tunnels_active',
    type: 'gauge',
    help: 'WebSocket and other upgraded connections (tunnels) open now, by pool.',
    labelNames: ['pool'],
  },
  tunnelBytes: {
    name: 'switchyard_tunnel_bytes_total',
    type: 'counter',
    help: 'Bytes carried by tunnels once they closed, by pool and direction (in: from clients, out: to clients).',
    labelNames: ['pool', 'direction'],
  },
  http2Sessions: {
    name: 'switchyard_http2_sessions_total',
    type: 'counter',
    help: 'HTTP/2 client connections (sessions) opened, by listener.',
    labelNames: ['listener'],
  },
  http2Active: {
    name: 'switchyard_http2_sessions_active',
    type: 'gauge',
    help: 'HTTP/2 client connections (sessions) open now, by listener.',
    labelNames: ['listener'],
  },
  serverUp: {
    name: 'switchyard_server_up',
    type: 'gauge',
    help: 'Active health check state of each server: 1 up, 0 down (pools with healthCheck only).',
    labelNames: ['pool', 'server'],
  },
  overrideState: {
    name: 'switchyard_override_state',
    type: 'gauge',
    help: 'Always 1, one series for each server with a runtime override (admin API); state is what the server is now: active, draining, disabled, removing (draining, to be removed) or removed.',
    labelNames: ['pool', 'server', 'state'],
  },
  overrideWeight: {
    name: 'switchyard_override_weight',
    type: 'gauge',
    help: 'The weight a runtime override (admin API) gives a server, for each server whose override sets one.',
    labelNames: ['pool', 'server'],
  },
  reloads: {
    name: 'switchyard_config_reloads_total',
    type: 'counter',
    help: 'Configuration reloads, by result (ok, rejected).',
    labelNames: ['result'],
  },
  info: {
    name: 'switchyard_build_info',
    type: 'gauge',
    help: 'Always 1; labelled with the Switchyard version.',
    labelNames: ['version'],
  },
  workers: {
    name: 'switchyard_workers',
    type: 'gauge',
    help: 'Worker processes running now (multi-process mode only).',
    labelNames: [],
  },
  workerRestarts: {
    name: 'switchyard_worker_restarts_total',
    type: 'counter',
    help: 'Workers restarted after they exited unasked (multi-process mode only).',
    labelNames: [],
  },
} as const satisfies Record<string, MetricDef>

/**
 * With several workers, these are the supervisor's alone: it applies reloads and runtime changes, runs
 * the health checks and knows the version. Every other metric is summed over the workers when scraped.
 */
export const SUPERVISOR_METRICS: readonly string[] = [
  METRICS.serverUp.name,
  METRICS.overrideState.name,
  METRICS.overrideWeight.name,
  METRICS.reloads.name,
  METRICS.info.name,
  METRICS.workers.name,
  METRICS.workerRestarts.name,
]
