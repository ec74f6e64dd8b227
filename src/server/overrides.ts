/**
 * Runtime overrides: the changes made through the admin API (a server's weight or state, servers added
 * or being removed), kept as an overlay on the config that was loaded (the file, or one given whole by
 * `PUT /api/v1/config`). The effective config is `applyOverrides(base, overrides)`; a reload replaces
 * the base and keeps the overlay, which `admin.stateFile` keeps across restarts too.
 *
 * Pure data and functions: no I/O here (see steering.ts for who applies and persists them).
 *
 * - An override names its pool and server. One whose pool is gone from the base is kept (the pool may
 *   come back) but has no effect; `unmatched()` lists them.
 * - A server added at runtime whose name the base now has too: the base's server wins (its URL and
 *   settings); the override's weight and state still apply to it.
 * - `state: active` is kept as a state of its own: it undoes a `drain: true` of the file.
 */
import { z } from 'zod'
import type { PoolConfig, RuntimeConfig, ServerLimits } from '../config/index.js'
import { serverBackend } from '../config/normalize.js'
import type { Backend } from '../core/backend.js'

/** The states a runtime change may set. */
export const RUNTIME_STATES = ['active', 'draining', 'disabled'] as const
export type RuntimeState = (typeof RUNTIME_STATES)[number]

const serverOverride = z.strictObject({
  weight: z.int().min(0).max(1000).optional(),
  state: z.enum(RUNTIME_STATES).optional(),
  /** Added at runtime: absent from the base config. */
  added: z.strictObject({ url: z.string(), backup: z.boolean() }).optional(),
  /** A removal was asked: the server drains, then goes (`removed`) once its requests are done. */
  removal: z.enum(['draining', 'removed']).optional(),
  /** When the override last changed (ISO 8601). */
  changedAt: z.string(),
})

export type ServerOverride = z.output<typeof serverOverride>

/** The overlay, as kept in memory and in `admin.stateFile`. */
export const overridesSchema = z.strictObject({
  version: z.literal(1),
  /** Pool name → server name → override. */
  pools: z.record(z.string(), z.record(z.string(), serverOverride)),
})

export type Overrides = z.output<typeof overridesSchema>

export const NO_OVERRIDES: Overrides = Object.freeze({ version: 1, pools: Object.freeze({}) }) as Overrides

export function overridesEmpty(o: Overrides): boolean {
  return Object.values(o.pools).every((servers) => Object.keys(servers).length === 0)
}

/** The override of one server, or undefined. */
export function overrideOf(o: Overrides, pool: string, server: string): ServerOverride | undefined {
  return o.pools[pool]?.[server]
}

/** A copy of `o` with one server's override replaced (undefined: dropped). */
export function withOverride(o: Overrides, pool: string, server: string, next: ServerOverride | undefined): Overrides {
  const servers = { ...(o.pools[pool] ?? {}) }
  if (next === undefined) delete servers[server]
  else servers[server] = next
  const pools = { ...o.pools, [pool]: servers }
  if (Object.keys(servers).length === 0) delete pools[pool]
  return { version: 1, pools }
}

/** Overrides whose pool, or (for servers not added at runtime) whose server, the base lacks. */
export function unmatched(base: RuntimeConfig, o: Overrides): { pool: string; server: string }[] {
  const out: { pool: string; server: string }[] = []
  for (const [pool, servers] of Object.entries(o.pools)) {
    const pc = base.pools.find((p) => p.name === pool)
    for (const [server, ov] of Object.entries(servers))
      if (pc === undefined || (ov.added === undefined && !pc.backends.some((b) => b.id === server)))
        out.push({ pool, server })
  }
  return out
}

/** Whether a `tcp` listener routes to `pool` (its servers may then be `tcp://` URLs). */
export function tcpPool(config: RuntimeConfig, pool: string): boolean {
  return config.listeners.some((l) => l.protocol === 'tcp' && l.routes.some((r) => r.pool === pool))
}

/**
 * The effective config: the base with the overlay applied. Servers added at runtime are built as the
 * file's are (a URL that no longer suits the pool, after a reload changed its protocol, is left out).
 */
export function applyOverrides(base: RuntimeConfig, o: Overrides): RuntimeConfig {
  if (overridesEmpty(o)) return base
  return {
    ...base,
    pools: base.pools.map((pc) => {
      const servers = o.pools[pc.name]
      return servers === undefined ? pc : applyToPool(pc, servers, tcpPool(base, pc.name))
    }),
  }
}

function applyToPool(pc: PoolConfig, servers: Readonly<Record<string, ServerOverride>>, tcp: boolean): PoolConfig {
  const backends: Backend[] = []
  const limits: Record<string, ServerLimits> = { ...pc.serverLimits }
  for (const b of pc.backends) {
    const ov = servers[b.id]
    if (ov?.removal === 'removed') {
      delete limits[b.id]
      continue
    }
    backends.push(ov === undefined ? b : overridden(b, ov))
  }
  for (const [id, ov] of Object.entries(servers)) {
    if (ov.added === undefined || ov.removal === 'removed' || pc.backends.some((b) => b.id === id)) continue
    const built = serverBackend(pc, tcp, {
      url: ov.added.url,
      name: id,
      weight: ov.weight ?? 1,
      backup: ov.added.backup,
    })
    if (typeof built === 'string') continue
    backends.push(overridden(built, ov))
    limits[id] = { maxConnections: pc.connections.maxPerServer, maxPending: pc.connections.maxPending }
  }
  return { ...pc, backends, serverLimits: limits }
}

function overridden(b: Backend, ov: ServerOverride): Backend {
  // A server being removed drains, unless it was disabled (it stays out).
  const state = ov.removal === 'draining' && ov.state !== 'disabled' ? 'draining' : ov.state
  return {
    ...b,
    weight: ov.weight ?? b.weight,
    draining: state === undefined ? b.draining : state === 'draining',
    disabled: state === 'disabled',
  }
}

/** A server with a runtime override in force, and what it is now (`switchyard_override_state`). */
export interface OverrideState {
  readonly pool: string
  readonly server: string
  /** `removing`: a removal drains it; `removed`: a server of the base kept out. */
  readonly state: RuntimeState | 'removing' | 'removed'
  /** The weight the override sets; undefined when it sets none. */
  readonly weight: number | undefined
}

/**
 * Every override in force on `base` (those `unmatched` lists are left out), with the server's state now:
 * the override's, else the base's (`draining` for a server the file drains, else `active`).
 */
export function overrideStates(base: RuntimeConfig, o: Overrides): OverrideState[] {
  const out: OverrideState[] = []
  for (const [pool, servers] of Object.entries(o.pools)) {
    const pc = base.pools.find((p) => p.name === pool)
    if (pc === undefined) continue
    for (const [server, ov] of Object.entries(servers)) {
      const own = pc.backends.find((b) => b.id === server)
      if (own === undefined && ov.added === undefined) continue
      let state: OverrideState['state']
      if (ov.removal === 'removed') state = 'removed'
      else if (ov.removal === 'draining') state = ov.state === 'disabled' ? 'disabled' : 'removing'
      else state = ov.state ?? (own?.draining === true ? 'draining' : 'active')
      out.push({ pool, server, state, weight: ov.weight })
    }
  }
  return out
}
