/**
 * The certificates of an `https` listener, read when a snapshot is built: the first one is the
 * server's default (unknown names, clients that send no SNI); each one serves the names its
 * certificate holds, taken from its subjectAltName (DNS names; `*.example.com` covers one label, as
 * RFC 6125 §6.4.3 has it), or from its common name when it has none. A handshake picks by SNI:
 * an exact name first, then a wildcard, then the default.
 */
import { createHash, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { createSecureContext, type SecureContext, type SecureContextOptions } from 'node:tls'
import type { ListenerConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'

export interface ListenerTls {
  /** The default certificate and the options every handshake shares (minVersion, ciphers). */
  readonly options: SecureContextOptions
  /** Lower-case exact names to the context that serves them. */
  readonly exact: ReadonlyMap<string, SecureContext>
  /** `.example.com` (a wildcard's suffix) to the context that serves its names. */
  readonly wildcard: ReadonlyMap<string, SecureContext>
  /** Changes whenever a file's contents or a setting change: a reload swaps the contexts then. */
  readonly fingerprint: string
}

/** The DNS names a certificate serves: its subjectAltName's, else its common name. */
export function certificateNames(pem: Buffer): string[] {
  const cert = new X509Certificate(pem)
  const san = cert.subjectAltName
  const names: string[] = []
  if (san !== undefined)
    for (const part of san.split(',')) {
      const entry = part.trim()
      if (entry.startsWith('DNS:')) names.push(entry.slice(4).toLowerCase())
    }
  if (names.length > 0) return names
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(cert.subject)
  return cn?.[1] === undefined ? [] : [cn[1].toLowerCase()]
}

/** Reads an `https` listener's certificates. Throws SWY_TLS_CONFIG naming the file. */
export function loadListenerTls(config: ListenerConfig): ListenerTls {
  const tls = config.tls
  const first = tls?.certificates[0]
  if (tls === undefined || first === undefined)
    throw new SwitchyardError('SWY_TLS_CONFIG', `listener ${config.name}: protocol https needs tls.cert and tls.key`)
  const read = (file: string, what: string): Buffer => {
    try {
      return readFileSync(file)
    } catch (err) {
      throw new SwitchyardError(
        'SWY_TLS_CONFIG',
        `listener ${config.name}: cannot read the TLS ${what} ${file}: ${(err as Error).message}`,
      )
    }
  }
  const shared: SecureContextOptions = { minVersion: tls.minVersion }
  if (tls.ciphers !== undefined) shared.ciphers = tls.ciphers
  const hash = createHash('sha256').update(`${tls.minVersion}\0${tls.ciphers ?? ''}\0`)
  const auth = tls.clientAuth
  if (auth !== undefined) {
    shared.ca = read(auth.caFile, 'client CA file')
    hash.update(shared.ca).update(`\0${auth.mode}\0`)
  }
  const exact = new Map<string, SecureContext>()
  const wildcard = new Map<string, SecureContext>()
  let options: SecureContextOptions | undefined
  for (const pair of tls.certificates) {
    // An ACME certificate not issued yet: no certificate, handshakes fail until it is.
    if (tls.acme !== undefined && !(existsSync(pair.certFile) && existsSync(pair.keyFile))) {
      hash.update('acme-pending\0')
      continue
    }
    const cert = read(pair.certFile, 'certificate')
    const key = read(pair.keyFile, 'key')
    hash.update(cert).update('\0').update(key).update('\0')
    const own = { ...shared, cert, key }
    let context: SecureContext
    let names: string[]
    try {
      context = createSecureContext(own)
      names = certificateNames(cert)
    } catch (err) {
      throw new SwitchyardError(
        'SWY_TLS_CONFIG',
        `listener ${config.name}: the certificate ${pair.certFile} or key ${pair.keyFile} cannot be used: ${(err as Error).message}`,
      )
    }
    options ??= own
    // The first certificate that names a host serves it.
    for (const name of names)
      if (name.startsWith('*.')) {
        const suffix = name.slice(1)
        if (!wildcard.has(suffix)) wildcard.set(suffix, context)
      } else if (!exact.has(name)) exact.set(name, context)
  }
  return {
    // Server options beside the context's: ask for a client certificate, and refuse the handshake
    // without a valid one (`required`).
    options: {
      ...(options ?? shared),
      ...(auth === undefined ? {} : { requestCert: true, rejectUnauthorized: auth.mode === 'required' }),
    } as SecureContextOptions,
    exact,
    wildcard,
    fingerprint: hash.digest('hex'),
  }
}

/** The context for a client's SNI name; undefined: the default certificate. */
export function contextFor(tls: ListenerTls, servername: string): SecureContext | undefined {
  const name = servername.toLowerCase()
  const exact = tls.exact.get(name)
  if (exact !== undefined) return exact
  const dot = name.indexOf('.')
  return dot > 0 ? tls.wildcard.get(name.slice(dot)) : undefined
}
