/**
 * One timer that is re-aimed for nothing: the connect, headers, body and idle timeouts of an upstream
 * connection run one after another on one Deadline, whose Node timer is created only when the new due
 * time comes before the one already scheduled. A due time that moves later (a body timeout refreshed
 * on every chunk) costs a `performance.now()` and nothing else: when the Node timer fires early for the
 * current due time, it is scheduled again for the rest.
 *
 * Precision: `onDue` runs no earlier than the due time, and within about a millisecond after it, plus
 * whatever the event loop is busy with (Node timers have a 1 ms resolution; undici's coarse timers,
 * by contrast, tick every 500 ms for timeouts over 1 s).
 */
export class Deadline {
  readonly #onDue: () => void
  /** When `onDue` is due (`performance.now()` ms); 0: disarmed. */
  #dueMs = 0
  #timer: NodeJS.Timeout | undefined
  /** When the scheduled Node timer fires (`performance.now()` ms). */
  #timerAtMs = 0

  constructor(onDue: () => void) {
    this.#onDue = onDue
  }

  /** Arms (or re-arms) the deadline `ms` from now; `ms` > 0. */
  set(ms: number): void {
    const now = performance.now()
    const due = now + ms
    this.#dueMs = due
    if (this.#timer !== undefined) {
      if (this.#timerAtMs <= due) return
      clearTimeout(this.#timer)
    }
    this.#schedule(now)
  }

  /** Disarms it; the Node timer, if any, stays scheduled and finds nothing to do. */
  clear(): void {
    this.#dueMs = 0
  }

  get armed(): boolean {
    return this.#dueMs !== 0
  }

  /** Disarms it and drops the Node timer: the owner is gone. */
  dispose(): void {
    this.#dueMs = 0
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #schedule(now: number): void {
    const delay = Math.max(1, Math.ceil(this.#dueMs - now))
    this.#timerAtMs = now + delay
    const timer = setTimeout(this.#tick, delay)
    timer.unref()
    this.#timer = timer
  }

  readonly #tick = (): void => {
    this.#timer = undefined
    if (this.#dueMs === 0) return
    const now = performance.now()
    // Node's loop clock can lag `performance.now()` when the timer was set: early by that much.
    if (now < this.#dueMs) return this.#schedule(now)
    this.#dueMs = 0
    this.#onDue()
  }
}
