/**
 * Slow-client defences for requests under way (`slowClients` on a listener), after Kestrel's minimum
 * data rates: while Switchyard waits on a client, the client must move at least `minRate` bytes a
 * second, judged over each `window`:
 * - its request body (slow POST): waited on while the body is incomplete and nothing of it is left
 *   unread (time the upstream or the queue makes it wait does not count);
 * - its response (slow read, HTTP/1): waited on while its connection holds response bytes that the
 *   kernel would not take (the socket's write buffer is not empty).
 * A client below the rate gets `408 SWY_CLIENT_TOO_SLOW` (before a response head) or its connection cut
 * (after one); its upstream request is aborted, so the upstream connection it held is freed. A client
 * that stops altogether is cut one window after it stopped.
 *
 * One timer for the process ticks every `TICK_MS` over the requests being watched: a request costs a
 * Set insert and delete, and a few reads of its counters per tick.
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

/** One direction's account: time waited on the client in the current window, and bytes it moved. */
class Lag {
  waitedMs = 0
  moved = 0
  last = -1

  /** One tick: `waiting` on the client, its counter now `count`. True: below `rate` over the window. */
  tick(waiting: boolean, count: number, rate: number, windowMs: number): boolean {
    const delta = this.last < 0 ? 0 : count - this.last
    this.last = count
    if (!waiting) return false
    this.waitedMs += TICK_MS
    this.moved += Math.max(0, delta)
    if (this.waitedMs < windowMs) return false
    const slow = this.moved < (rate * this.waitedMs) / 1000
    this.waitedMs = 0
    this.moved = 0
    return slow
  }
}

export interface Watched {
  readonly client: ClientSide
  readonly policy: SlowClientPolicy
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
    if (policy.minSendRate > 0 && client.headersSent && client.protocol !== 'h2' && socket !== undefined) {
      const pending = socket.writableLength
      if (this.send.tick(pending > 0, socket.bytesWritten - pending, policy.minSendRate, policy.windowMs)) {
        this.watched.tooSlow('response')
        return true
      }
    }
    return false
  }
}

const entries = new Map<Watched, Entry>()
let timer: NodeJS.Timeout | undefined

function sweep(): void {
  for (const [key, entry] of entries) if (entry.tick()) entries.delete(key)
  if (entries.size === 0 && timer !== undefined) {
    clearInterval(timer)
    timer = undefined
  }
}

/** Watches a request until `unwatchSlow` (its end, or its becoming a tunnel). No-op when its policy is off. */
export function watchSlow(watched: Watched): void {
  if (watched.policy.windowMs <= 0 || (watched.policy.minBodyRate <= 0 && watched.policy.minSendRate <= 0)) return
  entries.set(watched, new Entry(watched))
  if (timer === undefined) {
    timer = setInterval(sweep, TICK_MS)
    timer.unref()
  }
}

export function unwatchSlow(watched: Watched): void {
  entries.delete(watched)
}

/** Requests being watched now (for tests). */
export function watchedCount(): number {
  return entries.size
}
