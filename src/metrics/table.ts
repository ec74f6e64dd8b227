/**
 * Every metric Switchyard exports, declared in one table (after Envoy's stats.h). Each LoadBalancer has
 * its own prom-client Registry, so several instances in one process (tests, embedders) do not collide.
 * Request-path updates go through pre-bound label children: O(1), no string building per request.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export const METRICS = {
  requests: {
    name: 'switchyard_http_requests_total',
    help: 'HTTP requests answered, by listener, pool and status class (1xx..5xx).',
    labelNames: ['listener', 'pool', 'class'],
  },
  duration: {
    name: 'switchyard_http_request_duration_seconds',
    help: 'Time from the request head to the end of the response, by listener and pool.',
    labelNames: ['listener', 'pool'],
  },
  inFlight: {
    name: 'switchyard_http_requests_in_flight',
    help: 'Requests being handled now, by listener.',
    labelNames: ['listener'],
  },
  errors: {
    name: 'switchyard_errors_total',
    help: 'Requests that ended in a Switchyard error, by pool and SWY_* code.',
    labelNames: ['pool', 'code'],
  },
  upstreamRequests: {
    name: 'switchyard_upstream_requests_total',
    help: 'Requests sent to each upstream server.',
    labelNames: ['pool', 'server'],
  },
  reloads: {
    name: 'switchyard_config_reloads_total',
    help: 'Configuration reloads, by result (ok, rejected).',
    labelNames: ['result'],
  },
  info: {
    name: 'switchyard_build_info',
    help: 'Always 1; labelled with the Switchyard version.',
    labelNames: ['version'],
  },
} as const

const BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

export class Metrics {
  readonly registry = new Registry()
  readonly requests = new Counter({ ...METRICS.requests, registers: [this.registry] })
  readonly duration = new Histogram({
    ...METRICS.duration,

    buckets: BUCKETS,
    registers: [this.registry],
  })
  readonly inFlight = new Gauge({ ...METRICS.inFlight, registers: [this.registry] })
  readonly errors = new Counter({ ...METRICS.errors, registers: [this.registry] })
  readonly upstreamRequests = new Counter({
    ...METRICS.upstreamRequests,

    registers: [this.registry],
  })
  readonly reloads = new Counter({ ...METRICS.reloads, registers: [this.registry] })
  readonly info = new Gauge({ ...METRICS.info, registers: [this.registry] })

  /** Pre-bound children for one (listener, pool) pair; built with the snapshot, off the request path. */
  forRoute(listener: string, pool: string): RouteMetrics {
    return {
      byClass: [1, 2, 3, 4, 5].map((c) => this.requests.labels(listener, pool, `${c}xx`)),
      duration: this.duration.labels(listener, pool),
    }
  }
}

export interface RouteMetrics {
  /** Index `Math.floor(status / 100) - 1`. */
  readonly byClass: readonly { inc(): void }[]
  readonly duration: { observe(seconds: number): void }
}
