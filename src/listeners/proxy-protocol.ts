/**
 * The PROXY protocol (HAProxy's, versions 1 and 2) on accepted connections: a load balancer or
 * network proxy in front of Switchyard says, in a header before any other byte, which client the
 * connection is for. With `proxyProtocol: true` on a listener, every connection must start with one:
 * the address it carries becomes the connection's peer for everything that reads it (hashing, limits,
 * access rules, forwarding headers, logs), through `peerAddress()`. A connection whose header is
 * missing, malformed or not complete within the listener's head timeout is closed, and nothing of it
 * reaches a server. A v1 `UNKNOWN` or a v2 `LOCAL` header (a health check of the proxy in front) keeps
 * the real peer.
 *
 * The carried address is kept by the connection's own address and port, which a TLS socket made over
 * the connection reports too, so an `https` listener's TLS sockets find it.
 */
import { isIP, type Socket } from 'node:net'

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])
/** A v1 line is at most 107 bytes, CRLF included. */
const V1_MAX = 107
/** A v2 header's longest address block Switchyard accepts (TLVs included). */
const V2_MAX_BLOCK = 4096

export interface ProxySource {
  readonly address: string
  readonly port: number
}

export type ProxyHeader =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'invalid'; readonly reason: string }
  /** `source` undefined: UNKNOWN or LOCAL, the real peer stands. */
  | { readonly kind: 'header'; readonly length: number; readonly source: ProxySource | undefined }

const INCOMPLETE: ProxyHeader = { kind: 'incomplete' }
const invalid = (reason: string): ProxyHeader => ({ kind: 'invalid', reason })

/** Parses a PROXY header at the start of `buf`. */
export function readProxyHeader(buf: Buffer): ProxyHeader {
  if (buf.length === 0) return INCOMPLETE
  if (buf[0] === 0x0d) return readV2(buf)
  if (buf[0] === 0x50) return readV1(buf)
  return invalid('no PROXY header')
}

function readV1(buf: Buffer): ProxyHeader {
  const prefix = 'PROXY '
  for (let i = 0; i < Math.min(buf.length, prefix.length); i++)
    if (buf[i] !== prefix.charCodeAt(i)) return invalid('no PROXY header')
  const end = buf.indexOf('\r\n')
  if (end < 0) return buf.length >= V1_MAX ? invalid('a v1 line longer than 107 bytes') : INCOMPLETE
  if (end + 2 > V1_MAX) return invalid('a v1 line longer than 107 bytes')
  const parts = buf.toString('latin1', prefix.length, end).split(' ')
  const length = end + 2
  if (parts[0] === 'UNKNOWN') return { kind: 'header', length, source: undefined }
  if (parts.length !== 5 || (parts[0] !== 'TCP4' && parts[0] !== 'TCP6')) return invalid('a malformed v1 line')
  const [proto, src, dst, sport, dport] = parts as [string, string, string, string, string]
  const family = proto === 'TCP4' ? 4 : 6
  if (isIP(src) !== family || isIP(dst) !== family) return invalid('a v1 address of the wrong family')
  const port = portOf(sport)
  if (port === undefined || portOf(dport) === undefined) return invalid('a malformed v1 port')
  return { kind: 'header', length, source: { address: src, port } }
}

function portOf(text: string): number | undefined {
  if (!/^(?:0|[1-9]\d{0,4})$/.test(text)) return undefined
  const n = Number(text)
  return n <= 65535 ? n : undefined
}

function readV2(buf: Buffer): ProxyHeader {
  const have = Math.min(buf.length, V2_SIGNATURE.length)
  if (!buf.subarray(0, have).equals(V2_SIGNATURE.subarray(0, have))) return invalid('no PROXY header')
  if (buf.length < 16) return INCOMPLETE
  const verCmd = buf[12] as number
  if (verCmd >> 4 !== 2) return invalid('a v2 header of another version')
  const command = verCmd & 0x0f
  const family = buf[13] as number
  const blockLength = buf.readUInt16BE(14)
  if (blockLength > V2_MAX_BLOCK) return invalid('a v2 address block too long')
  const length = 16 + blockLength
  if (buf.length < length) return INCOMPLETE
  if (command === 0) return { kind: 'header', length, source: undefined } // LOCAL
  if (command !== 1) return invalid('a v2 command other than LOCAL or PROXY')
  const block = buf.subarray(16, length)
  switch (family) {
    case 0x11: // TCP over IPv4
      if (block.length < 12) return invalid('a v2 IPv4 block too short')
      return {
        kind: 'header',
        length,
        source: { address: [...block.subarray(0, 4)].join('.'), port: block.readUInt16BE(8) },
      }
    case 0x21: {
      // TCP over IPv6
      if (block.length < 36) return invalid('a v2 IPv6 block too short')
      const groups: string[] = []
      for (let i = 0; i < 16; i += 2) groups.push(block.readUInt16BE(i).toString(16))
      return { kind: 'header', length, source: { address: compactIpv6(groups), port: block.readUInt16BE(32) } }
    }
    case 0x00: // UNSPEC
      return { kind: 'header', length, source: undefined }
    default:
      return invalid('a v2 address family other than TCP')
  }
}

/** `a:0:0:0:0:0:0:1` as `a::1`, and an IPv4-mapped address as its IPv4 form. */
function compactIpv6(groups: string[]): string {
  const text = groups.join(':')
  const mapped = /^0:0:0:0:0:ffff:([0-9a-f]+):([0-9a-f]+)$/.exec(text)
  if (mapped) {
    const hi = Number.parseInt(mapped[1] as string, 16)
    const lo = Number.parseInt(mapped[2] as string, 16)
    return `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`
  }
  // The longest run of zero groups becomes `::`.
  let best = -1
  let bestLen = 0
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === '0') j++
    if (j - i > bestLen && j - i > 1) {
      best = i
      bestLen = j - i
    }
    i = j
  }
  if (best < 0) return text
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`
}

/** Carried sources, by the connection's own `address|port`. */
const carried = new Map<string, ProxySource>()

function keyOf(socket: { readonly remoteAddress?: string | undefined; readonly remotePort?: number | undefined }) {
  return `${socket.remoteAddress}|${socket.remotePort}`
}

/** The peer of a connection: the address its PROXY header carried, else its own. */
export function peerAddress(socket: {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
}): string | undefined {
  if (carried.size === 0) return socket.remoteAddress
  return carried.get(keyOf(socket))?.address ?? socket.remoteAddress
}

/** The peer of a connection with its port: what its PROXY header carried, else its own; undefined when unknown. */
export function peerSource(socket: {
  readonly remoteAddress?: string | undefined
  readonly remotePort?: number | undefined
}): ProxySource | undefined {
  const own = carried.size === 0 ? undefined : carried.get(keyOf(socket))
  if (own !== undefined) return own
  const { remoteAddress, remotePort } = socket
  return remoteAddress === undefined || remotePort === undefined
    ? undefined
    : { address: remoteAddress, port: remotePort }
}

/**
 * Reads the PROXY header of `socket` (within `timeoutMs`), records its source, gives back the bytes
 * after it, and calls `ready`; or closes the connection and calls `refused` with why. `resume`: resume
 * the socket after `ready` (false leaves it paused, its bytes in the buffer).
 */
export function acceptProxied(
  socket: Socket,
  timeoutMs: number,
  ready: (socket: Socket) => void,
  refused: (reason: string) => void,
  resume = true,
): void {
  let buffered: Buffer = Buffer.alloc(0)
  const stop = () => {
    clearTimeout(timer)
    socket.removeListener('data', onData)
    socket.removeListener('end', onEnd)
  }
  const refuse = (reason: string) => {
    stop()
    socket.destroy()
    refused(reason)
  }
  const onEnd = () => refuse('the connection ended before its PROXY header')
  const onData = (chunk: Buffer) => {
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk])
    const header = readProxyHeader(buffered)
    if (header.kind === 'incomplete') return
    if (header.kind === 'invalid') return refuse(header.reason)
    stop()
    socket.pause()
    if (header.source !== undefined) {
      const key = keyOf(socket)
      carried.set(key, header.source)
      socket.once('close', () => carried.delete(key))
    }
    if (header.length < buffered.length) socket.unshift(buffered.subarray(header.length))
    ready(socket)
    // What the reader after us reads (node:http straight from the handle): the bytes given back
    // come first, by resuming the stream. node:tls reads them from the buffer itself (`resume` false).
    if (resume) socket.resume()
  }
  const timer = setTimeout(() => refuse('no PROXY header in time'), timeoutMs > 0 ? timeoutMs : 10_000)
  socket.on('data', onData)
  socket.once('end', onEnd)
  socket.on('error', () => socket.destroy())
}
