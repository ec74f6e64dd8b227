/**
 * The open tunnels of one listener, for its drain: closing them all at once would have every client
 * reconnect in the same instant (a thundering herd on whatever serves next), so each tunnel gets its
 * own random time in a window, and is closed politely then (Tunnel#goAway). A tunnel that opens while
 * the window runs gets a time in what is left of it.
 */
import type { Tunnel } from './tunnel.js'

export class TunnelSet {
  /** Open tunnels, with the timer of their close once a drain scheduled one. */
  readonly #open = new Map<Tunnel, NodeJS.Timeout | undefined>()
  /** `performance.now()` by which every tunnel is to be closed; undefined until a drain. */
  #closeByMs: number | undefined

  get size(): number {
    return this.#open.size
  }

  add(tunnel: Tunnel): void {
    this.#open.set(tunnel, undefined)
    if (this.#closeByMs !== undefined) this.#schedule(tunnel)
  }

  delete(tunnel: Tunnel): void {
    const timer = this.#open.get(tunnel)
    if (timer !== undefined) clearTimeout(timer)
    this.#open.delete(tunnel)
  }

  /** Closes every tunnel, open now or opened from now on, each at a random time within `windowMs`. */
  closeGradually(windowMs: number): void {
    if (this.#closeByMs !== undefined) return
    this.#closeByMs = performance.now() + Math.max(0, windowMs)
    for (const t of this.#open.keys()) this.#schedule(t)
  }

  /** Closes every tunnel now, without a close handshake (the end of a drain's grace period). */
  destroyAll(): void {
    for (const [t, timer] of this.#open) {
      if (timer !== undefined) clearTimeout(timer)
      t.destroy()
    }
  }

  #schedule(tunnel: Tunnel): void {
    const leftMs = Math.max(0, (this.#closeByMs as number) - performance.now())
    const timer = setTimeout(() => {
      if (this.#open.has(tunnel)) this.#open.set(tunnel, undefined)
      tunnel.goAway()
    }, Math.random() * leftMs)
    this.#open.set(tunnel, timer)
  }
}
