/**
 * The open tunnels of one listener, for its drain: closing them all at once would have every client
 * reconnect in the same instant (a thundering herd on whatever serves next), so each tunnel gets its
 * own random time in a window, and is closed politely then (Tunnel#goAway). A tunnel that opens while
 * the window runs gets a time in what is left of it.
 */
import type { Tunnel } from './tunnel.js'

export class TunnelSet {
  readonly #open = new Set<Tunnel>()
  readonly #timers = new Set<NodeJS.Timeout>()
  /** `performance.now()` by which every tunnel is to be closed; undefined until a drain. */
  #closeByMs: number | undefined

  get size(): number {
    return this.#open.size
  }

  add(tunnel: Tunnel): void {
    this.#open.add(tunnel)
    if (this.#closeByMs !== undefined) this.#schedule(tunnel)
  }

  delete(tunnel: Tunnel): void {
    this.#open.delete(tunnel)
  }

  /** Closes every tunnel, open now or opened from now on, each at a random time within `windowMs`. */
  closeGradually(windowMs: number): void {
    if (this.#closeByMs !== undefined) return
    this.#closeByMs = performance.now() + Math.max(0, windowMs)
    for (const t of this.#open) this.#schedule(t)
  }

  /** Closes every tunnel now, without a close handshake (the end of a drain's grace period). */
  destroyAll(): void {
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    for (const t of this.#open) t.destroy()
  }

  #schedule(tunnel: Tunnel): void {
    const leftMs = Math.max(0, (this.#closeByMs as number) - performance.now())
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      tunnel.goAway()
    }, Math.random() * leftMs)
    this.#timers.add(timer)
  }
}
