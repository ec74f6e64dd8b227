/**
 * The PROXY protocol out (`sendProxyProtocol: v1 | v2` on a pool): the header each connection to a
 * server opens with, before any other byte (before the TLS handshake, for an `https://` server), so that
 * the server learns which client the connection is for.
 *
 * - The source is the client connection's peer: the address a PROXY header in carried, if one did
 *   (listeners/proxy-protocol.ts), else the socket's own. The destination is the address the client
 *   connected to.
 * - Two addresses of different families are both sent as IPv6 (an IPv4 one mapped).
 * - A connection made for no client (a health check) sends v1 `UNKNOWN` or v2 `LOCAL`, which a server
 *   answers as a direct connection.
 *
 * Connections that carry one client's header carry only that client's requests: see
 * upstream/private-connections.ts.
 */
import { connect, isIP, isIPv4, type NetConnectOpts, type Socket } from 'node:net'
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls'
import { type ProxySource, peerSource } from '../listeners/proxy-protocol.js'

export type ProxyVersion = 'v1' | 'v2'

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/**
 * A TCP connection that opens with `prefix`, then TLS over it when `tls` is given (the prefix before
 * the handshake). The TCP socket's errors end the TLS socket too. `onTcpUp` hears when TCP connected.
 */
export function connectWithPrefix(
  tcp: NetConnectOpts,
  prefix: Buffer,
  tls: ConnectionOptions | undefined,
  onTcpUp?: () => void,
): Socket | TLSSocket {
  const raw = connect(tcp)
  raw.write(prefix)
  if (onTcpUp !== undefined) raw.once('connect', onTcpUp)
  if (tls === undefined) return raw
  const socket = tlsConnect({ ...tls, socket: raw })
  raw.once('error', (err) => socket.destroy(err))
  return socket
}

/** The header for a connection with no client behind it: v1 `UNKNOWN`, v2 `LOCAL`. */
export function localProxyHeader(version: ProxyVersion): Buffer {
  if (version === 'v1') return Buffer.from('PROXY UNKNOWN\r\n', 'latin1')
  return Buffer.concat([V2_SIGNATURE, Buffer.from([0x20, 0x00, 0x00, 0x00])])
}

/** The header for connections made on behalf of `client`; LOCAL/UNKNOWN when its addresses are unknown. */
export function clientProxyHeader(version: ProxyVersion, client: Socket): Buffer {
  const source = peerSource(client)
  const address = client.localAddress
  const port = client.localPort
  if (source === undefined || address === undefined || port === undefined) return localProxyHeader(version)
  return proxyHeader(version, source, { address, port })
}

/** The header for a connection from `source` to `destination`. */
export function proxyHeader(version: ProxyVersion, source: ProxySource, destination: ProxySource): Buffer {
  let src = unmapped(source.address)
  let dst = unmapped(destination.address)
  if (isIP(src) === 0 || isIP(dst) === 0) return localProxyHeader(version)
  const v4 = isIPv4(src) && isIPv4(dst)
  if (!v4) {
    src = mapped(src)
    dst = mapped(dst)
  }
  if (version === 'v1')
    return Buffer.from(`PROXY ${v4 ? 'TCP4' : 'TCP6'} ${src} ${dst} ${source.port} ${destination.port}\r\n`, 'latin1')
  const block = v4
    ? Buffer.concat([ipv4Bytes(src), ipv4Bytes(dst), ports(source.port, destination.port)])
    : Buffer.concat([ipv6Bytes(src), ipv6Bytes(dst), ports(source.port, destination.port)])
  const head = Buffer.from([0x21, v4 ? 0x11 : 0x21, 0, 0])
  head.writeUInt16BE(block.length, 2)
  return Buffer.concat([V2_SIGNATURE, head, block])
}

/** `::ffff:1.2.3.4` as `1.2.3.4`. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address
}

/** An IPv4 address as IPv4-mapped IPv6; an IPv6 one as it is. */
function mapped(address: string): string {
  return isIPv4(address) ? `::ffff:${address}` : address
}

function ports(source: number, destination: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt16BE(source, 0)
  b.writeUInt16BE(destination, 2)
  return b
}

function ipv4Bytes(address: string): Buffer {
  return Buffer.from(address.split('.').map(Number))
}

/** 16 bytes of an IPv6 address (`::`, and a dotted IPv4 tail, expanded). */
function ipv6Bytes(address: string): Buffer {
  let text = address
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text)
  if (dotted) {
    const [a, b, c, d] = (dotted[1] as string).split('.').map(Number) as [number, number, number, number]
    text = `${text.slice(0, dotted.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const groups = tail === undefined ? left : [...left, ...Array(8 - left.length - right.length).fill('0'), ...right]
  const out = Buffer.alloc(16)
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2)
  return out
}
