/**
 * The explanation of one request, as data: the route and the rules that ran, the pool, how its server
 * was chosen (the balancer's scores, the servers skipped and why, the sticky decision), and each try
 * with the reason for the next. One model for both places that explain: a live request that asks with
 * `x-switchyard-explain: 1` (explain/request.ts) and the config test kit (testkit/explain.ts). Plain
 * JSON values, so that the access log can carry it as it is.
 */
import type { NoRetry, RetryReason } from '../l7/retry.js'
import type { ServerState } from '../upstream/pool.js'

/** Candidates scored, at most: the pick and its runners-up (P2C's other draw). */
export const MAX_CANDIDATES = 4

/** Why a server of the pool could not take the request. */
export type SkipReason = Exclude<ServerState, 'up'> | 'full' | 'weight-0'

export interface SkippedServer {
  readonly server: string
  readonly reason: SkipReason
  /** What ejected it (reason `ejected`): failed requests (`outlier`) or a failed connect. */
  readonly cause?: 'outlier' | 'connect-failure' | undefined
}

/** A server that could take the request, with what the balancer weighed (best first). */
export interface ScoredServer {
  readonly server: string
  /** Lower is better; absent when the algorithm keeps no score (rotations, hashes). */
  readonly score?: number | undefined
  /** The score in a few words: `ewma 1.2ms`, `3 in flight`, `weight 2`; empty when there is nothing to say. */
  readonly note: string
  /** The numbers behind the score (`inFlight`, `weight`, `ewmaMs`, ...). */
  readonly detail?: Readonly<Record<string, number>> | undefined
  /** A backup server (asked only because no primary could take the request). */
  readonly backup?: true | undefined
}

/**
 * What stickiness decided. `new`: no binding, the balancer chose and a cookie binds the client now
 * (app-cookie: the server's own cookie will be learnt); `hit`: the binding holds; `renewed`: it holds
 * and its cookie was renewed; `rebound`: the bound server (`bound`) cannot take requests (`boundState`),
 * so the balancer chose another; `invalid`: a cookie came that does not verify (expired, tampered with,
 * another pool's); `unknown`: an application session the table does not know; `hash`: the client-ip or
 * header ring chose (`key` says what was hashed; `bound` and `boundState`, when the key's own server
 * could not take it and the next one on the ring did).
 */
export interface StickyDecision {
  readonly mode: 'cookie' | 'app-cookie' | 'client-ip' | 'header'
  readonly decision: 'new' | 'hit' | 'renewed' | 'rebound' | 'invalid' | 'unknown' | 'hash'
  readonly bound?: string | undefined
  readonly boundState?: SkipReason | 'gone' | undefined
  /** Hash modes: `client-ip`, or `header:NAME` (the client address when the header is absent). */
  readonly key?: string | undefined
  /** A Set-Cookie binding goes with the response. */
  readonly setCookie: boolean
}

/** How the pool chose its server for the request. */
export interface ServerChoice {
  readonly pool: string
  readonly algorithm: string
  /**
   * How: the balancer's method (`rotation`, `draw`, `least`, `p2c`, `best-of-N`, `hash`), `sticky` when
   * the request's binding chose, `select` when a `selectUpstream` filter reordered the candidates.
   */
  readonly method: string
  /** Hashing algorithms: the request field hashed (`client-ip`, `header:x-user`, ...). */
  readonly hashOn?: string | undefined
  /** Where the key's hash landed: its 8 hex digits, a ring point or table slot of `size`. */
  readonly hash?:
    | { readonly value: string; readonly unit: 'point' | 'slot'; readonly at: number; readonly size: number }
    | undefined
  /** Too few servers are up (`panicThreshold`): health is ignored. */
  readonly panic: boolean
  /** The first choice; undefined when no server could take the request. */
  readonly picked: string | undefined
  /** The servers that could take it, in the order the pool would try them, with their scores (a few). */
  readonly candidates: readonly ScoredServer[]
  /** Every server that could not, and why (backups only when the primaries ran out). */
  readonly skipped: readonly SkippedServer[]
  readonly sticky?: StickyDecision | undefined
  /** The `selectUpstream` filters that ran over the candidates. */
  readonly selectedBy?: readonly string[] | undefined
  /** Milliseconds the request waited in the pool's queue before a server took it. */
  readonly queuedMs?: number | undefined
}

/** One try of the request: its server, how it ended, and why the next one was made. */
export interface TryRecord {
  readonly server: string
  /** The upstream status, when the server answered. */
  readonly status?: number | undefined
  /** The SWY_* code it failed with. */
  readonly code?: string | undefined
  /** Why the request was tried again after it. */
  readonly retry?: RetryReason | undefined
  /** The backoff before the next try, in ms. */
  readonly delayMs?: number | undefined
}

/** A whole explanation (what the access log's `explain` field holds; the header is its short form). */
export interface ExplainRecord {
  /** Live requests: why the request was explained (a trusted address, or the admin token). */
  readonly grant?: 'trusted' | 'token' | undefined
  /** The route that matched: its name, or its index when it has none; null when none did (or before routing). */
  readonly route: string | number | null
  /** The request-side rules and plugins that ran (onRequest, onRoute), in order. */
  readonly filters: readonly string[]
  /** The one of them that answered the request itself (a redirect, a refusal, ...). */
  readonly answeredBy?: string | undefined
  readonly pool?: string | undefined
  readonly choice?: ServerChoice | undefined
  readonly tries: readonly TryRecord[]
  /** Why the last failed try was not tried again. */
  readonly noRetry?: NoRetry | undefined
  /** The SWY_* code the request ended with, if it failed. */
  readonly error?: string | undefined
}
