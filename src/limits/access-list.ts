/**
 * Allow and deny lists of addresses and CIDR ranges, IPv4 and IPv6, on `net.BlockList`. Deny wins
 * over allow; with an allow list, every address it does not name is denied. An IPv4-mapped IPv6
 * address (`::ffff:10.0.0.1`) is checked as the IPv4 address it carries.
 *
 * `BlockList.check` costs about 2 µs (it builds a native SocketAddress each time), so answers are kept
 * per address in a bounded LRU (`CACHED_ADDRESSES`): a client's later requests cost a map lookup.
 */
import { BlockList, isIP } from 'node:net'
import { BoundedLru } from './lru.js'

/** Addresses whose answer is kept; the least recently seen are checked again. */
export const CACHED_ADDRESSES = 10_000

/** `10.0.0.0/8`, `2001:db8::/32`, or a single address. Returns undefined when it is neither. */
export function parseCidr(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const slash = text.indexOf('/')
  const address = slash < 0 ? text : text.slice(0, slash)
  const v = isIP(address)
  if (v === 0) return undefined
  const family = v === 4 ? 'ipv4' : 'ipv6'
  const max = v === 4 ? 32 : 128
  if (slash < 0) return { address, prefix: max, family }
  const bits = text.slice(slash + 1)
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) return undefined
  return { address, prefix: Number(bits), family }
}

function blockListOf(entries: readonly string[]): BlockList {
  const list = new BlockList()
  for (const entry of entries) {
    const cidr = parseCidr(entry)
    if (cidr === undefined) throw new Error(`invalid address or range ${entry}`)
    list.addSubnet(cidr.address, cidr.prefix, cidr.family)
  }
  return list
}

export class AccessList {
  readonly #allow: BlockList | undefined
  readonly #deny: BlockList | undefined
  readonly #answers = new BoundedLru<boolean>(CACHED_ADDRESSES)

  /** Entries already validated (`parseCidr`); an empty `allow` allows every address. */
  constructor(allow: readonly string[], deny: readonly string[]) {
    this.#allow = allow.length === 0 ? undefined : blockListOf(allow)
    this.#deny = deny.length === 0 ? undefined : blockListOf(deny)
  }

  /** Whether `ip` may pass; an address that is not an IP (a Unix socket) passes only without an allow list. */
  allows(ip: string): boolean {
    const known = this.#answers.get(ip)
    if (known !== undefined) return known
    const answer = this.#check(ip)
    this.#answers.set(ip, answer)
    return answer
  }

  #check(ip: string): boolean {
    let address = ip
    let family: 'ipv4' | 'ipv6'
    const v = isIP(ip)
    if (v === 4) family = 'ipv4'
    else if (v === 6) {
      family = 'ipv6'
      if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIP(ip.slice(7)) === 4) {
        address = ip.slice(7)
        family = 'ipv4'
      }
    } else return this.#allow === undefined
    if (this.#deny?.check(address, family) === true) return false
    return this.#allow === undefined || this.#allow.check(address, family)
  }
}
