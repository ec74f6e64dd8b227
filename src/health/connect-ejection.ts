/**
 * Passive health on by default (after nginx's `max_fails=1 fail_timeout=10s`): a server that refuses a
 * connection, or does not accept one within the connect timeout, leaves the rotation at once, for
 * `baseEjectionTime`, doubled for each further failure in a row up to `maxEjectionTime`. When the time
 * is up, one TCP connect probes the server: it comes back if the probe connects, and stays out for
 * twice as long if not. A request that succeeds resets the count.
 *
 * The last server of a pool that could take requests is never ejected (as nginx never marks the only
 * server of a group down): a refusing server then costs its requests a retry, not the whole pool.
 *
 * Data plane, per process. The state outlives reloads that keep the settings (see `adopt`).
 */
import { connect } from 'node:net'
import type { Backend } from '../core/backend.js'

export interface ConnectEjectionSettings {
  readonly baseEjectionMs: number
  readonly maxEjectionMs: number
}

export class ConnectEjector {
  #settings: ConnectEjectionSettings
  #connectMs: number
  #onChange: () => void
  #canEject: (id: string) => boolean
  /** Failures in a row per server (reset by a success). */
  readonly #failures = new Map<string, number>()
  readonly #timers = new Map<string, NodeJS.Timeout>()
  /** Ejected now: a new set on every change, read by the request path. */
  #ejected: ReadonlySet<string> = new Set()

  /**
   * `canEject(id)`: whether ejecting `id` leaves the pool another server; `onChange` runs after every
   * ejection and every return.
   */
  constructor(
    settings: ConnectEjectionSettings,
    connectMs: number,
    canEject: (id: string) => boolean,
    onChange: () => void,
  ) {
    this.#settings = settings
    this.#connectMs = connectMs
    this.#canEject = canEject
    this.#onChange = onChange
  }

  /** The previous generation's ejector with new settings and callbacks (its state kept), or a new one. */
  static adopt(
    previous: ConnectEjector | undefined,
    settings: ConnectEjectionSettings,
    connectMs: number,
    canEject: (id: string) => boolean,
    onChange: () => void,
  ): ConnectEjector {
    if (previous === undefined) return new ConnectEjector(settings, connectMs, canEject, onChange)
    previous.#settings = settings
    previous.#connectMs = connectMs
    previous.#canEject = canEject
    previous.#onChange = onChange
    return previous
  }

  get ejected(): ReadonlySet<string> {
    return this.#ejected
  }

  /** A connection to `backend` was refused or timed out. */
  refused(backend: Backend): void {
    if (this.#ejected.has(backend.id) || !this.#canEject(backend.id)) return
    this.#eject(backend, (this.#failures.get(backend.id) ?? 0) + 1)
  }

  /** A request to server `id` succeeded. */
  succeeded(id: string): void {
    if (this.#failures.size > 0) this.#failures.delete(id)
  }

  #eject(backend: Backend, failures: number): void {
    const id = backend.id
    this.#failures.set(id, failures)
    if (!this.#ejected.has(id)) {
      this.#ejected = new Set([...this.#ejected, id])
      this.#onChange()
    }
    const { baseEjectionMs, maxEjectionMs } = this.#settings
    const ms = Math.min(baseEjectionMs * 2 ** (failures - 1), maxEjectionMs)
    const timer = setTimeout(() => this.#probe(backend), ms)
    timer.unref()
    this.#timers.set(id, timer)
  }

  /** The ejection is over: one connect decides whether the server comes back. */
  #probe(backend: Backend): void {
    this.#timers.delete(backend.id)
    const socket = connect({ host: backend.host, port: backend.port })
    let settled = false
    const settle = (ok: boolean) => {
      if (settled) return
      settled = true
      socket.destroy()
      if (ok) this.#restore(backend.id)
      else this.#eject(backend, (this.#failures.get(backend.id) ?? 0) + 1)
    }
    socket.setTimeout(this.#connectMs, () => settle(false))
    socket.once('connect', () => settle(true))
    socket.once('error', () => settle(false))
  }

  #restore(id: string): void {
    if (!this.#ejected.has(id)) return
    const next = new Set(this.#ejected)
    next.delete(id)
    this.#ejected = next
    this.#onChange()
  }

  /** Forgets the servers not in `ids` (removed by a reload). */
  retain(ids: ReadonlySet<string>): void {
    for (const [id, timer] of this.#timers)
      if (!ids.has(id)) {
        clearTimeout(timer)
        this.#timers.delete(id)
      }
    for (const id of this.#failures.keys()) if (!ids.has(id)) this.#failures.delete(id)
    if ([...this.#ejected].some((id) => !ids.has(id)))
      this.#ejected = new Set([...this.#ejected].filter((id) => ids.has(id)))
  }
}
