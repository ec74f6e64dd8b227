/**
 * Upstream connection pools, one per server, engine and settings, shared by every snapshot that
 * references them. A reload that keeps a server keeps its warm keep-alive connections; a pool nobody
 * references any more is closed gracefully: queued and in-flight requests finish first.
 *
 * The engine: `native` (http1/agent.ts) when the pool asks for it and the llhttp binding passed its
 * self-test (http1/parser.ts `nativeParser()`), else `node` (undici, http1/upstream-undici.ts). A pool
 * that asked for `native` on a Node where it is not available is logged once per process, with the
 * reason, and runs on undici.
 */
import type { Engine, PoolConfig, UpstreamProtocol } from '../config/index.js'
import { formatAddress } from '../core/address.js'
import type { Backend } from '../core/backend.js'
import type { Logger } from '../core/logger.js'
import { Http1Agent } from '../http1/agent.js'
import { nativeParser } from '../http1/parser.js'
import { UndiciConnections } from '../http1/upstream-undici.js'
import { Http2Connections } from '../http2/upstream.js'
import type { ServerConnections } from '../l7/upstream.js'
import { PrivateConnections } from './private-connections.js'
import type { ProxyVersion } from './send-proxy.js'
import { DEFAULT_UPSTREAM_TLS, type UpstreamTls } from './tls.js'

/** Requests in flight to one server (its connection pool), counted across every snapshot that uses it. */
export interface ServerLoad {
  inFlight: number
}

/** What the connections to a server are made with: the pool's `connections`, and its engine. */
export type ConnectionSettings = Omit<PoolConfig['connections'], 'maxClientShare' | 'maxPending'> & {
  readonly connectMs: number
  readonly engine: Engine
  /** `h2`/`h2c`: HTTP/2 sessions (http2/upstream.ts) instead of the HTTP/1.1 engine. Default `http1`. */
  readonly protocol?: UpstreamProtocol | undefined
  /** The PROXY protocol header each connection opens with: connections become private to each client. */
  readonly sendProxyProtocol?: ProxyVersion | undefined
  /** TLS to the pool's `https://` servers (read from its `tls`); plain servers ignore it. */
  readonly tls?: UpstreamTls | undefined
}

interface Entry {
  readonly connections: ServerConnections
  readonly load: ServerLoad
  refs: number
}

/** The native engine was asked for but is not available: said once per process. */
let fallbackLogged = false

/** The engine a pool that asks for `requested` gets here, and why it differs, if it does. */
export function engineFor(requested: Engine): { readonly engine: Engine; readonly fallback?: string } {
  if (requested !== 'native') return { engine: requested }
  const check = nativeParser()
  return check.ok ? { engine: 'native' } : { engine: 'node', fallback: check.reason }
}

export class ConnectionRegistry {
  readonly #entries = new Map<string, Entry>()
  readonly #logger: Logger | undefined

  /** `logger`: where the one warning about a missing native engine goes. */
  constructor(logger?: Logger) {
    this.#logger = logger
  }

  /** Takes a reference on the connections to `backend` with `settings`; pair with `release`. */
  acquire(
    backend: Backend,
    settings: ConnectionSettings,
  ): { key: string; connections: ServerConnections; load: ServerLoad } {
    const protocol = settings.protocol ?? 'http1'
    const { engine, fallback } = protocol === 'http1' ? engineFor(settings.engine) : { engine: settings.engine }
    if (fallback !== undefined && !fallbackLogged) {
      fallbackLogged = true
      this.#logger?.warn(
        { engine: 'native', reason: fallback },
        `the native HTTP/1.1 engine is not available on this Node (${fallback}): upstream connections use undici`,
      )
    }
    const tls = backend.tls ? (settings.tls ?? DEFAULT_UPSTREAM_TLS).fingerprint : ''
    const via = protocol === 'http1' ? engine : `${protocol}/${settings.maxConcurrentStreams}`
    const proxy = settings.sendProxyProtocol ?? ''
    const key = `${via}|${proxy}|${backend.origin}|${settings.connectMs}|${settings.maxPerServer}|${settings.keepAliveMs}|${settings.maxRequestsPerConnection}|${tls}`
    let entry = this.#entries.get(key)
    if (!entry) {
      const open = (prefix?: Buffer) =>
        protocol === 'http1' ? connectionsTo(backend, settings, engine, prefix) : http2To(backend, settings, prefix)
      const version = settings.sendProxyProtocol
      entry = {
        connections: version === undefined ? open() : new PrivateConnections(version, open),
        load: { inFlight: 0 },
        refs: 0,
      }
      this.#entries.set(key, entry)
    }
    entry.refs++
    return { key, connections: entry.connections, load: entry.load }
  }

  /** Drops a reference; the last one closes the connections once their requests are done. */
  release(key: string): void {
    const entry = this.#entries.get(key)
    if (!entry) return
    if (--entry.refs > 0) return
    this.#entries.delete(key)
    entry.connections.close().catch(() => {})
  }

  /** Closes everything; in-flight requests are aborted after `graceMs`. */
  async closeAll(graceMs: number): Promise<void> {
    const all = [...this.#entries.values()].map((e) => e.connections)
    this.#entries.clear()
    await Promise.all(
      all.map(async (c) => {
        const timer = setTimeout(() => c.destroy().catch(() => {}), graceMs)
        try {
          await c.close()
        } catch {
          // destroyed after the grace period: nothing more to do
        } finally {
          clearTimeout(timer)
        }
      }),
    )
  }

  get size(): number {
    return this.#entries.size
  }
}

function connectionsTo(
  backend: Backend,
  settings: ConnectionSettings,
  engine: Engine,
  prefix: Buffer | undefined,
): ServerConnections {
  const tls = backend.tls ? (settings.tls ?? DEFAULT_UPSTREAM_TLS) : undefined
  switch (engine) {
    case 'native':
      return new Http1Agent({
        host: backend.host,
        port: backend.port,
        hostHeader: formatAddress(backend.host, backend.port),
        maxConnections: settings.maxPerServer,
        keepAliveMs: settings.keepAliveMs,
        connectMs: settings.connectMs,
        maxRequestsPerConnection: settings.maxRequestsPerConnection,
        tls,
        prefix,
      })
    case 'node':
      return new UndiciConnections({
        origin: backend.origin,
        maxConnections: settings.maxPerServer,
        keepAliveMs: settings.keepAliveMs,
        connectMs: settings.connectMs,
        maxRequestsPerConnection: settings.maxRequestsPerConnection,
        tls,
        prefix,
      })
    default: {
      const unknown: never = engine
      throw new Error(`unknown engine ${String(unknown)}`)
    }
  }
}

function http2To(backend: Backend, settings: ConnectionSettings, prefix: Buffer | undefined): ServerConnections {
  return new Http2Connections({
    host: backend.host,
    port: backend.port,
    authority: formatAddress(backend.host, backend.port),
    tls: backend.tls ? (settings.tls ?? DEFAULT_UPSTREAM_TLS) : undefined,
    maxConnections: settings.maxPerServer,
    maxConcurrentStreams: settings.maxConcurrentStreams,
    keepAliveMs: settings.keepAliveMs,
    connectMs: settings.connectMs,
    maxRequestsPerConnection: settings.maxRequestsPerConnection,
    prefix,
  })
}

/** Tests only: the fallback warning may be logged again. */
export function resetFallbackWarning(): void {
  fallbackLogged = false
}
