/**
 * Slow-client defences for requests under way (`slowClients` on a listener), after Kestrel's minimum
 * data rates: while Switchyard waits on a client, the client must move at least `minRate` bytes a
 * second, judged over each `window`:
 * - its request body (slow POST): waited on while the body is incomplete and nothing of it is left
 *   unread (time the upstream or the queue makes it wait does not count);
 * - its response (slow read, HTTP/1.1 and HTTP/2): waited on while the response is held back for it (a
 *   write to it was refused, by a full socket or an HTTP/2 flow-control window, and its drain has not
 *   come).
 * A client below the rate gets `408 SWY_CLIENT_TOO_SLOW` (before a response head) or its connection cut
 * (after one); its upstream request is aborted, so the upstream connection it held is freed. A client
 * that stops altogether is cut one window after it stopped.
 *
 * One timer for the process ticks every `TICK_MS` over the requests being watched: a request costs a
 * slot in an array, taken and given back, and a few reads of its counters per tick.
 */
import type { ClientSide } from './client.js'

export const TICK_MS = 1000

export interface SlowClientPolicy {
  /** How long a client is watched before it is judged; 0: off. */
  readonly windowMs: number
  /** Bytes a second a request body must arrive at; 0: not checked. */
  readonly minBodyRate: number
  /** Bytes a second a client must read its response at; 0: not checked. */
  readonly minSendRate: number
}

/**
 * One direction's account: time waited on the client in the current window, and the bytes it moved.
 * The bytes up to the first tick that finds it waited on are not counted: they are what went out before
 * the client could hold anything back (a response filling the kernel's buffers at once), and say nothing
 * of how fast it takes it. After that, every byte it moves counts, whether or not it was waited on at
 * the tick, so that a client that reads in bursts is judged by its average.
 */
export class Lag {
  waitedMs = 0
  moved = 0
  last = -1
  primed = false

  /** One tick: `waiting` on the client, its counter now `count`. True: below `rate` over the window. */
  tick(waiting: boolean, count: number, rate: number, windowMs: number): boolean {
    const delta = this.last < 0 ? 0 : count - this.last
    this.last = count
    if (this.primed) this.moved += Math.max(0, delta)
    if (!waiting) return false
    this.primed = true
    this.waitedMs += TICK_MS
    if (this.waitedMs < windowMs) return false
    const slow = this.moved < (rate * this.waitedMs) / 1000
    this.waitedMs = 0
    this.moved = 0
    return slow
  }
}

/** A fresh account (for tests). */
export function newLag(): Lag {
  return new Lag()
}

export interface Watched {
  /** Its place in the watch list (-1: not watched); the watch's own, set by `watchSlow`. */
  slowSlot: number
  readonly client: ClientSide
  readonly policy: SlowClientPolicy
  /** The response body under way: waiting on the client, and bytes given to it; undefined before one. */
  sendProgress(): { readonly waiting: boolean; readonly bytes: number } | undefined
  /** The client is below a rate: end the request. */
  tooSlow(what: 'body' | 'response'): void
}

class Entry {
  readonly body = new Lag()
  readonly send = new Lag()
  constructor(readonly watched: Watched) {}

  /** True when the request was ended. */
  tick(): boolean {
    const { client, policy } = this.watched
    if (client.gone) return false
    const socket = client.connection
    if (policy.minBodyRate > 0 && !client.bodyComplete) {
      const body = client.body
      // Waiting on the client: nothing of the body is left unread, and its socket is not paused (an
      // engine pauses it while the upstream, or the queue, holds the body back).
      const waiting = body.readableLength === 0 && !body.destroyed && socket?.isPaused() !== true
      if (this.body.tick(waiting, client.bytesIn(), policy.minBodyRate, policy.windowMs)) {
        this.watched.tooSlow('body')
        return true
      }
    }
    const send = policy.minSendRate > 0 ? this.watched.sendProgress() : undefined
    if (send !== undefined) {
      if (this.send.tick(send.waiting, send.bytes, policy.minSendRate, policy.windowMs)) {
        this.watched.tooSlow('response')
        return true
      }
    }
    return false
  }
}

/**
 * The requests watched, by slot: an array with swap-removal rather than a Map keyed by request, which
 * would give every request object an identity hash (measured: a quarter of the throughput of a small-
 * response benchmark). A request's account (`Entry`) is made at its first tick: most requests end sooner.
 */
const watched: Watched[] = []
const accounts: (Entry | undefined)[] = []
let timer: NodeJS.Timeout | undefined

function sweep(): void {
  for (let i = 0; i < watched.length; i++) {
    const w = watched[i] as Watched
    let entry = accounts[i]
    if (entry === undefined) {
      entry = new Entry(w)
      accounts[i] = entry
    }
    if (entry.tick() && w.slowSlot === i) unwatchSlow(w)
    // Ended (here, or by the request's own end inside `tooSlow`): another request now holds slot i.
    if (watched[i] !== w) i--
  }
  if (watched.length === 0 && timer !== undefined) {
    clearInterval(timer)
    timer = undefined
  }
}

/** Watches a request until `unwatchSlow` (its end, or its becoming a tunnel). No-op when its policy is off. */
export function watchSlow(w: Watched): void {
  if (w.slowSlot >= 0) return
  if (w.policy.windowMs <= 0 || (w.policy.minBodyRate <= 0 && w.policy.minSendRate <= 0)) return
  w.slowSlot = watched.length
  watched.push(w)
  accounts.push(undefined)
  if (timer === undefined) {
    timer = setInterval(sweep, TICK_MS)
    timer.unref()
  }
}

export function unwatchSlow(w: Watched): void {
  const slot = w.slowSlot
  if (slot < 0) return
  w.slowSlot = -1
  const last = watched.length - 1
  if (slot !== last) {
    const moved = watched[last] as Watched
    watched[slot] = moved
    accounts[slot] = accounts[last]
    moved.slowSlot = slot
  }
  watched.pop()
  accounts.pop()
}

/** Requests being watched now (for tests). */
export function watchedCount(): number {
  return watched.length
}
