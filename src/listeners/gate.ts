/**
 * The connection gate of a listener: every accepted TCP connection passes it before any byte is read
 * (after the PROXY header, when the listener reads one, so that the address it carries is the one
 * counted). A connection over a limit is destroyed at once (HAProxy's `tcp-request connection reject`):
 * - `access` with `action: close` on the listener: its address is not allowed;
 * - `maxConnections`: the listener has that many open;
 * - `connectionsPerIp`: its address has that many open;
 * - `connectionRatePerIp`: its address opened connections faster than the rate (GCRA: `N/s` lets N
 *   connections open at once, then N a second; in a table of at most `RATE_KEYS` addresses).
 * Counts are per process (per worker). `configure()` applies a reload's limits to new connections;
 * connections already open stay counted.
 */
import type { Socket } from 'node:net'
import type { ListenerLimits } from '../config/normalize.js'
import { type AccessList, InFlight, MemoryRateStore, type RatePolicy, ratePolicy } from '../limits/index.js'

/** Addresses whose connection rate is tracked at once; the least recently seen are forgotten first. */
export const RATE_KEYS = 100_000

export type GateRefusal = 'access' | 'max-connections' | 'connections-per-ip' | 'connection-rate'

export class ConnectionGate {
  #limits: ListenerLimits
  #access: AccessList | undefined
  #rate: RatePolicy | undefined
  #rates: MemoryRateStore | undefined
  readonly #perIp = new InFlight()
  #open = 0
  readonly #onRefused: (reason: GateRefusal, ip: string) => void

  constructor(
    limits: ListenerLimits,
    access: AccessList | undefined,
    onRefused: (reason: GateRefusal, ip: string) => void,
  ) {
    this.#limits = limits
    this.#access = access
    this.#onRefused = onRefused
    this.configure(limits, access)
  }

  configure(limits: ListenerLimits, access: AccessList | undefined): void {
    this.#limits = limits
    this.#access = access
    const r = limits.connectionRatePerIp
    const policy = r === undefined ? undefined : ratePolicy(r.count, r.perMs, Math.max(0, Math.floor(r.count) - 1))
    const same =
      policy !== undefined &&
      this.#rate !== undefined &&
      this.#rate.intervalMs === policy.intervalMs &&
      this.#rate.toleranceMs === policy.toleranceMs
    if (!same) {
      this.#rate = policy
      this.#rates = r === undefined ? undefined : new MemoryRateStore(RATE_KEYS)
    }
  }

  /** Connections open now (admitted, not yet closed). */
  get open(): number {
    return this.#open
  }

  /**
   * Admits `socket` (from `ip`, without `::ffff:`), counting it until it closes; or destroys it and
   * returns false.
   */
  admit(socket: Socket, ip: string): boolean {
    const refusal = this.#check(ip)
    if (refusal !== undefined) {
      socket.destroy()
      this.#onRefused(refusal, ip)
      return false
    }
    this.#open++
    const perIp = this.#limits.connectionsPerIp > 0
    socket.once('close', () => {
      this.#open--
      if (perIp) this.#perIp.release(ip)
    })
    return true
  }

  #check(ip: string): GateRefusal | undefined {
    const limits = this.#limits
    if (this.#access !== undefined && !this.#access.allows(ip)) return 'access'
    if (limits.maxConnections > 0 && this.#open >= limits.maxConnections) return 'max-connections'
    if (this.#rates !== undefined && this.#rate !== undefined) {
      if (this.#rates.take(ip, performance.now(), this.#rate, 0).kind === 'deny') return 'connection-rate'
    }
    if (limits.connectionsPerIp > 0 && !this.#perIp.tryAcquire(ip, limits.connectionsPerIp)) return 'connections-per-ip'
    return undefined
  }
}
