/**
 * The retry decision: one pure function from what happened to a try to what the request does next.
 * No sockets, timers or pools here: the exchange gathers the facts and carries out the decision.
 *
 * - `resend`: a lost keep-alive race (the server closed a reused idle connection just as the request
 *   was written, and not one byte of a response came back). Nothing reached the application: the same
 *   server, at once, on another connection, whatever the method; not a retry, not in the budget, at
 *   most MAX_RACE_RESENDS times.
 * - `retry`: another server, after `delayMs`. Connect failures (nothing reached the server) are
 *   retried for any request, at once. Resets, timeouts and chosen statuses only for requests that are
 *   idempotent (or `retryNonIdempotent`) and replayable (no body, or a buffered one), after a backoff
 *   with full jitter: a random share of `base × 2^(retry − 1)`, at most `max`.
 * - `fail`: no tries left, a failure the pool does not retry, a response already begun, or no room in
 *   the retry budget; `why` says which (explanations report it, and a spent budget is counted).
 */
import type { RetrySettings } from '../config/index.js'
import { type ErrorCode, isConnectFailure } from '../core/errors.js'

/** Resends of one request after lost keep-alive races, at most. */
export const MAX_RACE_RESENDS = 3

/** Methods that RFC 9110 §9.2.2 defines as idempotent. */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'])

/**
 * Why a request was sent again: the label of `switchyard_upstream_retries_total`. `refused-stream` is the
 * HTTP/2 engine's own resend of a stream the server refused unprocessed (http2/upstream.ts).
 */
export type RetryReason = 'connect-failure' | 'reset' | 'timeout' | 'status' | 'keepalive-race' | 'refused-stream'

export interface TryFacts {
  /** The SWY_* code the try failed with (SWY_UPSTREAM_STATUS for a retryable status). */
  readonly code: ErrorCode
  /** The upstream status for SWY_UPSTREAM_STATUS; 0 otherwise. */
  readonly status: number
  /** The try went out on a connection that had carried requests before. */
  readonly reusedConnection: boolean
  /** Bytes of a response came back on the connection after the request was written. */
  readonly responseBytes: boolean
}

export interface RequestFacts {
  readonly method: string
  /** No body, or a body read whole that can be sent again. */
  readonly replayable: boolean
  /** The client has been sent the response head: nothing can be retried. */
  readonly responseStarted: boolean
  /** Tries sent so far (resends not included). */
  readonly tries: number
  readonly raceResends: number
  /** The pool's retry budget has room (see UpstreamPool#canRetry). */
  readonly budgetAvailable: boolean
}

/**
 * Why a failed try was not retried: the response had begun, `attempts` were used up, the failure is
 * not one the pool retries (`retries.on`), the method is not idempotent, the body cannot be sent
 * again, the retry budget is spent; `no-server` (decided by the exchange): no other server can take it.
 */
export type NoRetry =
  | 'response-started'
  | 'attempts'
  | 'not-retried'
  | 'not-idempotent'
  | 'not-replayable'
  | 'budget'
  | 'no-server'

/** The reasons of a retry to another server. */
export type RetryToAnother = Exclude<RetryReason, 'keepalive-race' | 'refused-stream'>

export type RetryDecision =
  | { readonly kind: 'resend'; readonly reason: 'keepalive-race' }
  | { readonly kind: 'retry'; readonly reason: RetryToAnother; readonly delayMs: number }
  | { readonly kind: 'fail'; readonly why: Exclude<NoRetry, 'no-server'> }

type Fail = Extract<RetryDecision, { kind: 'fail' }>

/** One constant decision per reason: deciding allocates nothing. */
const FAILS: { readonly [W in Fail['why']]: Fail } = {
  'response-started': { kind: 'fail', why: 'response-started' },
  attempts: { kind: 'fail', why: 'attempts' },
  'not-retried': { kind: 'fail', why: 'not-retried' },
  'not-idempotent': { kind: 'fail', why: 'not-idempotent' },
  'not-replayable': { kind: 'fail', why: 'not-replayable' },
  budget: { kind: 'fail', why: 'budget' },
}
const RESEND: RetryDecision = { kind: 'resend', reason: 'keepalive-race' }

/** `random`: uniform in [0, 1), for the jitter. */
export function decideRetry(
  settings: RetrySettings,
  failure: TryFacts,
  request: RequestFacts,
  random: () => number = Math.random,
): RetryDecision {
  if (request.responseStarted) return FAILS['response-started']
  const isReset = failure.code === 'SWY_UPSTREAM_RESET'
  if (
    isReset &&
    settings.keepAliveRace &&
    failure.reusedConnection &&
    !failure.responseBytes &&
    request.replayable &&
    request.raceResends < MAX_RACE_RESENDS
  )
    return RESEND
  if (request.tries > settings.attempts) return FAILS.attempts
  const reason = reasonOf(settings, failure, request)
  if (typeof reason !== 'string') return reason
  if (!request.budgetAvailable) return FAILS.budget
  if (reason === 'connect-failure') return { kind: 'retry', reason, delayMs: 0 }
  const ceiling = Math.min(settings.backoffMaxMs, settings.backoffBaseMs * 2 ** (request.tries - 1))
  return { kind: 'retry', reason, delayMs: random() * ceiling }
}

function reasonOf(settings: RetrySettings, failure: TryFacts, request: RequestFacts): RetryToAnother | Fail {
  const code = failure.code
  const no = FAILS['not-retried']
  if (isConnectFailure(code)) return settings.onConnectFailure ? 'connect-failure' : no
  if (!request.replayable) return FAILS['not-replayable']
  if (!(settings.retryNonIdempotent || IDEMPOTENT.has(request.method))) return FAILS['not-idempotent']
  switch (code) {
    case 'SWY_UPSTREAM_STATUS':
      return settings.statuses.includes(failure.status) ? 'status' : no
    case 'SWY_UPSTREAM_RESET':
      return settings.onReset ? 'reset' : no
    case 'SWY_UPSTREAM_TIMEOUT':
      return settings.onTimeout ? 'timeout' : no
    default:
      return no
  }
}
