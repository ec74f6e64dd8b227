/**
 * TLS to servers: a pool's `tls` settings, read once per snapshot (the PEM files, so that a reload with
 * an unreadable file is refused and the running config kept), and the options every connection to
 * one of its `https://` servers is opened with, by either engine, the upgrade path and the health
 * checks alike.
 *
 * - Verification is on unless `insecureSkipVerify`: against the system CAs, or `ca` instead.
 * - SNI, and the name the certificate must hold: `servername`, else the server URL's host. An IP
 *   address is not sent in SNI (RFC 6066 §3), and the certificate is then checked against the address.
 * - `cert` and `key`: a client certificate for servers that ask for one (mutual TLS).
 * - ALPN offers `http/1.1` (the only protocol these connections speak).
 * - Sessions are resumed: each server's connections reuse the last TLS session it gave
 *   (`SessionCache`), which saves a full handshake per new connection.
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { isIP } from 'node:net'
import type { ConnectionOptions } from 'node:tls'
import type { UpstreamTlsConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'

/** A pool's TLS material, read. */
export interface UpstreamTls {
  readonly ca: Buffer | undefined
  readonly cert: Buffer | undefined
  readonly key: Buffer | undefined
  readonly servername: string | undefined
  readonly rejectUnauthorized: boolean
  readonly minVersion: UpstreamTlsConfig['minVersion']
  /** Names the material (file contents and settings): connections share a pool only with the same one. */
  readonly fingerprint: string
}

/** Verification against the system CAs, the URL's host as the name: an `https://` server in a pool with no `tls`. */
export const DEFAULT_UPSTREAM_TLS: UpstreamTls = {
  ca: undefined,
  cert: undefined,
  key: undefined,
  servername: undefined,
  rejectUnauthorized: true,
  minVersion: 'TLSv1.2',
  fingerprint: 'system',
}

/** Reads a pool's TLS files. Throws SWY_TLS_CONFIG naming the pool and the file. */
export function loadUpstreamTls(pool: string, cfg: UpstreamTlsConfig | undefined): UpstreamTls {
  if (cfg === undefined) return DEFAULT_UPSTREAM_TLS
  const read = (file: string | undefined, what: string): Buffer | undefined => {
    if (file === undefined) return undefined
    try {
      return readFileSync(file)
    } catch (err) {
      throw new SwitchyardError(
        'SWY_TLS_CONFIG',
        `pool ${pool}: cannot read the TLS ${what} ${file}: ${(err as Error).message}`,
      )
    }
  }
  const ca = read(cfg.caFile, 'CA file')
  const cert = read(cfg.certFile, 'client certificate')
  const key = read(cfg.keyFile, 'client key')
  const hash = createHash('sha256')
  for (const part of [ca, cert, key]) hash.update(part ?? '-').update('\0')
  hash.update(`${cfg.servername ?? ''}\0${cfg.insecureSkipVerify}\0${cfg.minVersion}`)
  return {
    ca,
    cert,
    key,
    servername: cfg.servername,
    rejectUnauthorized: !cfg.insecureSkipVerify,
    minVersion: cfg.minVersion,
    fingerprint: hash.digest('hex').slice(0, 16),
  }
}

/** The last TLS session of one server's connections, offered again on the next connection. */
export class SessionCache {
  session: Buffer | undefined
}

/** Options for `tls.connect` to `host:port` (with `session`, when one is cached). */
export function tlsConnectOptions(
  tls: UpstreamTls,
  host: string,
  port: number,
  sessions?: SessionCache,
): ConnectionOptions {
  const servername = tls.servername ?? (isIP(host) === 0 ? host : undefined)
  const options: ConnectionOptions = {
    host,
    port,
    rejectUnauthorized: tls.rejectUnauthorized,
    minVersion: tls.minVersion,
    ALPNProtocols: ['http/1.1'],
  }
  if (servername !== undefined) options.servername = servername
  if (tls.ca !== undefined) options.ca = tls.ca
  if (tls.cert !== undefined) options.cert = tls.cert
  if (tls.key !== undefined) options.key = tls.key
  if (sessions?.session !== undefined) options.session = sessions.session
  return options
}

/** The TLS failure of a connection that reached its server: SWY_UPSTREAM_TLS with the reason. */
export function tlsError(err: Error | undefined): SwitchyardError {
  const code = (err as { code?: unknown } | undefined)?.code
  const reason = typeof code === 'string' && code !== '' ? `${code}: ${err?.message}` : (err?.message ?? 'closed')
  return new SwitchyardError(
    'SWY_UPSTREAM_TLS',
    `the TLS handshake with the upstream server failed: ${reason}`,
    err === undefined ? undefined : { cause: err },
  )
}
