/**
 * What a routed request asks of its pool, and the head each try sends: shared by the exchange and the
 * config test kit (testkit/explain.ts), so that what `explain` reports is what a request does.
 */
import type { KeySource, PickContext } from '../balancer/index.js'
import type { Candidate, Filter } from '../filters/types.js'
import type { AdmitRequest, Selection, UpstreamPool } from '../upstream/pool.js'
import { type RequestHead, type UpstreamHeaders, upstreamRequestHeaders } from './headers.js'
import type { Inbound } from './request.js'

/** The admission request: the pick context (hash key), the sticky key source, the `selectUpstream` phase. */
export function admitRequestOf(inbound: Inbound, pool: UpstreamPool, selectFilters: readonly Filter[]): AdmitRequest {
  const keyOf = pool.keyOf
  // The request head is read for a key only by hashing and sticky pools.
  const src: KeySource | undefined =
    keyOf === undefined && pool.sticky === undefined
      ? undefined
      : { clientIp: inbound.clientIp, rawHeaders: inbound.client.rawHeaders, url: inbound.url }
  const ctx: PickContext =
    keyOf === undefined || src === undefined
      ? { clientIp: inbound.clientIp }
      : { clientIp: inbound.clientIp, hashKey: keyOf(src) }
  return {
    ctx,
    keySource: pool.sticky === undefined ? undefined : src,
    select: selectFilters.length === 0 ? undefined : (list) => selectUpstream(inbound, selectFilters, list),
  }
}

/** The `selectUpstream` phase over the pool's available candidates. */
function selectUpstream(
  inbound: Inbound,
  filters: readonly Filter[],
  list: readonly Selection[],
): readonly Selection[] {
  let chosen: readonly Candidate[] = list.map(candidateOf)
  const ctx = inbound.context()
  for (const f of filters) chosen = (f.selectUpstream as NonNullable<Filter['selectUpstream']>)(ctx, chosen) ?? chosen
  const byId = new Map(list.map((s) => [s.backend.id, s]))
  return chosen.flatMap((c) => byId.get(c.id) ?? [])
}

function candidateOf(s: Selection): Candidate {
  const b = s.backend
  return {
    id: b.id,
    host: b.host,
    port: b.port,
    weight: b.weight,
    backup: b.backup,
    inFlight: s.load.inFlight,
    limit: s.limit,
  }
}

/**
 * The header array one try sends: `head.headers` (extended in place) plus the headers that name
 * `{server}`, Host and the forwarding headers, with how many of them the engine need not check.
 * `selection` undefined: no server chosen yet.
 */
export function tryHeaders(
  inbound: Inbound,
  pool: UpstreamPool,
  selection: Selection | undefined,
  head: RequestHead,
): UpstreamHeaders {
  const rt = inbound.rt
  const perTry = inbound.perTryHeaders
  if (perTry !== undefined)
    for (const [name, template] of perTry)
      head.headers.push(
        name,
        selection === undefined ? template : template.replaceAll('{server}', selection.backend.id),
      )
  return upstreamRequestHeaders(
    head,
    {
      clientIp: inbound.peerIp,
      proto: rt.proto,
      requestId: inbound.requestId,
      requestIdHeader: rt.config.requestId.header,
      upstreamHost: inbound.upstreamHost ?? (pool.config.preserveHost ? undefined : selection?.hostHeader),
      upstreamHostChecked: inbound.upstreamHost === undefined,
    },
    rt.forwarding,
  )
}
