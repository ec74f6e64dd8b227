/**
 * The control plane's event log: health transitions, ejections, reloads, runtime changes and worker
 * restarts, each with an increasing id. The admin API streams it (`GET /api/v1/events`, Server-Sent
 * Events) and the dashboard draws its timeline from it.
 *
 * The stream also carries events that are not in the log (STREAM_ONLY_TYPES): `stats`, the live
 * numbers the admin server reads every second (admin/stats.ts). They have no id, so a reader's
 * `Last-Event-ID` stays on the last logged event, and they are never replayed.
 *
 * Bounded: the last EVENT_HISTORY events are kept, for a client that reconnects with `Last-Event-ID`
 * or opens the stream late. Listeners are called synchronously; one that throws is dropped.
 */

/** What happened, by `type`. Server names are pool-scoped; `worker` is the slot index, when a worker saw it. */
export type EventBody =
  | {
      readonly type: 'health'
      readonly pool: string
      readonly server: string
      readonly state: 'up' | 'down'
      readonly reason: string
    }
  | {
      readonly type: 'ejection'
      readonly pool: string
      readonly server: string
      readonly ejected: boolean
      readonly reason: 'outlier' | 'connect-failure'
      readonly worker?: number | undefined
    }
  | {
      readonly type: 'reload'
      readonly result: 'ok' | 'rejected'
      /** What asked for it: the file (a signal, --watch, `POST /api/v1/reload`), the API (`PUT /api/v1/config`), code. */
      readonly source: 'file' | 'api' | 'code'
      readonly generation: number
      readonly message: string
    }
  | {
      readonly type: 'change'
      readonly action: 'update' | 'add' | 'remove' | 'removed' | 'clear'
      readonly pool?: string | undefined
      readonly server?: string | undefined
      readonly weight?: number | undefined
      readonly state?: string | undefined
      readonly message: string
    }
  | {
      readonly type: 'worker'
      readonly action: 'exited' | 'restarted'
      readonly worker: number
      readonly pid: number | undefined
      readonly message: string
    }

/** Every `type` of the log, in the order of EventBody. */
export const EVENT_TYPES = [
  'health',
  'ejection',
  'reload',
  'change',
  'worker',
] as const satisfies readonly EventBody['type'][]

/** Types the event stream carries besides the log's: sent as they happen, without an id, never kept. */
export const STREAM_ONLY_TYPES = ['stats'] as const

export type SwitchyardEvent = EventBody & {
  readonly id: number
  /** ISO 8601. */
  readonly time: string
}

/** Events kept for late or reconnecting readers. */
export const EVENT_HISTORY = 500

export class EventLog {
  readonly #history: SwitchyardEvent[] = []
  readonly #listeners = new Set<(e: SwitchyardEvent) => void>()
  #nextId = 1

  emit(body: EventBody): SwitchyardEvent {
    const event = { ...body, id: this.#nextId++, time: new Date().toISOString() } as SwitchyardEvent
    this.#history.push(event)
    if (this.#history.length > EVENT_HISTORY) this.#history.shift()
    for (const listener of this.#listeners) {
      try {
        listener(event)
      } catch {
        this.#listeners.delete(listener)
      }
    }
    return event
  }

  /** Kept events with an id above `afterId` (0: all kept), oldest first. */
  since(afterId: number): SwitchyardEvent[] {
    return this.#history.filter((e) => e.id > afterId)
  }

  /** Calls `listener` with every event from now on; returns the unsubscribe. */
  subscribe(listener: (e: SwitchyardEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }
}
