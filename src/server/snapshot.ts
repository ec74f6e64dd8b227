/**
 * Builds a listener's snapshot (listeners/snapshot.ts) from its config, the generation's pools and the
 * plugins: the compiled rules and pipelines, the router, the forwarding policy. The control plane
 * (LoadBalancer) builds one per listener and config generation; the config test kit (testkit/) builds
 * the same to run requests through the real request path without a socket. Never on the request path.
 */

import { ChallengeAnswers } from '../acme/index.js'
import type { ListenerConfig, RuntimeConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import { ExplainPolicy } from '../explain/index.js'
import type { FilterEnv, RuleLevel } from '../filters/env.js'
import { compileListener, compileRoute } from '../filters/pipeline.js'
import { createRules } from '../filters/registry.js'
import type { Shelf } from '../filters/shelf.js'
import type { Filter } from '../filters/types.js'
import { buildTrust } from '../l7/headers.js'
import { Router } from '../l7/router.js'
import type { PoolTarget, RouteTarget } from '../l7/target.js'
import { type ListenerTls, loadListenerTls } from '../listeners/certificates.js'
import type { ListenerSnapshot } from '../listeners/snapshot.js'
import type { Metrics } from '../metrics/index.js'
import type { Tracing } from '../tracing/index.js'
import type { UpstreamPool } from '../upstream/pool.js'
import { type AccessOutput, processLogOutput } from './access-logs.js'

/** Where a filter of the snapshot comes from: a plugin, the listener's rules, or route `route`'s rules. */
export type FilterOrigin =
  | { readonly level: 'plugin' }
  | { readonly level: 'listener'; readonly rule: string }
  | { readonly level: 'route'; readonly rule: string; readonly route: number }

export interface SnapshotDeps {
  readonly logger: Logger
  readonly metrics: Metrics
  /** Read the certificate and key of an https listener. Default: true; false leaves `tls` undefined. */
  readonly readTls?: boolean | undefined
  /**
   * Replaces each filter before the pipelines are compiled (the test kit observes them so); it must
   * keep the filter's hooks. Default: the filters as they are.
   */
  readonly wrap?: ((filter: Filter, origin: FilterOrigin) => Filter) | undefined
  /** Rule state kept across reloads; absent: every build starts afresh. */
  readonly shelf?: Shelf | undefined
  /** Where access lines go (server/access-logs.ts); absent: the logger's destination, as the config says. */
  readonly access?: AccessOutput | undefined
  /** The generation's tracing; absent: off. */
  readonly tracing?: Tracing | undefined
}

/** The snapshot of listener `lc` of config `cfg`, over `pools` (every pool of the generation, by name). */
export function buildSnapshot(
  lc: ListenerConfig,
  cfg: RuntimeConfig,
  pools: ReadonlyMap<string, UpstreamPool>,
  plugins: readonly Filter[],
  deps: SnapshotDeps,
): ListenerSnapshot {
  const { logger, metrics } = deps
  const access = deps.access ?? processLogOutput(logger, cfg.logging.accessLog)
  const base = {
    config: lc,
    logger,
    accessLog: access.log,
    accessInfo: access.info,
    accessSample: access.sample,
    tracing: lc.protocol === 'tcp' ? undefined : deps.tracing,
    metrics,
  }
  const poolOf = (name: string): UpstreamPool => {
    const pool = pools.get(name)
    if (!pool) throw new Error(`unvalidated reference to pool ${name}`)
    return pool
  }
  if (lc.protocol === 'tcp') {
    const routes = lc.routes.map((r) => {
      const pool = poolOf(r.pool ?? '')
      return { sni: r.sni, pool, tcp: metrics.forTcp(lc.name, pool.name) }
    })
    return { kind: 'tcp', ...base, routes, bySni: routes.some((r) => r.sni !== undefined) }
  }
  const wrap = deps.wrap
  const env = (pathPrefix: string | undefined, level: RuleLevel, route?: number): FilterEnv => ({
    listener: lc.name,
    logger,
    pools,
    pathPrefix,
    level,
    route,
    routeName: route === undefined ? undefined : lc.routes[route]?.name,
    metrics,
    shelf: deps.shelf,
  })
  const rules = (created: Filter[], origin: (rule: string) => FilterOrigin): Filter[] =>
    wrap === undefined ? created : created.map((f) => wrap(f, origin(f.name)))
  const own = wrap === undefined ? plugins : plugins.map((p) => wrap(p, { level: 'plugin' }))
  const listenerRules = rules(createRules(lc.rules, env(undefined, 'listener')), (rule) => ({
    level: 'listener',
    rule,
  }))
  const targets = new Map<string, PoolTarget>(
    [...pools.values()].map((pool) => [pool.name, { pool, metrics: metrics.forRoute(lc.name, pool.name) }]),
  )
  const unrouted = metrics.forRoute(lc.name, '')
  const routes = lc.routes.map((r, index) => {
    const pool = r.pool === undefined ? undefined : targets.get(poolOf(r.pool).name)
    const routeRules = rules(createRules(r.rules, env(r.match.pathPrefix, 'route', index)), (rule) => ({
      level: 'route',
      rule,
      route: index,
    }))
    const target: RouteTarget = {
      pool,
      metrics: pool?.metrics ?? unrouted,
      pipeline: compileRoute([...own, ...listenerRules, ...routeRules]),
      view: { name: r.name, index, pool: r.pool },
      maxBodyBytes: r.maxBodyBytes ?? lc.limits.maxBodyBytes,
    }
    return { match: r.match, target }
  })
  const tls: ListenerTls | undefined =
    lc.protocol === 'https' && deps.readTls !== false ? loadListenerTls(lc) : undefined
  return {
    kind: 'http',
    ...base,
    proto: lc.protocol === 'https' ? 'https' : 'http',
    tls,
    router: new Router(routes),
    forwarding: {
      xForwarded: lc.forwarded.xForwarded,
      forwarded: lc.forwarded.forwarded,
      ...buildTrust(lc.forwarded.trustedProxies),
    },
    pipeline: compileListener([...own, ...listenerRules]),
    pools: targets,
    unrouted,
    acmeChallenges: challengeAnswers(cfg),
    explain: ExplainPolicy.of(lc.explain),
  }
}

/** The http-01 answers of every `tls.acme` storage of the config; undefined when none has one. */
function challengeAnswers(cfg: RuntimeConfig): ChallengeAnswers | undefined {
  const dirs = cfg.listeners.flatMap((l) => (l.tls?.acme === undefined ? [] : [l.tls.acme.storageDir]))
  return dirs.length === 0 ? undefined : new ChallengeAnswers(dirs)
}
