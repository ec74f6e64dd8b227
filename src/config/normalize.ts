/**
 * Turns a validated config input into the runtime config: durations in milliseconds, servers as
 * Backend objects, short forms expanded, and everything deep-frozen. Code past this point trusts it.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import path from 'node:path'
import { type BalanceOptions, defaultOptions } from '../balancer/index.js'
import {
  durationToMs,
  formatAddress,
  type ListenAddress,
  parseListen,
  parseRate,
  sizeToBytes,
} from '../core/address.js'
import type { Backend } from '../core/backend.js'
import type { LogLevel } from '../core/logger.js'
import { tokenDigest } from '../core/token.js'
import { type RuleOptions, rulesOf } from '../filters/registry.js'
import type { CheckSchedule, ConnectEjectionSettings, HealthCheckOptions, OutlierSettings } from '../health/index.js'
import type { AccessFormat } from '../l7/access-log.js'
import type { PathPolicy } from '../l7/path.js'
import type { SlowClientPolicy } from '../l7/slow-clients.js'
import type { CookieSettings } from '../sticky/cookie.js'
import {
  DEFAULT_H2_MAX_STREAMS,
  type Engine,
  httpListenerSchema,
  type ParsedConfig,
  parseServerUrl,
  type TLS_VERSIONS,
} from './schema.js'

export type TlsVersion = (typeof TLS_VERSIONS)[number]

export interface RouteMatch {
  /** Lower-case exact host names. */
  readonly hosts: readonly string[]
  /** Lower-case suffixes (with the leading dot) from `*.example.com` patterns. */
  readonly hostSuffixes: readonly string[]
  /** True when `host: "*"` was given, or no host condition at all. */
  readonly anyHost: boolean
  readonly pathPrefix: string | undefined
  readonly path: string | undefined
  /** Upper-case methods; empty means any. */
  readonly methods: readonly string[]
  /** Lower-case header names with their exact value, or `undefined` to require presence only. */
  readonly headers: readonly (readonly [name: string, value: string | undefined])[]
}

export interface RouteConfig {
  /** The route's `name`, if it has one. */
  readonly name: string | undefined
  readonly match: RouteMatch
  /** The pool that serves the route; undefined when a rule chooses it or answers itself. */
  readonly pool: string | undefined
  /** The route's built-in rules, as validated (compiled into filters per snapshot). */
  readonly rules: RuleOptions
  /** Largest request body on this route, in bytes; undefined: the listener's `limits.maxBodyBytes`. 0: none. */
  readonly maxBodyBytes?: number | undefined
  /** `tcp` listeners: the TLS server names (lower-case) of the route; undefined: every connection. */
  readonly sni?: readonly string[] | undefined
}

/** A plugin to load: a module path (absolute) or package name, and its options. */
export interface PluginConfig {
  readonly module: string
  readonly options: unknown
}

export interface ListenerConfig extends ListenAddress {
  readonly name: string
  /** The address as written, for logs. */
  readonly listen: string
  readonly protocol: 'http' | 'https' | 'tcp'
  /** The HTTP/1.1 engine of the client side (`node` for tcp listeners, which have none). */
  readonly engine: Engine
  /** PEM file paths, for `https` only. */
  readonly tls:
    | {
        /** The first serves unknown names and clients without SNI; each serves the names of its certificate. */
        readonly certificates: readonly { readonly certFile: string; readonly keyFile: string }[]
        readonly minVersion: TlsVersion
        /** TLS 1.2 cipher list (OpenSSL format); undefined: Node's default. */
        readonly ciphers: string | undefined
        /** Mutual TLS; `forwardHeader` lower-case. */
        readonly clientAuth:
          | { readonly caFile: string; readonly mode: 'required' | 'optional'; readonly forwardHeader: string }
          | undefined
        /**
         * Automatic certificates; `certificates` then names the files the ACME manager keeps, which
         * may not exist yet (the listener serves no certificate until the first one is issued).
         */
        readonly acme: AcmeSettings | undefined
      }
    | undefined
  /** HTTP/2 settings; undefined when the listener speaks HTTP/1.x only. */
  readonly http2:
    | { readonly maxConcurrentStreams: number; readonly pingIntervalMs: number; readonly pingTimeoutMs: number }
    | undefined
  readonly routes: readonly RouteConfig[]
  /** Listener-level rules, run for every request before routing (see filters/registry.ts). */
  readonly rules: RuleOptions
  readonly timeouts: {
    readonly requestHeadersMs: number
    readonly idleMs: number
    readonly totalMs: number
    /** Longest silence of an upgraded connection (both ways); 0: none. */
    readonly tunnelIdleMs: number
    /** Longest life of an upgraded connection; 0: none. */
    readonly tunnelMaxAgeMs: number
  }
  /** On a drain, upgraded connections close at random times spread over this (`shutdown.tunnelCloseWindow`). */
  readonly tunnelCloseWindowMs: number
  readonly limits: ListenerLimits
  /** Path normalization before routing (l7/path.ts). */
  readonly paths: PathPolicy
  /** Minimum data rates of request bodies and response reads (l7/slow-clients.ts). */
  readonly slowClients: SlowClientPolicy
  /** HTTP/1.1 requests per client connection; the last response carries `Connection: close`. 0: no limit. */
  readonly maxRequestsPerConnection: number
  readonly forwarded: {
    readonly xForwarded: boolean
    readonly forwarded: boolean
    readonly trustedProxies: readonly string[]
  }
  readonly requestId: { readonly header: string; readonly trustIncoming: boolean; readonly echo: boolean }
  /** Request explanations (explain/); undefined: off. */
  readonly explain: ExplainSettings | undefined
  /** Connections start with a PROXY protocol header. */
  readonly proxyProtocol: boolean
}

/** A listener's `explain`, normalized. */
export interface ExplainSettings {
  /** Addresses and CIDR ranges whose requests may ask. */
  readonly trusted: readonly string[]
  /**
   * With `adminToken`: the SHA-256 digest of the admin token, hex (the config crosses IPC as JSON, and
   * workers get no `admin`); undefined: the token is not accepted. Redacted from the admin API's config.
   */
  readonly token: string | undefined
}

/** A listener's `limits`, in bytes and counts; 0 means no limit. TCP listeners use the connection ones. */
export interface ListenerLimits {
  readonly connectionsPerIp: number
  /** New connections per client address: `count` per `perMs`; undefined: no limit. */
  readonly connectionRatePerIp: { readonly count: number; readonly perMs: number } | undefined
  readonly maxConnections: number
  readonly maxBodyBytes: number
  readonly maxHeaderBytes: number
  readonly maxHeaderCount: number
  readonly maxUrlBytes: number
}

/** Session persistence of a pool, normalized: the secret is hex text, so the config crosses IPC as JSON. */
export type StickySettings =
  | {
      readonly mode: 'cookie'
      readonly cookie: CookieSettings
      /** HMAC key, hex. */
      readonly secretHex: string
    }
  | { readonly mode: 'client-ip' }
  | { readonly mode: 'header'; readonly header: string }
  | { readonly mode: 'app-cookie'; readonly cookie: string; readonly maxEntries: number; readonly ttlMs: number }

/** Retries of a pool, normalized. */
export interface RetrySettings {
  /** Further tries after the first. */
  readonly attempts: number
  readonly onConnectFailure: boolean
  readonly onReset: boolean
  readonly onTimeout: boolean
  /** Upstream statuses that are retried. */
  readonly statuses: readonly number[]
  readonly retryNonIdempotent: boolean
  readonly backoffBaseMs: number
  readonly backoffMaxMs: number
  readonly budgetPercent: number
  readonly budgetMinRetries: number
  /** Request bodies with a Content-Length up to this are buffered, to be replayable; 0: none are. */
  readonly bufferBytes: number
  /** Time to a response head for each try; 0: the pool's `responseHeadersMs`. */
  readonly perTryTimeoutMs: number
  /** Resend, whatever the method, a request that a reused idle connection lost before any response byte. */
  readonly keepAliveRace: boolean
}

/** Active health checks: the probe's own options as validated, and the schedule in milliseconds. */
export interface HealthCheckSettings {
  readonly probe: HealthCheckOptions
  readonly schedule: CheckSchedule
}

/** Signs sticky cookies when the config names no secret: one per process run, the same across reloads. */
const RUN_SECRET_HEX = randomBytes(32).toString('hex')

/** TLS to a pool's `https://` servers, as configured (PEM file paths, read when a snapshot is built). */
export interface UpstreamTlsConfig {
  readonly caFile: string | undefined
  readonly certFile: string | undefined
  readonly keyFile: string | undefined
  readonly servername: string | undefined
  readonly insecureSkipVerify: boolean
  readonly minVersion: TlsVersion
}

export type UpstreamProtocol = 'http1' | 'h2' | 'h2c'

/** A listener's `tls.acme`. */
export interface AcmeSettings {
  /** Lower-case; the first is the certificate's subject. */
  readonly domains: readonly string[]
  readonly email: string | undefined
  readonly directoryUrl: string
  readonly directoryCaFile: string | undefined
  readonly storageDir: string
  readonly renewBeforeMs: number
  /** How the CA checks that the domains are ours. */
  readonly challenge: 'http-01' | 'tls-alpn-01'
  /** Where the certificate and its key are kept (under `storageDir`): one file, the chain then the key. */
  readonly certFile: string
  readonly keyFile: string
}

export interface PoolConfig {
  readonly name: string
  /** TLS to its `https://` servers; undefined: system CAs, the URL's host as the name, no client certificate. */
  readonly tls: UpstreamTlsConfig | undefined
  readonly balance: BalanceOptions
  readonly backends: readonly Backend[]
  readonly preserveHost: boolean
  /** The HTTP/1.1 engine of the connections to the servers (with `protocol: http1`). */
  readonly engine: Engine
  /** What the pool speaks to its servers: HTTP/1.1, HTTP/2 over TLS, or HTTP/2 in clear. */
  readonly protocol: UpstreamProtocol
  /** The PROXY protocol header each connection to a server opens with; undefined: none. */
  readonly sendProxyProtocol: 'v1' | 'v2' | undefined
  /** Ramp-up of a server that joins on a reload; 0: none. */
  readonly slowStartMs: number
  readonly sticky: StickySettings | undefined
  /** Active health checks; undefined when the pool has none. */
  readonly healthCheck: HealthCheckSettings | undefined
  /** Passive health checking; undefined when off. */
  readonly outlier: OutlierSettings | undefined
  /** Ejection after a refused or timed-out connect (passive health on by default); undefined when off. */
  readonly connectEjection: ConnectEjectionSettings | undefined
  /** Percentage of primary servers up below which the pool ignores health (0: never). */
  readonly panicThreshold: number
  readonly retries: RetrySettings
  readonly timeouts: { readonly connectMs: number; readonly responseHeadersMs: number; readonly idleMs: number }
  readonly connections: {
    readonly maxPerServer: number
    /** How long an idle connection is kept; 0: every request has a connection of its own. */
    readonly keepAliveMs: number
    /** Requests a connection carries before it is closed; 0: no limit. */
    readonly maxRequestsPerConnection: number
    /** HTTP/2: most requests at once on one connection. */
    readonly maxConcurrentStreams: number
    /** Share (0 to 1] of the pool's capacity one client address may hold at once; 1: no limit. */
    readonly maxClientShare: number
    /** Requests that may wait for a connection to one server, for servers that set none; -1: no limit. */
    readonly maxPending: number
  }
  /** Each server's connection cap and pending cap (-1: none), by server id. */
  readonly serverLimits: Readonly<Record<string, ServerLimits>>
  readonly queue: QueueSettings
}

export interface ServerLimits {
  /** Concurrent connections to the server, each with one request at a time. */
  readonly maxConnections: number
  /** Requests waiting for one of its connections; -1: no limit. */
  readonly maxPending: number
}

export interface QueueSettings {
  /** Requests the pool serves at once; 0: no limit. */
  readonly maxInFlight: number
  /** Requests that may wait; 0: no queue. */
  readonly size: number
  readonly timeoutMs: number
}

export interface RuntimeConfig {
  /** `token`: the bearer token every request but `/healthz` needs (read from `tokenFile` when given). */
  readonly admin:
    | (ListenAddress & {
        readonly listen: string
        readonly token: string | undefined
        /** Absolute path of the runtime-overrides file; undefined: kept in memory only. */
        readonly stateFile: string | undefined
      })
    | undefined
  /** Worker processes; `auto` is resolved to the number of CPU cores. */
  readonly workers: number
  readonly logging: { readonly level: LogLevel; readonly accessLog: AccessLogSettings }
  /** Undefined: tracing is off (`tracing.enabled: false`). */
  readonly tracing: TracingSettings | undefined
  readonly shutdown: { readonly gracePeriodMs: number; readonly tunnelCloseWindowMs: number }
  readonly listeners: readonly ListenerConfig[]
  readonly pools: readonly PoolConfig[]
  readonly plugins: readonly PluginConfig[]
}

/** `logging.accessLog`, the short forms expanded (`true`: JSON on stdout; `false`: `enabled: false`). */
export interface AccessLogSettings {
  /** One line per request; false: only the requests that failed on the server side, at `warn`, on stdout. */
  readonly enabled: boolean
  readonly format: AccessFormat
  /** Absolute path of the access log's own file; undefined: the process log (stdout). */
  readonly file: string | undefined
  /** Share of successful requests logged, 0 to 1. */
  readonly sample: number
}

export interface OtlpSettings {
  /** The OTLP/HTTP traces URL. */
  readonly endpoint: string
  readonly headers: Readonly<Record<string, string>>
  readonly timeoutMs: number
  readonly maxQueueSize: number
  readonly maxBatchSize: number
  readonly delayMs: number
}

export interface TracingSettings {
  /** Share of the traces started here that are sampled. */
  readonly sampleRatio: number
  readonly serviceName: string
  /** Undefined: spans are not exported (the trace context is still propagated and logged). */
  readonly otlp: OtlpSettings | undefined
}

export interface NormalizeOptions {
  /** Where relative plugin paths start: the config file's directory. Default: the working directory. */
  readonly baseDir?: string | undefined
}

export function normalize(cfg: ParsedConfig, options: NormalizeOptions = {}): RuntimeConfig {
  const adminToken =
    cfg.admin?.tokenFile !== undefined ? readFileSync(cfg.admin.tokenFile, 'utf8').trim() : cfg.admin?.token
  const runtime: RuntimeConfig = {
    admin: cfg.admin
      ? {
          ...mustListen(cfg.admin.listen),
          listen: cfg.admin.listen,
          token: adminToken,
          stateFile:
            cfg.admin.stateFile === undefined ? undefined : path.resolve(options.baseDir ?? '.', cfg.admin.stateFile),
        }
      : undefined,
    workers: cfg.workers === 'auto' ? availableParallelism() : cfg.workers,
    logging: { level: cfg.logging.level, accessLog: accessLogSettings(cfg.logging.accessLog, options.baseDir) },
    tracing: tracingSettings(cfg.tracing),
    shutdown: {
      gracePeriodMs: durationToMs(cfg.shutdown.gracePeriod),
      tunnelCloseWindowMs: durationToMs(cfg.shutdown.tunnelCloseWindow),
    },
    listeners: cfg.listeners.map((input) => {
      const l = httpShape(input)
      const sniOf = (k: number) =>
        input.protocol === 'tcp' ? input.routes[k]?.match?.sni.map((n) => n.toLowerCase()) : undefined
      return {
        name: l.name,
        listen: l.listen,
        ...mustListen(l.listen),
        protocol: l.protocol,
        engine: l.engine,
        tls: l.tls
          ? {
              certificates:
                l.tls.certificates?.map((c) => ({ certFile: c.cert, keyFile: c.key })) ??
                (l.tls.cert !== undefined && l.tls.key !== undefined
                  ? [{ certFile: l.tls.cert, keyFile: l.tls.key }]
                  : l.tls.acme !== undefined
                    ? [acmeFiles(l.tls.acme)]
                    : []),
              acme: l.tls.acme === undefined ? undefined : acmeSettings(l.tls.acme),
              minVersion: l.tls.minVersion,
              ciphers: l.tls.ciphers,
              clientAuth:
                l.tls.clientAuth === undefined
                  ? undefined
                  : {
                      caFile: l.tls.clientAuth.ca,
                      mode: l.tls.clientAuth.mode,
                      forwardHeader: l.tls.clientAuth.forwardHeader.toLowerCase(),
                    },
            }
          : undefined,
        http2:
          l.http2 === false
            ? undefined
            : l.http2 === true
              ? { maxConcurrentStreams: DEFAULT_H2_MAX_STREAMS, pingIntervalMs: 5000, pingTimeoutMs: 10_000 }
              : {
                  maxConcurrentStreams: l.http2.maxConcurrentStreams,
                  pingIntervalMs: Math.max(1, durationToMs(l.http2.pingInterval)),
                  pingTimeoutMs: Math.max(1, durationToMs(l.http2.pingTimeout)),
                },
        routes: l.routes.map((r, k) => ({
          name: r.name,
          pool: r.pool,
          match: normalizeMatch(r.match),
          rules: rulesOf(r, 'route'),
          maxBodyBytes: r.limits?.maxBodySize === undefined ? undefined : sizeToBytes(r.limits.maxBodySize),
          sni: sniOf(k),
        })),
        rules: rulesOf(l, 'listener'),
        timeouts: {
          requestHeadersMs: durationToMs(l.timeouts.requestHeaders),
          idleMs: durationToMs(l.timeouts.idle),
          totalMs: durationToMs(l.timeouts.total),
          tunnelIdleMs: durationToMs(l.timeouts.tunnelIdle),
          tunnelMaxAgeMs: durationToMs(l.timeouts.tunnelMaxAge),
        },
        tunnelCloseWindowMs: durationToMs(cfg.shutdown.tunnelCloseWindow),
        limits: {
          connectionsPerIp: l.limits.connectionsPerIp,
          connectionRatePerIp:
            l.limits.connectionRatePerIp === undefined ? undefined : parseRate(l.limits.connectionRatePerIp),
          maxConnections: l.limits.maxConnections,
          maxBodyBytes: sizeToBytes(l.limits.maxBodySize),
          maxHeaderBytes: sizeToBytes(l.limits.maxHeaderBytes),
          maxHeaderCount: l.limits.maxHeaderCount,
          maxUrlBytes: sizeToBytes(l.limits.maxUrlLength),
        },
        paths: { ...l.paths },
        slowClients: {
          windowMs: durationToMs(l.slowClients.window),
          minBodyRate: sizeToBytes(l.slowClients.minBodyRate),
          minSendRate: sizeToBytes(l.slowClients.minSendRate),
        },
        maxRequestsPerConnection: l.maxRequestsPerConnection,
        forwarded: { ...l.forwarded },
        requestId: { ...l.requestId, header: l.requestId.header.toLowerCase() },
        explain:
          l.explain === undefined
            ? undefined
            : {
                trusted: [...l.explain.trusted],
                token:
                  l.explain.adminToken && adminToken !== undefined
                    ? tokenDigest(adminToken).toString('hex')
                    : undefined,
              },
        proxyProtocol: input.proxyProtocol,
      }
    }),
    pools: cfg.pools.map((p) => {
      const backends = p.servers.map((s) => toBackend(p.name, s))
      return {
        name: p.name,
        balance: typeof p.balance === 'string' ? defaultOptions(p.balance) : p.balance,
        backends,
        preserveHost: p.preserveHost,
        tls:
          p.tls === undefined
            ? undefined
            : {
                caFile: p.tls.ca,
                certFile: p.tls.cert,
                keyFile: p.tls.key,
                servername: p.tls.servername,
                insecureSkipVerify: p.tls.insecureSkipVerify,
                minVersion: p.tls.minVersion,
              },
        engine: p.engine,
        protocol: p.protocol,
        sendProxyProtocol: p.sendProxyProtocol,
        slowStartMs: durationToMs(p.slowStart),
        sticky: p.sticky === undefined ? undefined : normalizeSticky(p.sticky),
        outlier:
          p.outlierDetection === undefined
            ? undefined
            : {
                consecutiveFailures: p.outlierDetection.consecutiveFailures,
                errorRate:
                  p.outlierDetection.errorRate === undefined
                    ? undefined
                    : {
                        threshold: p.outlierDetection.errorRate.threshold,
                        minRequests: p.outlierDetection.errorRate.minRequests,
                        windowMs: durationToMs(p.outlierDetection.errorRate.window),
                      },
                baseEjectionMs: durationToMs(p.outlierDetection.baseEjectionTime),
                maxEjectionMs: durationToMs(p.outlierDetection.maxEjectionTime),
                maxEjectionPercent: p.outlierDetection.maxEjectionPercent,
              },
        connectEjection:
          p.ejectOnConnectFailure === false
            ? undefined
            : p.ejectOnConnectFailure === true
              ? { baseEjectionMs: 1000, maxEjectionMs: 30_000 }
              : {
                  baseEjectionMs: durationToMs(p.ejectOnConnectFailure.baseEjectionTime),
                  maxEjectionMs: durationToMs(p.ejectOnConnectFailure.maxEjectionTime),
                },
        panicThreshold: p.panicThreshold,
        retries: {
          attempts: p.retries.attempts,
          onConnectFailure: p.retries.on.includes('connect-failure'),
          onReset: p.retries.on.includes('reset'),
          onTimeout: p.retries.on.includes('timeout'),
          statuses: p.retries.on.filter((o) => /^\d+$/.test(o)).map(Number),
          retryNonIdempotent: p.retries.retryNonIdempotent,
          backoffBaseMs: durationToMs(p.retries.backoff.base),
          backoffMaxMs: durationToMs(p.retries.backoff.max),
          budgetPercent: p.retries.budget.percent,
          budgetMinRetries: p.retries.budget.minRetries,
          bufferBytes: p.retries.bufferBytes,
          perTryTimeoutMs: durationToMs(p.retries.perTryTimeout),
          keepAliveRace: p.retries.keepAliveRace,
        },
        healthCheck:
          p.healthCheck === undefined
            ? undefined
            : {
                probe: p.healthCheck,
                schedule: {
                  intervalMs: durationToMs(p.healthCheck.interval),
                  unhealthyIntervalMs: durationToMs(p.healthCheck.unhealthyInterval ?? p.healthCheck.interval),
                  timeoutMs: durationToMs(p.healthCheck.timeout),
                  jitter: p.healthCheck.jitter,
                  rise: p.healthCheck.rise,
                  fall: p.healthCheck.fall,
                  port: p.healthCheck.port,
                },
              },
        timeouts: {
          connectMs: durationToMs(p.timeouts.connect),
          responseHeadersMs: durationToMs(p.timeouts.responseHeaders),
          idleMs: durationToMs(p.timeouts.idle),
        },
        connections: {
          maxPerServer: p.connections.maxPerServer,
          keepAliveMs: durationToMs(p.connections.keepAlive),
          maxRequestsPerConnection: p.connections.maxRequestsPerConnection,
          maxConcurrentStreams: p.connections.maxConcurrentStreams,
          maxClientShare: p.connections.maxClientShare,
          maxPending: p.connections.maxPending ?? -1,
        },
        serverLimits: Object.fromEntries(
          backends.map((b, i) => {
            const s = p.servers[i]
            const own = typeof s === 'string' ? undefined : s
            return [
              b.id,
              {
                maxConnections: own?.maxConnections ?? p.connections.maxPerServer,
                maxPending: own?.maxPending ?? p.connections.maxPending ?? -1,
              },
            ]
          }),
        ),
        queue: {
          maxInFlight: p.queue.maxInFlight,
          size: p.queue.size,
          timeoutMs: durationToMs(p.queue.timeout),
        },
      }
    }),
    plugins: cfg.plugins.map((pl) => ({ module: resolveModule(pl.module, options.baseDir), options: pl.options })),
  }
  return deepFreeze(runtime)
}

/** A relative path (`./x.js`, `../x.js`) against `baseDir`; a package name or absolute path as is. */
function resolveModule(module: string, baseDir: string | undefined): string {
  if (!module.startsWith('./') && !module.startsWith('../')) return module
  return path.resolve(baseDir ?? process.cwd(), module)
}

type ListenerInput = ParsedConfig['listeners'][number]
type HttpListenerInput = Extract<ListenerInput, { protocol: 'http' | 'https' }>

/**
 * A listener in the shape of an HTTP one. A `tcp` listener has none of the HTTP settings: they take
 * their defaults here (so ListenerConfig keeps one shape), and nothing on the TCP path reads them.
 */
function httpShape(l: ListenerInput): Omit<HttpListenerInput, 'protocol'> & { protocol: ListenerInput['protocol'] } {
  if (l.protocol !== 'tcp') return l
  const shaped = httpListenerSchema.parse({
    name: l.name,
    listen: l.listen,
    routes: l.routes.map((r) => ({ pool: r.pool })),
  })
  return {
    ...shaped,
    protocol: 'tcp',
    timeouts: { ...shaped.timeouts, idle: l.timeouts.idle },
    limits: { ...shaped.limits, ...l.limits },
    access: l.access,
    proxyProtocol: l.proxyProtocol,
  }
}

function normalizeSticky(s: NonNullable<ParsedConfig['pools'][number]['sticky']>): StickySettings {
  const colon = s.mode.indexOf(':')
  const kind = colon < 0 ? s.mode : s.mode.slice(0, colon)
  const arg = colon < 0 ? '' : s.mode.slice(colon + 1)
  switch (kind) {
    case 'cookie':
      return {
        mode: 'cookie',
        cookie: {
          name: s.cookie.name,
          ttlS: Math.round(durationToMs(s.cookie.ttl) / 1000),
          path: s.cookie.path,
          domain: s.cookie.domain,
          secure: s.cookie.secure,
          httpOnly: s.cookie.httpOnly,
          sameSite: s.cookie.sameSite,
        },
        secretHex: s.secret === undefined ? RUN_SECRET_HEX : Buffer.from(s.secret, 'utf8').toString('hex'),
      }
    case 'client-ip':
      return { mode: 'client-ip' }
    case 'header':
      return { mode: 'header', header: arg.toLowerCase() }
    default:
      return {
        mode: 'app-cookie',
        cookie: arg,
        maxEntries: s.sessions.maxEntries,
        ttlMs: durationToMs(s.sessions.ttl),
      }
  }
}

function mustListen(text: string): ListenAddress {
  const addr = parseListen(text)
  if (!addr) throw new Error(`unvalidated listen address ${text}`)
  return addr
}

function toBackend(
  pool: string,
  s:
    | ParsedConfig['pools'][number]['servers'][number]
    | { url: string; name?: string | undefined; weight: number; backup: boolean; drain: boolean },
): Backend {
  const url = typeof s === 'string' ? s : s.url
  const parsed = parseServerUrl(url)
  if (typeof parsed === 'string') throw new Error(`unvalidated server url ${url}`)
  const address = formatAddress(parsed.host, parsed.port)
  return {
    id: typeof s === 'string' || s.name === undefined ? address : s.name,
    pool,
    host: parsed.host,
    port: parsed.port,
    origin: `${parsed.tls ? 'https' : 'http'}://${address}`,
    tls: parsed.tls,
    weight: typeof s === 'string' ? 1 : s.weight,
    backup: typeof s === 'string' ? false : s.backup,
    draining: typeof s === 'string' ? false : s.drain,
    disabled: false,
  }
}

/**
 * A server added at runtime (admin API) to a pool of a validated config, as `toBackend` builds those
 * of the file; a problem text when its URL does not suit the pool (its scheme must agree with the
 * pool's `protocol`, and `tcp://` goes only in a pool that `tcp` listeners use: `tcpPool`).
 */
export function serverBackend(
  pool: PoolConfig,
  tcpPool: boolean,
  server: {
    readonly url: string
    readonly name?: string | undefined
    readonly weight: number
    readonly backup: boolean
  },
): Backend | string {
  const parsed = parseServerUrl(server.url)
  if (typeof parsed === 'string') return parsed
  const scheme = server.url.slice(0, server.url.indexOf(':')).toLowerCase()
  if (scheme === 'tcp' && !tcpPool)
    return `expected an http:// or https:// URL in pool "${pool.name}" (tcp:// is for pools that only tcp listeners use), found "${server.url}"`
  if (pool.protocol === 'h2' && scheme !== 'https')
    return `expected an https:// URL in pool "${pool.name}" (protocol h2), found "${server.url}"`
  if (pool.protocol === 'h2c' && scheme !== 'http')
    return `expected an http:// URL in pool "${pool.name}" (protocol h2c), found "${server.url}"`
  return toBackend(pool.name, { ...server, drain: false })
}

type MatchInput = NonNullable<HttpListenerInput['routes'][number]['match']>

function normalizeMatch(m: MatchInput | undefined): RouteMatch {
  const hosts = m?.host === undefined ? [] : Array.isArray(m.host) ? m.host : [m.host]
  const lower = hosts.map((h) => h.toLowerCase())
  const methods = m?.method === undefined ? [] : Array.isArray(m.method) ? m.method : [m.method]
  return {
    hosts: lower.filter((h) => !h.startsWith('*')),
    hostSuffixes: lower.filter((h) => h.startsWith('*.')).map((h) => h.slice(1)),
    anyHost: lower.length === 0 || lower.includes('*'),
    pathPrefix: m?.pathPrefix,
    path: m?.path,
    methods: methods.map((x) => x.toUpperCase()),
    headers: Object.entries(m?.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v === '*' ? undefined : v] as const),
  }
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}

type AcmeInput = NonNullable<NonNullable<Extract<ParsedConfig['listeners'][number], { tls?: unknown }>['tls']>['acme']>

/**
 * Where an ACME certificate is kept: `<storage>/certs/<first domain>/certificate.pem`, the chain and
 * then its key in one file, so that one rename replaces both (a certificate never meets another's key).
 */
function acmeFiles(a: AcmeInput): { certFile: string; keyFile: string } {
  const file = path.join(a.storage, 'certs', (a.domains[0] as string).toLowerCase(), 'certificate.pem')
  return { certFile: file, keyFile: file }
}

function acmeSettings(a: AcmeInput): AcmeSettings {
  const files = acmeFiles(a)
  return {
    domains: a.domains.map((d) => d.toLowerCase()),
    email: a.email,
    directoryUrl: a.directory,
    directoryCaFile: a.directoryCa,
    storageDir: a.storage,
    renewBeforeMs: durationToMs(a.renewBefore),
    challenge: a.challenge,
    certFile: files.certFile,
    keyFile: files.keyFile,
  }
}

function accessLogSettings(
  input: ParsedConfig['logging']['accessLog'],
  baseDir: string | undefined,
): AccessLogSettings {
  if (typeof input === 'boolean') return { enabled: input, format: 'json', file: undefined, sample: 1 }
  return {
    enabled: true,
    format: input.format,
    file: input.file === undefined ? undefined : path.resolve(baseDir ?? '.', input.file),
    sample: input.sample,
  }
}

function tracingSettings(input: ParsedConfig['tracing']): TracingSettings | undefined {
  if (!input.enabled) return undefined
  const o = input.otlp
  return {
    sampleRatio: input.sampleRatio,
    serviceName: input.serviceName,
    otlp:
      o === undefined
        ? undefined
        : {
            endpoint: o.endpoint,
            headers: { ...o.headers },
            timeoutMs: durationToMs(o.timeout),
            maxQueueSize: o.maxQueueSize,
            maxBatchSize: o.maxBatchSize,
            delayMs: durationToMs(o.delay),
          },
  }
}
