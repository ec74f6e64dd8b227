/**
 * The explanation of one live request that asked for it (Inbound#explain): the request path tells it
 * what happens (the rules that run, the admission, each try), and it gives the response header and
 * the access log's field. Made only for a request the listener's policy honoured, so that none of
 * this runs for the others.
 */
import type { PhaseCall } from '../filters/chain.js'
import type { Filter } from '../filters/types.js'
import type { NoRetry, RetryReason } from '../l7/retry.js'
import type { PoolTarget, RouteTarget } from '../l7/target.js'
import type { AdmitRequest, PoolLease, UpstreamPool } from '../upstream/pool.js'
import { describeChoice } from './choice.js'
import { type ExplainRecord, MAX_CANDIDATES, type ServerChoice, type TryRecord } from './model.js'
import type { ExplainGrant } from './policy.js'
import { explainHeader, explainJson } from './render.js'

/** Where the request went, as the request path knows it when the explanation is written. */
export interface ExplainedRequest {
  readonly target: RouteTarget | undefined
  readonly poolTarget: PoolTarget | undefined
}

/** Tries kept, at most: `retries.attempts` (up to 10) and three keep-alive resends fit. */
const MAX_TRIES = 16

export class RequestExplain {
  /** Why the request is explained. */
  readonly grant: ExplainGrant
  readonly #filters: string[] = []
  #answeredBy: string | undefined
  #choice: ServerChoice | undefined
  readonly #tries: TryRecord[] = []
  #noRetry: NoRetry | undefined
  /** When the request began to wait in the pool's queue (`performance.now()`); -1 when it did not. */
  #queuedAt = -1

  constructor(grant: ExplainGrant) {
    this.grant = grant
  }

  /** The recorder of a request the policy honoured; undefined for the others. */
  static of(grant: ExplainGrant | undefined): RequestExplain | undefined {
    return grant === undefined ? undefined : new RequestExplain(grant)
  }

  // --- the rules ---------------------------------------------------------------------------------

  /** `callOnRequest`, noting each filter as it runs. */
  readonly onRequest: PhaseCall = (f, ctx) => {
    this.#ran(f)
    return f.onRequest?.(ctx)
  }

  /** `callOnRoute`, noting each filter as it runs. */
  readonly onRoute: PhaseCall = (f, ctx) => {
    this.#ran(f)
    return f.onRoute?.(ctx)
  }

  #ran(f: Filter): void {
    if (this.#filters.length < 64) this.#filters.push(f.name)
  }

  /** The last filter that ran answered the request (a redirect, a refusal, its own response). */
  answered(): void {
    this.#answeredBy = this.#filters.at(-1)
  }

  // --- the pool ----------------------------------------------------------------------------------

  /** The pool admitted the request (now, or after it waited): how it chose the server. */
  admitted(pool: UpstreamPool, request: AdmitRequest, lease: PoolLease, select: readonly Filter[]): void {
    this.#choice = describeChoice(pool, request, {
      picked: lease.first,
      setCookie: lease.setCookie,
      upcoming: lease.upcoming(MAX_CANDIDATES - 1),
      selectedBy: select.map((f) => f.name),
      queuedMs: this.#queuedAt < 0 ? undefined : performance.now() - this.#queuedAt,
    })
  }

  /** The request waits in the pool's queue. */
  queued(): void {
    this.#queuedAt = performance.now()
  }

  /** No server could take the request: which ones could not, and why. */
  refused(pool: UpstreamPool, request: AdmitRequest, select: readonly Filter[]): void {
    this.#choice = describeChoice(pool, request, {
      picked: undefined,
      setCookie: undefined,
      upcoming: [],
      selectedBy: select.map((f) => f.name),
      queuedMs: this.#queuedAt < 0 ? undefined : performance.now() - this.#queuedAt,
    })
  }

  // --- the tries ---------------------------------------------------------------------------------

  /** A try failed and the request is tried again, after `delayMs`: `detail` is its code, or the status it answered. */
  retried(server: string, reason: RetryReason, detail: string | number | undefined, delayMs: number): void {
    this.#try({
      server,
      status: typeof detail === 'number' ? detail : undefined,
      code: typeof detail === 'string' ? detail : undefined,
      retry: reason,
      delayMs: delayMs > 0 ? Math.round(delayMs * 100) / 100 : undefined,
    })
  }

  /** A try failed with `code` and is not tried again. */
  failed(server: string | undefined, code: string, why: NoRetry): void {
    if (server !== undefined) this.#try({ server, code })
    this.#noRetry = why
  }

  /** The retry decided after the last failed try could not be made (no other server, or the budget). */
  notRetried(why: NoRetry): void {
    this.#noRetry = why
  }

  /** A try's server answered with `status`, which is relayed. */
  responded(server: string, status: number): void {
    this.#try({ server, status })
  }

  #try(t: TryRecord): void {
    if (this.#tries.length < MAX_TRIES) this.#tries.push(t)
  }

  // --- the outputs -------------------------------------------------------------------------------

  /** The explanation so far. `error`: the SWY_* code the request ends with, if any. */
  record(on: ExplainedRequest, error: string | undefined): ExplainRecord {
    const view = on.target?.view
    const record: ExplainRecord = {
      grant: this.grant,
      route: view === undefined ? null : (view.name ?? view.index),
      filters: this.#filters,
      answeredBy: this.#answeredBy,
      // A request a rule answered went to no pool.
      pool: this.#choice?.pool ?? (this.#answeredBy === undefined ? on.poolTarget?.pool.name : undefined),
      choice: this.#choice,
      tries: this.#tries,
      noRetry: this.#noRetry,
      error,
    }
    return record
  }

  /** The `x-switchyard-explain` response header's value. */
  header(on: ExplainedRequest, error: string | undefined): string {
    return explainHeader(this.record(on, error))
  }

  /** The access log's `explain` field, as JSON text. */
  json(on: ExplainedRequest, error: string | undefined): string {
    return explainJson(this.record(on, error))
  }
}
