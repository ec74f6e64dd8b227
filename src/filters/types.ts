/**
 * The request pipeline's contract: the phases a filter may hook, what it sees in each, and the verdict it
 * returns. Built-in rules (one file each beside this one) and user plugins implement the same `Filter`.
 *
 * Phases, in the order a request meets them (after Pingora's `ProxyHttp` and Envoy's filter chain):
 * - `onRequest`: after the head is parsed, before routing (listener-level filters);
 * - `onRoute`: after a route matched, before a server is chosen (route-level filters);
 * - `selectUpstream`: may reorder or filter the pool's best-first candidates (synchronous);
 * - `onForward`: the request as it is first sent upstream, with its body when it was buffered (taps
 *   such as mirroring; synchronous, may not change it);
 * - `onResponse`: the upstream response head, before it is sent to the client;
 * - `responseBody`: an optional streaming transform of the response body (compression);
 * - `onLog`: once, when the request has ended, with its outcome.
 *
 * A filter may be async in `onRequest`, `onRoute` and `onResponse`. A phase whose filters all return
 * synchronously runs with no promise and no closure. A filter that throws or rejects ends the request
 * with `500 SWY_FILTER_ERROR` (its name is in the error message and the log line).
 */
import type { Transform } from 'node:stream'

/** The request head as filters see it: read-only. */
export interface RequestView {
  readonly method: string
  /** The request target as the client sent it (origin-form): path and query. */
  readonly url: string
  /** `url` without the query. */
  readonly path: string
  /** The query with its `?`, or ''. */
  readonly query: string
  /** The Host header (HTTP/2: `:authority`) as sent, port included; undefined when absent. */
  readonly host: string | undefined
  /** `host` without the port, lower-case; '' when absent. */
  readonly hostname: string
  /** What the client spoke to this listener: `https` over TLS. */
  readonly scheme: 'http' | 'https'
  readonly protocol: 'http/1.0' | 'http/1.1' | 'h2'
  /**
   * The client's address as the listener's trusted-proxy rules resolve it: the peer address, or, when
   * the peer is a trusted proxy, the nearest untrusted address of its `X-Forwarded-For`.
   */
  readonly clientIp: string
  /** The address of the connection's peer. */
  readonly peerIp: string
  readonly requestId: string
  /** The first value of a header (case-insensitive name), or undefined. */
  header(name: string): string | undefined
  /** `[name, value, ...]` as received (HTTP/2 pseudo-headers excluded). */
  readonly rawHeaders: readonly string[]
}

/** Changes to the request that is sent upstream. Route rules (`headers`, `rewrite`) write here. */
export interface UpstreamDraft {
  /** Path and query sent upstream (origin-form). */
  path: string
  /** Host header sent upstream; undefined: the pool's `preserveHost` decides. */
  host: string | undefined
  /** Replaces every value of a header (case-insensitive name). */
  setHeader(name: string, value: string): void
  /** Adds a value, keeping the others. */
  addHeader(name: string, value: string): void
  removeHeader(name: string): void
}

/** The route a request matched. */
export interface RouteView {
  /** The route's `name`, if it has one. */
  readonly name: string | undefined
  /** Its position in the listener's `routes` (0-based). */
  readonly index: number
  /** The pool that will serve the request (after any `usePool`); undefined for `redirect`/`respond` routes. */
  readonly pool: string | undefined
}

/** Per-request context, one object for every phase and filter of a request. */
export interface FilterContext<State extends object = Record<string, unknown>> {
  readonly listener: string
  readonly request: RequestView
  readonly upstream: UpstreamDraft
  /** Undefined during `onRequest`. */
  readonly route: RouteView | undefined
  /** Scratch space shared by every phase of this request. */
  readonly state: State
  /** The server of the current (or last) try; undefined before a server is chosen. */
  readonly server: string | undefined
  /**
   * `onRequest`/`onRoute`: sends the request to another pool of the config (by name). Throws when the
   * config has no such pool.
   */
  usePool(pool: string): void
}

/** One server of the pool, as `selectUpstream` sees it. */
export interface Candidate {
  readonly id: string
  readonly host: string
  readonly port: number
  readonly weight: number
  readonly backup: boolean
  /** Requests in flight to the server now (every pool and snapshot that uses its connections). */
  readonly inFlight: number
  /** In-flight requests at which the server is full (circuit breaking); Infinity: no limit. */
  readonly limit: number
}

/** The upstream response head, before it is sent: filters may change it. */
export interface ResponseDraft {
  status: number
  /** First value of a header (case-insensitive), or undefined. */
  header(name: string): string | undefined
  setHeader(name: string, value: string): void
  addHeader(name: string, value: string): void
  removeHeader(name: string): void
}

/** The request as it is first sent upstream (read-only), for taps such as mirroring. */
export interface ForwardedRequest {
  readonly method: string
  readonly path: string
  /** The final `[name, value, ...]` sent upstream. */
  readonly headers: readonly string[]
  /** The whole request body, when it was read first (`bufferBytes`); undefined when it streams or is empty. */
  readonly body: Buffer | undefined
  /** The request has a body (read whole or not). */
  readonly hasBody: boolean
}

/** How a request ended, for `onLog`. */
export interface LogRecord {
  readonly status: number
  /** The SWY_* code when it ended in an error. */
  readonly code: string | undefined
  readonly durationMs: number
  readonly pool: string | undefined
  readonly server: string | undefined
  readonly bytesIn: number
  readonly bytesOut: number
}

/** Answer now, without (further) upstream work. */
export interface Respond {
  readonly kind: 'respond'
  readonly status: number
  readonly headers?: Readonly<Record<string, string>> | undefined
  readonly body?: string | Uint8Array | undefined
}

/** The SWY_* codes a filter may refuse a request with (see core/errors.ts for their statuses). */
export type RejectCode =
  | 'SWY_BAD_REQUEST'
  | 'SWY_UNAUTHORIZED'
  | 'SWY_FORBIDDEN'
  | 'SWY_NO_ROUTE'
  | 'SWY_BODY_TOO_LARGE'
  | 'SWY_RATE_LIMITED'
  | 'SWY_OVERLOADED'
  | 'SWY_AUTH_UNAVAILABLE'

/**
 * Refuse with one of Switchyard's own errors: the status and the body come from the code table (JSON,
 * or text for clients that ask for it; a gRPC status for gRPC calls), the code goes in the log, and
 * `headers` are added (Retry-After, WWW-Authenticate). `close`: send nothing and close the connection
 * (HTTP/2: reset the stream) instead.
 */
export interface Reject {
  readonly kind: 'reject'
  readonly code: RejectCode
  /** For the log; the client sees the code's own text. */
  readonly message?: string | undefined
  readonly headers?: readonly string[] | undefined
  readonly close?: boolean | undefined
}

/** What a filter says: `undefined` or `continue` goes on; `respond` answers at once; `reject` refuses. */
export type Verdict = undefined | { readonly kind: 'continue' } | Respond | Reject

export type MaybeAsync<T> = T | Promise<T>

/** What a hook returns: a verdict, or nothing at all (a hook without `return` goes on). */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a hook that only changes the request return nothing
export type HookResult = MaybeAsync<Verdict | void>

/** What `selectUpstream` returns: the candidates to use, or nothing to keep them. */
// biome-ignore lint/suspicious/noConfusingVoidType: lets a hook that keeps the candidates return nothing
export type Selected = readonly Candidate[] | undefined | void

export interface Filter<State extends object = Record<string, unknown>> {
  /** Shown in logs and errors. */
  readonly name: string
  onRequest?(ctx: FilterContext<State>): HookResult
  onRoute?(ctx: FilterContext<State>): HookResult
  /** Returns the candidates to use, best first (a subset, reordered), or undefined to keep them. */
  selectUpstream?(ctx: FilterContext<State>, candidates: readonly Candidate[]): Selected
  onForward?(ctx: FilterContext<State>, request: ForwardedRequest): void
  onResponse?(ctx: FilterContext<State>, response: ResponseDraft): HookResult
  /**
   * Called once the response head is final: a Transform that the body is streamed through (with
   * backpressure), or undefined to leave it. The filter adjusts the head itself (Content-Encoding,
   * Content-Length) in the same call.
   */
  responseBody?(ctx: FilterContext<State>, response: ResponseDraft): Transform | undefined
  onLog?(ctx: FilterContext<State>, record: LogRecord): void
}
