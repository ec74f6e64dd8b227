/**
 * `explain(config, request)`: what Switchyard does with one request, and why, without a socket. The
 * request runs through the real request path: a listener snapshot built as the load balancer builds
 * it (server/snapshot.ts), the real Inbound with its head scan and client-address rules, the `onRequest`
 * phase, the Router, the `onRoute` phase (every built-in rule and plugin, observed but not replaced),
 * then, where an Exchange would start, the forwarding headers (`upstreamRequestHeaders`) and a real
 * UpstreamPool's admission for the server. Nothing is sent: a ClientSide that records stands in for
 * the client, and undici pools are created (they open no socket until a request) and closed.
 *
 * What a result depends on besides the request:
 * - every server is taken to be up (no health checks run), and no slow start applies;
 * - `server` is the first choice of a fresh pool: the pool's balancer for this request. For hashing
 *   algorithms (ip-hash, ring-hash, maglev) and `client-ip`/`header` stickiness (or a request whose
 *   sticky cookie binds it) it follows from the request (`serverDeterministic`); for the others live
 *   traffic rotates or draws, so it says little;
 * - a `pools` split draws at random unless its pools are sticky: then `pools` lists every pool that
 *   the request may go to, and `pool` is the one this run drew;
 * - the request id (and so `{request_id}` and X-Request-Id) is random unless the request brings one
 *   and the listener trusts it.
 * Answers (a redirect, `respond`, an error such as 404 SWY_NO_ROUTE) end like any request: plugins'
 * `onLog` hooks see them and `switchyard:request:end` is published.
 */
import { isIP } from 'node:net'
import { Readable } from 'node:stream'
import type { Balancer } from '../balancer/index.js'
import { type RouteMatch, type RuntimeConfig, validateConfig } from '../config/index.js'
import { ERROR_CODES, type ErrorCode, SwitchyardError } from '../core/errors.js'
import { silentLogger } from '../core/logger.js'
import {
  describeChoice,
  type ExplainRecord,
  explainHeader,
  MAX_CANDIDATES,
  type ServerChoice,
} from '../explain/index.js'
import { isThenable } from '../filters/chain.js'
import type { Filter, FilterContext, HookResult } from '../filters/types.js'
import { admitRequestOf, tryHeaders } from '../l7/admission.js'
import type { ClientSide } from '../l7/client.js'
import { RequestHead } from '../l7/headers.js'
import { Inbound, type RequestHooks } from '../l7/request.js'
import { Router } from '../l7/router.js'
import type { RouteTarget } from '../l7/target.js'
import type { HttpSnapshot } from '../listeners/snapshot.js'
import { Metrics } from '../metrics/index.js'
import { balancerTable, loadPlugins, type Plugin, pluginProblems } from '../plugins/index.js'
import { configError } from '../server/load-balancer.js'
import { buildSnapshot, type FilterOrigin } from '../server/snapshot.js'
import { TunnelSet } from '../tunnel/index.js'
import { ConnectionRegistry } from '../upstream/connections.js'
import { type AdmitRequest, type Selection, UpstreamPool } from '../upstream/pool.js'

/** One request to explain. Every field is optional. */
export interface ExplainRequest {
  /** Default: GET. */
  readonly method?: string | undefined
  /** The Host header. Default: `localhost` (unless `headers` has a Host). */
  readonly host?: string | undefined
  /** The request target: path and query. Default: `/`. */
  readonly path?: string | undefined
  /** Request headers; a list sends the header once per value. */
  readonly headers?: Readonly<Record<string, string | readonly string[]>> | undefined
  /**
   * The address the connection comes from (the peer). With `forwarded.trustedProxies` and an
   * X-Forwarded-For header, the client address is resolved from it as the listener would. Default:
   * 127.0.0.1.
   */
  readonly clientIp?: string | undefined
  /** The HTTP listener that receives the request, by name. Default: the config's first HTTP listener. */
  readonly listener?: string | undefined
}

export type StepName = 'listener' | 'client' | 'rules' | 'route' | 'pool' | 'server' | 'answer'

/** One step of the decision: what it gave, and why. */
export interface ExplainStep {
  readonly step: StepName
  /** The listener, client address, rule or plugin name, route (name, or index), pool, server, or status; null: none. */
  readonly result: string | number | null
  readonly reason: string
}

export interface Explanation {
  readonly listener: string
  /** The client address as the listener resolved it. */
  readonly clientIp: string
  /** The route that matched: its `name`, or its index when it has none; undefined when none did (or before routing). */
  readonly route: string | number | undefined
  /** Its position in the listener's routes. */
  readonly routeIndex: number | undefined
  /** The pool the request is proxied to; undefined when it is answered here. */
  readonly pool: string | undefined
  /** A split that draws at random: every pool the request may go to, with its weight; undefined otherwise. */
  readonly pools: readonly { readonly pool: string; readonly weight: number }[] | undefined
  /** Path and query sent upstream; undefined when the request is answered here. */
  readonly upstreamPath: string | undefined
  /** The headers sent upstream (lower-case names; repeated ones joined with `, `); undefined when answered here. */
  readonly upstreamHeaders: Readonly<Record<string, string>> | undefined
  /** The status Switchyard answers with itself (redirect, respond, an error); undefined when proxied. */
  readonly status: number | undefined
  /** The Location of that answer, if it has one. */
  readonly location: string | undefined
  /** The SWY_* code when the answer is an error (404 SWY_NO_ROUTE, ...). */
  readonly error: ErrorCode | undefined
  /** The server the pool chooses first; undefined when answered here or no server can take it. */
  readonly server: string | undefined
  /** The server follows from the request (hashing, stickiness), not from the pool's rotation or a draw. */
  readonly serverDeterministic: boolean
  /**
   * How the pool chose `server`: the balancer's scores, the servers it skipped and why, the sticky
   * decision; the same account a live request gets (docs/explain.md). Undefined when answered here.
   */
  readonly choice: ServerChoice | undefined
  /**
   * The `x-switchyard-explain` header a live request that asks gets for this decision (without its
   * tries, which need a server to answer).
   */
  readonly header: string
  readonly steps: readonly ExplainStep[]
}

export interface ExplainOptions {
  /** Plugins given in code, as to createLoadBalancer; they run before the config's `plugins`. */
  readonly plugins?: readonly Plugin[] | undefined
}

/** Explains requests against one config; build it once for many requests, and `close()` it. */
export interface Explainer {
  readonly config: RuntimeConfig
  explain(request: ExplainRequest): Promise<Explanation>
  /** Releases the pools and closes their (unused) undici dispatchers. */
  close(): Promise<void>
}

/**
 * Explains one request. `config`: a RuntimeConfig (from loadConfigFile or validateConfig), or raw
 * input that is validated first (throws SWY_CONFIG_INVALID, as createLoadBalancer does).
 */
export async function explain(
  config: RuntimeConfig | unknown,
  request: ExplainRequest = {},
  options: ExplainOptions = {},
): Promise<Explanation> {
  const explainer = await createExplainer(config, options)
  try {
    return await explainer.explain(request)
  } finally {
    await explainer.close()
  }
}

/** Builds an Explainer: validates raw input, loads the config's plugins, builds the pools. */
export async function createExplainer(
  config: RuntimeConfig | unknown,
  options: ExplainOptions = {},
): Promise<Explainer> {
  const embedded = options.plugins ?? []
  for (const [i, p] of embedded.entries()) {
    const problems = pluginProblems(p)
    if (problems.length > 0)
      throw new SwitchyardError('SWY_CONFIG_INVALID', `plugins option [${i}]: ${problems.join('; ')}`)
  }
  let runtime: RuntimeConfig
  if (isRuntimeConfig(config)) runtime = config
  else {
    const result = validateConfig(config, { balancers: balancerTable(embedded) })
    if (!result.ok) throw configError(result.issues)
    runtime = result.config
  }
  const plugins = [...embedded, ...(await loadPlugins(runtime.plugins))]
  return new ConfigExplainer(runtime, plugins)
}

/** A validated config is deep-frozen and has `backends` where the input has `servers`. */
function isRuntimeConfig(value: unknown): value is RuntimeConfig {
  if (value === null || typeof value !== 'object' || !Object.isFrozen(value)) return false
  const v = value as Partial<RuntimeConfig>
  return (
    Array.isArray(v.pools) &&
    Array.isArray(v.listeners) &&
    v.pools.every((p) => Array.isArray((p as Partial<RuntimeConfig['pools'][number]>).backends))
  )
}

const HASHING = new Set(['ip-hash', 'ring-hash', 'maglev'])
const HOOKS = ['onRequest', 'onRoute', 'selectUpstream', 'onForward', 'onResponse', 'responseBody', 'onLog'] as const

const NO_HOOKS: RequestHooks = { draining: false, tunnels: new TunnelSet(), begin() {}, end() {} }

class ConfigExplainer implements Explainer {
  readonly config: RuntimeConfig
  readonly #plugins: readonly Plugin[]
  readonly #balancers: ReturnType<typeof balancerTable>
  readonly #registry = new ConnectionRegistry()
  readonly #metrics = new Metrics()
  readonly #logger = silentLogger()
  readonly #pools = new Map<string, UpstreamPool>()
  readonly #snapshots = new Map<string, HttpSnapshot>()
  /** The trace of each request being explained, by its filter context (what the observed filters see). */
  readonly #traces = new WeakMap<FilterContext, Trace>()
  #closed = false

  constructor(config: RuntimeConfig, plugins: readonly Plugin[]) {
    this.config = config
    this.#plugins = plugins
    this.#balancers = balancerTable(plugins)
    for (const pc of config.pools)
      this.#pools.set(pc.name, new UpstreamPool(pc, this.#registry, this.#metrics, { balancers: this.#balancers }))
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const p of this.#pools.values()) p.release()
    await this.#registry.closeAll(0)
  }

  /** The snapshot of an HTTP listener, as the load balancer builds it, with every filter observed. */
  #snapshot(name: string | undefined): { rt: HttpSnapshot; why: string } {
    const http = this.config.listeners.filter((l) => l.protocol !== 'tcp')
    const lc = name === undefined ? http[0] : this.config.listeners.find((l) => l.name === name)
    if (lc === undefined)
      throw new Error(
        name === undefined
          ? 'the config has no HTTP listener'
          : `no listener named "${name}" (the config has ${this.config.listeners.map((l) => l.name).join(', ')})`,
      )
    if (lc.protocol === 'tcp') throw new Error(`listener ${lc.name} is a tcp listener: it has no HTTP routing`)
    const why =
      name !== undefined
        ? 'named by the request'
        : http.length === 1
          ? 'the only HTTP listener'
          : 'the first HTTP listener'
    let rt = this.#snapshots.get(lc.name)
    if (rt === undefined) {
      // No total-time limit: a request handed to onProxy is never finished, so it must hold no timer.
      const listener = { ...lc, timeouts: { ...lc.timeouts, totalMs: 0 } }
      const built = buildSnapshot(listener, this.config, this.#pools, this.#plugins, {
        logger: this.#logger,
        metrics: this.#metrics,
        readTls: false,
        wrap: (f, origin) => observe(f, origin, this.#traces),
      })
      if (built.kind !== 'http') throw new Error(`listener ${lc.name} is not an HTTP listener`)
      rt = built
      this.#snapshots.set(lc.name, rt)
    }
    return { rt, why: `${lc.name} (${lc.protocol} on ${lc.listen}): ${why}` }
  }

  async explain(request: ExplainRequest): Promise<Explanation> {
    if (this.#closed) throw new Error('explain() after close()')
    const { rt, why } = this.#snapshot(request.listener)
    const peerIp = request.clientIp ?? '127.0.0.1'
    if (isIP(peerIp) === 0) throw new TypeError(`clientIp: expected an IP address, found "${peerIp}"`)
    const raw: string[] = []
    const headers = request.headers ?? {}
    const hasHost = Object.keys(headers).some((n) => n.toLowerCase() === 'host')
    if (!hasHost) raw.push('host', request.host ?? 'localhost')
    for (const [name, value] of Object.entries(headers))
      for (const v of typeof value === 'string' ? [value] : value) raw.push(name, v)

    let settle: (outcome: 'answered' | 'proxied') => void = () => {}
    const done = new Promise<'answered' | 'proxied'>((resolve) => {
      settle = resolve
    })
    const client = new RecordingClient((request.method ?? 'GET').toUpperCase(), request.path ?? '/', raw, peerIp, () =>
      settle('answered'),
    )
    const inbound = new Inbound(rt, NO_HOOKS, client, false, { onProxy: () => settle('proxied') })
    const trace = new Trace(inbound)
    this.#traces.set(inbound.context(), trace)
    trace.push('listener', rt.config.name, why)
    trace.push('client', inbound.clientIp, clientReason(inbound, rt))
    inbound.run()
    const outcome = await done
    if (inbound.target !== undefined || outcome === 'proxied') trace.routed()
    if (outcome === 'answered') return this.#answered(inbound, client, trace)
    return this.#proxied(inbound, trace)
  }

  #answered(inbound: Inbound, client: RecordingClient, trace: Trace): Explanation {
    const status = client.status ?? 0
    const location = headerOf(client.headers, 'location')
    const byRule = trace.answeredBy
    let error: ErrorCode | undefined
    if (byRule === undefined) {
      const code = /SWY_[A-Z_]+/.exec(client.answer)?.[0]
      error = code !== undefined && code in ERROR_CODES ? (code as ErrorCode) : undefined
      if (error === 'SWY_NO_ROUTE') trace.unrouted()
      const failed = trace.failure
      trace.push(
        'answer',
        status,
        failed !== undefined
          ? `${error ?? 'error'}: ${failed}`
          : `${error ?? 'error'}: ${error === undefined ? 'an error answer' : ERROR_CODES[error].text}`,
      )
    } else
      trace.push(
        'answer',
        status,
        `${byRule} answered ${status}${location === undefined ? '' : ` → ${location}`} (nothing is proxied)`,
      )
    const target = inbound.target
    const route = target === undefined ? undefined : (target.view.name ?? target.view.index)
    return {
      listener: inbound.rt.config.name,
      clientIp: inbound.clientIp,
      route,
      routeIndex: target?.view.index,
      pool: undefined,
      pools: undefined,
      upstreamPath: undefined,
      upstreamHeaders: undefined,
      status,
      location,
      error,
      server: undefined,
      serverDeterministic: false,
      choice: undefined,
      header: explainHeader(trace.record(route, undefined, undefined, error)),
      steps: trace.steps,
    }
  }

  #proxied(inbound: Inbound, trace: Trace): Explanation {
    const target = inbound.target as RouteTarget
    const snapshotPool = inbound.poolTarget?.pool as UpstreamPool
    const split = trace.splitPools
    trace.push('pool', snapshotPool.name, trace.poolReason(target))
    // A fresh generation of the pool: its balancer's first choice does not depend on earlier requests.
    const pool = new UpstreamPool(snapshotPool.config, this.#registry, this.#metrics, { balancers: this.#balancers })
    let selection: Selection | undefined
    let serverReason: string
    let deterministic = false
    let choice: ServerChoice
    try {
      const select = target.pipeline.selectUpstream
      const request = admitRequestOf(inbound, pool, select)
      const admission = pool.admit(request)
      const lease = admission.kind === 'go' ? admission.lease : undefined
      selection = lease?.first
      choice = describeChoice(pool, request, {
        picked: selection,
        setCookie: lease?.setCookie,
        upcoming: lease?.upcoming(MAX_CANDIDATES - 1) ?? [],
        selectedBy: select.map((f) => f.name),
      })
      lease?.end()
      const how = serverChoice(pool, request)
      deterministic = selection !== undefined && how.deterministic
      serverReason =
        selection === undefined
          ? admission.kind === 'reject'
            ? `${admission.code}: ${admission.reason}`
            : 'no server can take the request'
          : `${how.reason}${selection.backend.backup ? ' (a backup server: no primary can take requests)' : ''}`
    } finally {
      pool.release()
    }
    trace.push('server', selection?.backend.id ?? null, serverReason)
    const route = target.view.name ?? target.view.index
    return {
      listener: inbound.rt.config.name,
      clientIp: inbound.clientIp,
      route,
      routeIndex: target.view.index,
      pool: snapshotPool.name,
      pools: split,
      upstreamPath: inbound.upstreamPath,
      upstreamHeaders: headerRecord(
        tryHeaders(
          inbound,
          snapshotPool,
          selection,
          Object.assign(new RequestHead(), inbound.head, { headers: [...inbound.head.headers] }),
        ).headers,
      ),
      status: undefined,
      location: undefined,
      error: undefined,
      server: selection?.backend.id,
      serverDeterministic: deterministic,
      choice,
      header: explainHeader(trace.record(route, snapshotPool.name, choice, undefined)),
      steps: trace.steps,
    }
  }
}

/** What admission needs of the request: as Exchange#start builds it (pick context, sticky source, selectUpstream). */
/** How the pool chooses: whether the request decides it, and in what words. */
function serverChoice(pool: UpstreamPool, request: AdmitRequest): { deterministic: boolean; reason: string } {
  const sticky = pool.config.sticky
  const ctx = request.ctx
  if (sticky !== undefined && request.keySource !== undefined) {
    if (sticky.mode === 'client-ip')
      return { deterministic: true, reason: `sticky client-ip: the hash of ${ctx.clientIp} chooses it` }
    if (sticky.mode === 'header') {
      const value = headerOf(request.keySource.rawHeaders, sticky.header)
      const key = value === undefined ? `${ctx.clientIp} (no ${sticky.header} header)` : `"${value}"`
      return { deterministic: true, reason: `sticky header:${sticky.header}: the hash of ${key} chooses it` }
    }
    const bound = pool.sticky?.bound(request.keySource)
    if (typeof bound === 'string')
      return { deterministic: true, reason: `sticky ${sticky.mode}: the request's cookie binds it to ${bound}` }
  }
  const balancer: Balancer = pool.balancer
  const algorithm = balancer.algorithm
  const open = pool.backends.filter((b) => !b.backup && !b.draining && b.weight > 0)
  if (open.length === 1)
    return { deterministic: true, reason: `the only server of pool ${pool.name} that takes requests` }
  if (HASHING.has(algorithm)) {
    const hashOn = 'hashOn' in pool.config.balance ? String(pool.config.balance.hashOn) : 'client-ip'
    return {
      deterministic: true,
      reason: `${algorithm} on ${hashOn}: the hash of "${ctx.hashKey ?? ctx.clientIp}" chooses it`,
    }
  }
  const unbound = sticky === undefined ? '' : ` (no ${sticky.mode} binding in the request)`
  return {
    deterministic: false,
    reason: `${algorithm}${unbound}: the first choice of a fresh pool; the request does not decide it, live traffic goes to every server`,
  }
}

/** The head sent upstream to `selection`, as Exchange#send builds it for the first try. */
function headerRecord(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i < flat.length; i += 2) {
    const name = (flat[i] as string).toLowerCase()
    const value = flat[i + 1] as string
    out[name] = out[name] === undefined ? value : `${out[name]}, ${value}`
  }
  return out
}

function headerOf(flat: readonly string[], lower: string): string | undefined {
  for (let i = 0; i < flat.length; i += 2) if ((flat[i] as string).toLowerCase() === lower) return flat[i + 1]
  return undefined
}

function clientReason(inbound: Inbound, rt: HttpSnapshot): string {
  const peer = inbound.peerIp
  if (inbound.clientIp !== peer)
    return `peer ${peer} is a trusted proxy: the client is the nearest untrusted address of its X-Forwarded-For`
  if (!rt.forwarding.trustAny) return `the connection's address (the listener trusts no proxy)`
  return `the connection's address (peer ${peer} is not a trusted proxy, or sent no X-Forwarded-For)`
}

// --- observing the filters ---------------------------------------------------------------------

/** What a filter may change, taken before and after it runs. */
interface State {
  readonly path: string
  readonly host: string | undefined
  readonly headers: readonly string[]
  readonly perTry: readonly string[]
  readonly pool: string | undefined
}

/** The steps of one request, and what the observed filters did. */
class Trace {
  readonly steps: ExplainStep[] = []
  readonly #inbound: Inbound
  #routeDone = false
  /** The filter (label) that answered, if one did. */
  answeredBy: string | undefined
  /** The names of the filters that ran, in order (what a live explanation lists). */
  readonly #ran: string[] = []
  /** The name of the filter that answered, if one did. */
  #answeredName: string | undefined
  /** Why a filter failed, if one did. */
  failure: string | undefined
  /** The filter that last chose the pool, with its origin. */
  #poolBy: { label: string; origin: FilterOrigin } | undefined
  /** The split's pools, when it drew at random. */
  splitPools: { pool: string; weight: number }[] | undefined
  #splitReason: string | undefined

  constructor(inbound: Inbound) {
    this.#inbound = inbound
  }

  push(step: StepName, result: string | number | null, reason: string): void {
    this.steps.push({ step, result, reason })
  }

  /** The explanation's record, as a live request's would be before its first try. */
  record(
    route: string | number | undefined,
    pool: string | undefined,
    choice: ServerChoice | undefined,
    error: ErrorCode | undefined,
  ): ExplainRecord {
    return { route: route ?? null, filters: this.#ran, answeredBy: this.#answeredName, pool, choice, tries: [], error }
  }

  capture(): State {
    const i = this.#inbound
    return {
      path: i.upstreamPath,
      host: i.upstreamHost,
      headers: [...i.head.headers],
      perTry: (i.perTryHeaders ?? []).map(([n, t]) => `${n}: ${t}`),
      pool: i.poolTarget?.pool.name,
    }
  }

  /** The route step, once, when the request has been routed (before the first `onRoute` filter's step). */
  routed(): void {
    if (this.#routeDone) return
    const target = this.#inbound.target
    if (target === undefined) return
    this.#routeDone = true
    const routes = this.#inbound.rt.config.routes
    const index = target.view.index
    const own = routes[index]?.match
    const skipped = routes
      .slice(0, index)
      .map((r, i) => `${routeLabel(i, r.name)} (${failedCondition(r.match, this.#inbound) ?? 'no match'})`)
    const conditions = own === undefined ? 'matched' : describeMatch(own)
    const rest = skipped.length === 0 ? '' : `; not ${skipped.join(', ')}`
    this.push('route', target.view.name ?? index, `${routeLabel(index, target.view.name)}: ${conditions}${rest}`)
  }

  /** The route step when no route matched: why each one did not. */
  unrouted(): void {
    if (this.#routeDone) return
    this.#routeDone = true
    const routes = this.#inbound.rt.config.routes
    const why = routes.map((r, i) => `${routeLabel(i, r.name)} (${failedCondition(r.match, this.#inbound) ?? '?'})`)
    this.push('route', null, `no route matches: ${why.join(', ') || 'the listener has no routes'}`)
  }

  /** A filter ran one of its request-side hooks: what it changed, or its answer. */
  ran(
    filter: Filter,
    origin: FilterOrigin,
    phase: 'onRequest' | 'onRoute',
    before: State,
    verdict: Awaited<HookResult>,
    error?: unknown,
  ): void {
    if (phase === 'onRoute') this.routed()
    this.#ran.push(filter.name)
    const label = filterLabel(filter, origin)
    const config = this.#inbound.rt.config
    const options = ruleOptions(origin, config)
    if (error !== undefined) {
      this.failure = `${label} failed: ${error instanceof Error ? error.message : String(error)}`
      this.push('rules', filter.name, this.failure)
      return
    }
    if (verdict !== undefined && verdict !== null && verdict.kind === 'respond') {
      this.answeredBy = label
      this.#answeredName = filter.name
      const location = verdict.headers?.location
      this.push(
        'rules',
        filter.name,
        `${label}: answers ${verdict.status}${location === undefined ? '' : ` → ${location}`}`,
      )
      return
    }
    const after = this.capture()
    const changes: string[] = []
    if (after.path !== before.path) changes.push(`path ${before.path} → ${after.path}`)
    if (after.host !== before.host) changes.push(`Host → ${after.host ?? '(the pool decides)'}`)
    changes.push(...headerChanges(before.headers, after.headers))
    for (const t of after.perTry) if (!before.perTry.includes(t)) changes.push(`${t} (rendered for the chosen server)`)
    if (after.pool !== before.pool && after.pool !== undefined) {
      this.#poolBy = { label, origin }
      if (origin.level === 'route' && origin.rule === 'pools') this.#split(after.pool)
      changes.push(`pool → ${after.pool}`)
    }
    // A refusal (rate limit, access rules) answers too; the answer step tells its code.
    if (verdict !== undefined && verdict !== null && verdict.kind === 'reject') this.#answeredName = filter.name
    const detail = options === undefined ? '' : ` (${options})`
    this.push('rules', filter.name, `${label}${detail}: ${changes.length === 0 ? 'no change' : changes.join('; ')}`)
  }

  /** Records how a `pools` split chose `chosen` (the real filter chose it; this only says how). */
  #split(chosen: string): void {
    const inbound = this.#inbound
    const target = inbound.target
    if (target === undefined) return
    const sides = (inbound.rt.config.routes[target.view.index]?.rules.pools ?? []).filter((s) => s.weight > 0)
    const weights = sides.map((s) => `${s.pool} ${s.weight}`).join(', ')
    const src = { clientIp: inbound.clientIp, rawHeaders: inbound.client.rawHeaders, url: inbound.url }
    const stickies = sides.map((s) => inbound.rt.pools.get(s.pool)?.pool.sticky)
    const bound = stickies.findIndex(
      (s) => (s?.config.mode === 'cookie' || s?.config.mode === 'app-cookie') && typeof s.bound(src) === 'string',
    )
    const header = stickies.find((s) => s?.config.mode === 'header')?.config
    const hashed = stickies.some((s) => s?.config.mode === 'client-ip' || s?.config.mode === 'header')
    if (sides.length <= 1) this.#splitReason = `split: ${chosen} is the only pool with a weight`
    else if (bound >= 0) this.#splitReason = `split (${weights}): the request's sticky session is on ${chosen}`
    else if (hashed) {
      const value = header?.mode === 'header' ? headerOf(inbound.client.rawHeaders, header.header) : undefined
      const key =
        value === undefined
          ? `client ${inbound.clientIp}`
          : `${header?.mode === 'header' ? header.header : ''} "${value}"`
      this.#splitReason = `split (${weights}), sticky: the hash of ${key} chooses ${chosen}`
    } else {
      this.splitPools = sides.map((s) => ({ pool: s.pool, weight: s.weight }))
      this.#splitReason = `split (${weights}) drawn at random per request: this one drew ${chosen}; another may go to ${sides.map((s) => s.pool).join(' or ')}`
    }
  }

  poolReason(target: RouteTarget): string {
    const pool = this.#inbound.poolTarget?.pool.name
    if (this.#poolBy === undefined) return `the pool of ${routeLabel(target.view.index, target.view.name)}`
    if (this.#splitReason !== undefined && this.#poolBy.origin.level === 'route') return this.#splitReason
    return `${this.#poolBy.label} chose ${pool} (usePool)`
  }
}

/** Wraps a filter so that its `onRequest`/`onRoute` hooks report to the request's trace; other hooks pass through. */
function observe(filter: Filter, origin: FilterOrigin, traces: WeakMap<FilterContext, Trace>): Filter {
  const out: Record<string, unknown> = { name: filter.name }
  for (const hook of HOOKS) {
    const fn = filter[hook] as ((...args: unknown[]) => unknown) | undefined
    if (typeof fn !== 'function') continue
    if (hook !== 'onRequest' && hook !== 'onRoute') {
      out[hook] = (...args: unknown[]) => fn.apply(filter, args)
      continue
    }
    out[hook] = (ctx: FilterContext): HookResult => {
      const trace = traces.get(ctx)
      const call = () => fn.call(filter, ctx) as HookResult
      if (trace === undefined) return call()
      const before = trace.capture()
      let result: HookResult
      try {
        result = call()
      } catch (err) {
        trace.ran(filter, origin, hook, before, undefined, err)
        throw err
      }
      if (!isThenable(result)) {
        trace.ran(filter, origin, hook, before, result)
        return result
      }
      return Promise.resolve(result).then(
        (verdict) => {
          trace.ran(filter, origin, hook, before, verdict)
          return verdict
        },
        (err: unknown) => {
          trace.ran(filter, origin, hook, before, undefined, err)
          throw err
        },
      )
    }
  }
  return out as unknown as Filter
}

function filterLabel(filter: Filter, origin: FilterOrigin): string {
  switch (origin.level) {
    case 'plugin':
      return `plugin ${filter.name}`
    case 'listener':
      return `listener rule ${origin.rule}`
    case 'route':
      return `route ${origin.route} rule ${origin.rule}`
    default: {
      const unknown: never = origin
      throw new Error(`unknown filter origin ${JSON.stringify(unknown)}`)
    }
  }
}

/** A short account of a rule's options, where they say more than its changes. */
function ruleOptions(origin: FilterOrigin, listener: HttpSnapshot['config']): string | undefined {
  if (origin.level !== 'route' || origin.rule !== 'rewrite') return undefined
  const r = listener.routes[origin.route]?.rules.rewrite
  if (r === undefined) return undefined
  const parts: string[] = []
  if (r.stripPrefix !== undefined) parts.push(`stripPrefix ${r.stripPrefix}`)
  if (r.replacePrefix !== undefined) parts.push(`replacePrefix ${r.replacePrefix.from} → ${r.replacePrefix.to}`)
  if (r.regex !== undefined) parts.push(`regex ${r.regex.pattern} → ${r.regex.replacement}`)
  if (r.host !== undefined) parts.push(`host ${r.host}`)
  return parts.join(', ') || undefined
}

/** The header changes between two flat header arrays: new values (and what they replace), removed names. */
function headerChanges(before: readonly string[], after: readonly string[]): string[] {
  const pairs = (flat: readonly string[]) => {
    const out: [name: string, value: string][] = []
    for (let i = 0; i < flat.length; i += 2) out.push([(flat[i] as string).toLowerCase(), flat[i + 1] as string])
    return out
  }
  const was = pairs(before)
  const now = pairs(after)
  const has = (list: [string, string][], [n, v]: [string, string]) => list.some(([m, w]) => m === n && w === v)
  const removed = was.filter((p) => !has(now, p))
  const added = now.filter((p) => !has(was, p))
  const out: string[] = []
  for (const [n, v] of added) {
    const old = removed.filter(([m]) => m === n).map(([, w]) => JSON.stringify(w))
    out.push(old.length === 0 ? `${n}: ${v}` : `${n}: ${v} (was ${old.join(', ')})`)
  }
  for (const n of new Set(removed.map(([m]) => m))) if (!added.some(([m]) => m === n)) out.push(`remove ${n}`)
  return out
}

function routeLabel(index: number, name: string | undefined): string {
  return name === undefined ? `route ${index}` : `route ${index} "${name}"`
}

const ANY: RouteMatch = {
  hosts: [],
  hostSuffixes: [],
  anyHost: true,
  pathPrefix: undefined,
  path: undefined,
  methods: [],
  headers: [],
}

/** Each condition of a route on its own, with its words. */
function conditions(m: RouteMatch): { label: string; match: RouteMatch }[] {
  const out: { label: string; match: RouteMatch }[] = []
  if (!m.anyHost)
    out.push({
      label: `host ${[...m.hosts, ...m.hostSuffixes.map((s) => `*${s}`)].join(' or ')}`,
      match: { ...ANY, anyHost: false, hosts: m.hosts, hostSuffixes: m.hostSuffixes },
    })
  if (m.path !== undefined) out.push({ label: `path ${m.path}`, match: { ...ANY, path: m.path } })
  if (m.pathPrefix !== undefined)
    out.push({ label: `pathPrefix ${m.pathPrefix}`, match: { ...ANY, pathPrefix: m.pathPrefix } })
  if (m.methods.length > 0)
    out.push({ label: `method ${m.methods.join(' or ')}`, match: { ...ANY, methods: m.methods } })
  for (const h of m.headers)
    out.push({
      label: h[1] === undefined ? `header ${h[0]} present` : `header ${h[0]}: ${h[1]}`,
      match: { ...ANY, headers: [h] },
    })
  return out
}

function describeMatch(m: RouteMatch): string {
  const list = conditions(m).map((c) => c.label)
  return list.length === 0 ? 'matches every request' : `${list.join(', ')} matched`
}

/** The first condition of `m` that the request fails, asked of the real Router one condition at a time. */
function failedCondition(m: RouteMatch, inbound: Inbound): string | undefined {
  const facts = {
    method: inbound.method,
    host: inbound.hostname,
    path: inbound.path,
    rawHeaders: inbound.client.rawHeaders,
  }
  for (const c of conditions(m))
    if (new Router([{ match: c.match, target: c }]).match(facts) === undefined) return c.label
  return undefined
}

// --- the client side that records ----------------------------------------------------------------

/** A ClientSide with no socket: the request as given, and what would be written back. */
class RecordingClient implements ClientSide {
  readonly protocol = 'http/1.1' as const
  readonly headersChecked = false
  readonly versionMajor = 1
  readonly h2HasBody = undefined
  readonly bodyComplete = true
  readonly bodyAborted = false
  readonly gone = false
  readonly goneReason = undefined
  /** The explanation stops at the routing decision, before any upgrade. */
  readonly canSwitch = false
  readonly connection = undefined
  readonly method: string
  readonly url: string
  readonly rawHeaders: readonly string[]
  readonly peerIp: string
  status: number | undefined
  headers: readonly string[] = []
  /** The body of our own answer, as text. */
  answer = ''
  readonly #onEnd: () => void
  #body: Readable | undefined
  #ended = false

  constructor(method: string, url: string, rawHeaders: readonly string[], peerIp: string, onEnd: () => void) {
    this.method = method
    this.url = url
    this.rawHeaders = rawHeaders
    this.peerIp = peerIp
    this.#onEnd = onEnd
  }

  get body(): Readable {
    this.#body ??= Readable.from([])
    return this.#body
  }

  get headersSent(): boolean {
    return this.status !== undefined
  }

  bytesIn(): number {
    return 0
  }

  switchProtocols(): undefined {
    return undefined
  }

  countBody(): void {}

  writeContinue(): void {}

  writeHead(status: number, _reason: string | undefined, headers: readonly string[]): void {
    this.status = status
    this.headers = [...headers]
  }

  write(chunk: Buffer): boolean {
    this.answer += chunk.toString()
    return true
  }

  onDrain(): void {}

  end(chunk?: Buffer | string): void {
    if (chunk !== undefined) this.answer += chunk.toString()
    this.#end()
  }

  abort(): void {
    this.#end()
  }

  watch(): void {}

  unwatch(): void {}

  #end(): void {
    if (this.#ended) return
    this.#ended = true
    this.#onEnd()
  }
}
