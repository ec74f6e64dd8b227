/**
 * How a pool chose the server of one admitted request, described right after the admission (before
 * the first try starts, so that load-aware scores are those the pick compared): the balancer's scores
 * of the first candidates (Balancer#describe), every server that could not take the request and why
 * (UpstreamPool#standing), and what stickiness decided. Shared by the live path and the config test
 * kit; never called for a request that is not explained.
 */
import { cookieValue, headerValue, type KeySource } from '../balancer/hash-key.js'
import type { Balancer, PickReport } from '../balancer/index.js'
import type { Backend } from '../core/backend.js'
import type { AdmitRequest, MemberStanding, Selection, UpstreamPool } from '../upstream/pool.js'
import {
  MAX_CANDIDATES,
  type ScoredServer,
  type ServerChoice,
  type SkippedServer,
  type SkipReason,
  type StickyDecision,
} from './model.js'

/** What admission gave the request. */
export interface Admitted {
  /** The first choice; undefined when admission found no server. */
  readonly picked: Selection | undefined
  /** The Set-Cookie binding that goes with the response, if one does. */
  readonly setCookie: string | undefined
  /** The candidates after the first, in the order a retry would walk them (PoolLease#upcoming). */
  readonly upcoming: readonly Selection[]
  /** The `selectUpstream` filters that ran over the candidates. */
  readonly selectedBy: readonly string[]
  readonly queuedMs?: number | undefined
}

export function describeChoice(pool: UpstreamPool, request: AdmitRequest, admitted: Admitted): ServerChoice {
  const { panic, members } = pool.standing()
  const byId = new Map(members.map((m) => [m.backend.id, m]))
  const picked = admitted.picked?.backend
  const primariesOut = picked === undefined || picked.backup
  const skipped: SkippedServer[] = []
  for (const m of members) {
    if (m.backend.id === picked?.id || (m.backend.backup && !primariesOut)) continue
    const reason = skipReason(m, panic)
    if (reason !== undefined)
      skipped.push(
        m.ejectedBy === undefined
          ? { server: m.backend.id, reason }
          : { server: m.backend.id, reason, cause: m.ejectedBy },
      )
  }
  const sticky =
    request.keySource === undefined ? undefined : describeSticky(pool, request.keySource, admitted, byId, panic)
  const byBinding =
    sticky !== undefined && (sticky.decision === 'hit' || sticky.decision === 'renewed' || sticky.decision === 'hash')
  // The servers the pool would try, in order: the pick, then those a retry would take next.
  const order: Backend[] = []
  if (picked !== undefined) order.push(picked)
  for (const s of admitted.upcoming) {
    if (order.length >= MAX_CANDIDATES) break
    const m = byId.get(s.backend.id)
    if (m !== undefined && skipReason(m, panic) === undefined && !order.some((b) => b.id === s.backend.id))
      order.push(s.backend)
  }
  const primary = picked?.backup === true ? pool.backupBalancer : pool.balancer
  const report = byBinding
    ? undefined
    : describePick(
        primary,
        request,
        order.filter((b) => b.backup === picked?.backup),
      )
  const other =
    picked?.backup === true
      ? undefined
      : describePick(
          pool.backupBalancer,
          request,
          order.filter((b) => b.backup),
        )
  const scores = new Map([...(report?.servers ?? []), ...(other?.servers ?? [])].map((s) => [s.id, s]))
  const candidates = order.map((b): ScoredServer => {
    const s = scores.get(b.id)
    const detail =
      s?.detail === undefined ? undefined : Object.fromEntries(Object.entries(s.detail).map(([k, v]) => [k, round(v)]))
    const out: ScoredServer = {
      server: b.id,
      score: s?.score === undefined ? undefined : round(s.score),
      note: s?.note ?? '',
      detail,
    }
    return b.backup ? { ...out, backup: true } : out
  })
  const balance = pool.config.balance
  const hashOn =
    'hashOn' in balance ? String(balance.hashOn) : balance.algorithm === 'ip-hash' ? 'client-ip' : undefined
  const hash = report?.hash
  return {
    pool: pool.name,
    algorithm: primary?.algorithm ?? pool.balancer.algorithm,
    method: byBinding ? 'sticky' : admitted.selectedBy.length > 0 ? 'select' : (report?.method ?? 'first'),
    hashOn: byBinding ? undefined : hashOn,
    hash:
      hash === undefined
        ? undefined
        : { value: hash.value.toString(16).padStart(8, '0'), unit: hash.unit, at: hash.at, size: hash.size },
    panic,
    picked: picked?.id,
    candidates,
    skipped,
    sticky,
    selectedBy: admitted.selectedBy.length > 0 ? admitted.selectedBy : undefined,
    queuedMs: admitted.queuedMs,
  }
}

/** Three decimals: what the log needs of a score. */
function round(n: number): number {
  return Math.round(n * 1000) / 1000
}

/** Why a member cannot take a new request now; undefined when it can. */
function skipReason(m: MemberStanding, panic: boolean): SkipReason | undefined {
  const state = m.state
  if (state === 'disabled' || state === 'draining') return state
  if ((state === 'down' || state === 'ejected') && !panic) return state
  if (m.full) return 'full'
  if (m.backend.weight === 0) return 'weight-0'
  return undefined
}

function describePick(
  balancer: Balancer | undefined,
  request: AdmitRequest,
  servers: readonly Backend[],
): PickReport | undefined {
  if (balancer?.describe === undefined || servers.length === 0) return undefined
  return balancer.describe(request.ctx, servers)
}

/** What the pool's stickiness decided for the request (the pool has `sticky`, so `src` was read). */
function describeSticky(
  pool: UpstreamPool,
  src: KeySource,
  admitted: Admitted,
  byId: ReadonlyMap<string, MemberStanding>,
  panic: boolean,
): StickyDecision | undefined {
  const sticky = pool.sticky
  if (sticky === undefined) return undefined
  const c = sticky.config
  const picked = admitted.picked?.backend.id
  const setCookie = admitted.setCookie !== undefined
  const stateOf = (id: string): SkipReason | 'gone' | undefined => {
    const m = byId.get(id)
    return m === undefined ? 'gone' : skipReason(m, panic)
  }
  switch (c.mode) {
    case 'cookie':
    case 'app-cookie': {
      const name = c.mode === 'cookie' ? c.cookie.name : c.cookie
      const mode = c.mode
      if (cookieValue(src.rawHeaders, name) === undefined) return { mode, decision: 'new', setCookie }
      const bound = sticky.bound(src)
      if (typeof bound !== 'string') return { mode, decision: mode === 'cookie' ? 'invalid' : 'unknown', setCookie }
      if (bound === picked) return { mode, decision: setCookie ? 'renewed' : 'hit', bound, setCookie }
      return { mode, decision: 'rebound', bound, boundState: stateOf(bound), setCookie }
    }
    case 'client-ip':
    case 'header': {
      const key =
        c.mode === 'client-ip' || headerValue(src.rawHeaders, c.header) === undefined
          ? 'client-ip'
          : `header:${c.header}`
      const ring = sticky.bound(src)
      let first: string | undefined
      if (ring !== undefined && typeof ring !== 'string')
        for (const b of ring) {
          first = b.id
          break
        }
      // The ring's first server that can take it: the key's own, or the next when that one cannot.
      if (first === undefined || first === picked) return { mode: c.mode, decision: 'hash', key, setCookie }
      return { mode: c.mode, decision: 'hash', bound: first, boundState: stateOf(first), key, setCookie }
    }
    default: {
      const unknown: never = c
      throw new Error(`unknown sticky mode ${JSON.stringify(unknown)}`)
    }
  }
}
