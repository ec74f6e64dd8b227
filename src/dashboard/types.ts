/**
 * The shapes of the admin API's answers that the dashboard reads (GET /api/v1/openapi.json has them
 * all). Written out here rather than imported from src/admin, whose modules are Node code.
 */

export type ServerState = 'up' | 'down' | 'ejected' | 'draining' | 'disabled'
export type StatusClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx'
export type Series = (number | null)[]

export interface Percentiles {
  readonly p50: number | null
  readonly p95: number | null
  readonly p99: number | null
}

export interface UpstreamLive {
  readonly rps: number | null
  readonly errorRate: number | null
  readonly latencyMs: Percentiles
  readonly histogram: readonly number[]
}

export interface ServerView {
  readonly name: string
  readonly url: string
  readonly weight: number
  readonly backup: boolean
  readonly state: ServerState
  readonly since: string
  readonly inFlight: number
  readonly requests: number
  readonly errors: number
  readonly errorsByCode: Readonly<Record<string, number>>
  readonly retries: number
  readonly ejections: number
  readonly latencyMs: Percentiles
  readonly health: { readonly state: 'up' | 'down'; readonly lastResult: string } | null
  readonly source: 'config' | 'runtime'
  readonly override: Readonly<Record<string, unknown>> | null
  /** In `stats` events only. */
  readonly live?: UpstreamLive
}

export interface PoolView {
  readonly name: string
  readonly algorithm: string
  readonly queued: number
  readonly servers: readonly ServerView[]
  readonly live?: UpstreamLive & { readonly inFlight: number }
}

export interface ListenerView {
  readonly name: string
  readonly protocol: 'http' | 'https' | 'tcp'
  readonly listen: string
  readonly address: string
  readonly inFlight: number
  readonly connections: number
  readonly requests: Readonly<Record<'total' | StatusClass, number>>
  readonly tcpConnections: number
  readonly routes: readonly { readonly name: string | null; readonly pool: string | null }[]
  readonly live?: {
    readonly rps: number | null
    readonly errorRate: number | null
    readonly classes: Readonly<Record<StatusClass, number | null>>
  }
}

/** A tree whose leaves are series (history) or single values (a point). */
export interface Tree<Leaf> {
  [key: string]: Tree<Leaf> | Leaf | undefined
}

export interface StatsHistory {
  intervalMs: number
  windowMs: number
  time: number[]
  bucketsS: number[]
  listeners: Tree<Series>
  pools: Tree<Series>
}

export interface StatsEvent {
  readonly type: 'stats'
  readonly time: string
  readonly intervalMs: number
  readonly pools: readonly PoolView[]
  readonly listeners: readonly ListenerView[]
  /** This reading as one point of the history: same paths, one value each. */
  readonly point: {
    readonly time: number
    readonly listeners: Tree<number | null>
    readonly pools: Tree<number | null>
  }
}

export interface LoggedEvent {
  readonly id: number
  readonly time: string
  readonly type: 'health' | 'ejection' | 'reload' | 'change' | 'worker'
  readonly pool?: string
  readonly server?: string
  readonly state?: string
  readonly reason?: string
  readonly ejected?: boolean
  readonly result?: 'ok' | 'rejected'
  readonly source?: string
  readonly generation?: number
  readonly action?: string
  readonly weight?: number
  readonly worker?: number
  readonly message?: string
}

export interface Status {
  readonly version: string
  readonly generation: number
  readonly startedAt: string
  readonly workers?: readonly { readonly index: number; readonly state: string }[]
}
