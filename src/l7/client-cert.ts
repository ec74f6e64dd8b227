/**
 * The client certificate of a mutual-TLS connection, as the header that carries it to the servers:
 * `Hash=<SHA-256 of the DER, lower-case hex>;Subject="<subject, RFC 4514 order-free, comma-separated>"`,
 * the shape of Envoy's `x-forwarded-client-cert`. Only a certificate that verified against the
 * listener's `clientAuth.ca` is carried. Computed once per connection.
 */
import type { Socket } from 'node:net'
import { TLSSocket } from 'node:tls'

const cache = new WeakMap<Socket, string | null>()

/** The header value for `socket`'s verified client certificate; undefined without one. */
export function clientCertificateHeader(socket: Socket | undefined): string | undefined {
  if (!(socket instanceof TLSSocket)) return undefined
  const known = cache.get(socket)
  if (known !== undefined) return known ?? undefined
  let value: string | null = null
  const cert = socket.authorized ? socket.getPeerX509Certificate() : undefined
  if (cert !== undefined) {
    const hash = cert.fingerprint256.replaceAll(':', '').toLowerCase()
    const subject = cert.subject.split('\n').join(',').replaceAll('\\', '\\\\').replaceAll('"', '\\"')
    value = `Hash=${hash};Subject="${subject}"`
  }
  cache.set(socket, value)
  return value ?? undefined
}
