/**
 * The admin API's routes under /api/v1, declared once: method, path template, the zod schema that
 * validates the request body, and the schemas of the answers. The server (server.ts) dispatches
 * from this table and validates with these schemas; `openApiDocument()` describes the same table as
 * OpenAPI 3.1 (whose schema dialect is JSON Schema 2020-12, what `z.toJSONSchema` writes).
 */
import { z } from 'zod'
import { nameSchema } from '../config/schema.js'
import { DURATION_BUCKETS_S } from '../metrics/index.js'
import { EVENT_TYPES, STREAM_ONLY_TYPES } from '../server/events.js'
import { RUNTIME_STATES } from '../server/overrides.js'
import { VERSION } from '../version.js'

// --- request bodies ---------------------------------------------------------------------------

export const serverPatchSchema = z
  .strictObject({
    weight: z.int().min(0).max(1000).optional().describe('Relative share of new requests, 0 to 1000.'),
    state: z
      .enum(RUNTIME_STATES)
      .optional()
      .describe(
        '`draining`: no new requests or sessions, bound sessions stay. `disabled`: out now, sessions move. `active`: back in rotation (also undoes a `drain: true` of the file, and a removal under way).',
      ),
  })
  .refine((p) => p.weight !== undefined || p.state !== undefined, { error: 'expected `weight` or `state`' })
  .describe('A change to one server.')

export const serverAddSchema = z
  .strictObject({
    url: z.string().describe('The server: `http://host:port` or `https://host:port` (`tcp://` in a tcp pool).'),
    name: nameSchema.optional().describe('Its name in the pool. Default: `host:port`.'),
    weight: z.int().min(0).max(1000).default(1).describe('Relative share of new requests, 0 to 1000.'),
    backup: z.boolean().default(false).describe('Used only while no primary server can take requests.'),
  })
  .describe('A server to add to the pool.')

// --- answers ----------------------------------------------------------------------------------

const percentiles = z.object({ p50: z.number().nullable(), p95: z.number().nullable(), p99: z.number().nullable() })

const override = z
  .object({
    weight: z.int().optional(),
    state: z.enum(RUNTIME_STATES).optional(),
    added: z.object({ url: z.string(), backup: z.boolean() }).optional(),
    removal: z.enum(['draining', 'removed']).optional(),
    changedAt: z.string(),
  })
  .describe('What the runtime overlay sets on a server.')

const serverView = z.object({
  name: z.string(),
  url: z.string(),
  weight: z.int(),
  backup: z.boolean(),
  state: z.enum(['up', 'down', 'ejected', 'draining', 'disabled']),
  since: z.string().describe('When it entered `state` (ISO 8601).'),
  inFlight: z.int(),
  requests: z.int().describe('Tries sent to it since it joined.'),
  errors: z.int(),
  errorsByCode: z.record(z.string(), z.int()).describe('Failed tries by SWY_* code, or `5xx` for a 5xx answer.'),
  retries: z.int().describe('Requests tried again after a try to it failed.'),
  ejections: z.int().describe('Times passive health ejected it (with workers: summed, each worker ejects on its own).'),
  latencyMs: percentiles.describe('Whole tries over the last minute; null without traffic.'),
  ttfbMs: percentiles.describe('Try start to response head over the last minute.'),
  histogram: z
    .object({ counts: z.array(z.int()), sum: z.number(), count: z.int() })
    .describe(
      `Whole-try counts per bucket since it joined (not cumulative); bounds in s: ${DURATION_BUCKETS_S.join(', ')}, +Inf.`,
    ),
  health: z.object({ state: z.enum(['up', 'down']), lastResult: z.string() }).nullable(),
  source: z.enum(['config', 'runtime']),
  override: override.nullable(),
})

const poolView = z.object({
  name: z.string(),
  algorithm: z.string(),
  queued: z.int(),
  servers: z.array(serverView),
})

const classCounts = z.object({
  total: z.int(),
  '1xx': z.int(),
  '2xx': z.int(),
  '3xx': z.int(),
  '4xx': z.int(),
  '5xx': z.int(),
})

const listenerView = z.object({
  name: z.string(),
  protocol: z.enum(['http', 'https', 'tcp']),
  listen: z.string(),
  address: z.string(),
  inFlight: z.int().describe('Requests (TCP: connections) being handled now.'),
  connections: z.int().describe('Client connections open now.'),
  requests: classCounts.describe('Requests answered since start, by status class (zeros for TCP).'),
  tcpConnections: z.int().describe('TCP: connections ended since start (0 for HTTP).'),
  rules: z.array(z.string()),
  routes: z.array(
    z.object({
      name: z.string().nullable(),
      match: z.unknown(),
      pool: z.string().nullable(),
      rules: z.array(z.string()),
    }),
  ),
})

const errorBody = z.object({
  error: z.string(),
  issues: z
    .array(
      z.object({
        file: z.string().optional(),
        line: z.int().optional(),
        col: z.int().optional(),
        path: z.string(),
        message: z.string(),
      }),
    )
    .optional(),
})

const generation = z.object({ generation: z.int() })

const overridesView = z.object({
  overrides: z.record(z.string(), z.record(z.string(), override)),
  unmatched: z.array(z.object({ pool: z.string(), server: z.string() })),
  stateFile: z.string().nullable(),
})

const loggedEvent = z
  .object({
    id: z.int(),
    time: z.string(),
    type: z.enum(EVENT_TYPES),
  })
  .catchall(z.unknown())
  .describe('One event of the log; the other fields depend on `type`.')

const rate = z.number().nullable()

const upstreamLive = z.object({
  rps: rate.describe('Tries per second over the last interval; null on a first reading.'),
  errorRate: rate.describe('Failed tries over all tries in the last interval, 0 to 1; null without tries.'),
  latencyMs: percentiles.describe('Whole tries that ended in the last 5 s.'),
  histogram: z
    .array(z.int())
    .describe('Whole-try counts per bucket over the last 15 minutes (bounds: `bucketsS` of /api/v1/stats).'),
})

const listenerLive = z.object({
  rps: rate.describe('Requests answered (TCP: connections ended) per second over the last interval.'),
  errorRate: rate.describe('5xx answers (TCP: connections that reached no server) over all, 0 to 1.'),
  classes: z
    .object({ '1xx': rate, '2xx': rate, '3xx': rate, '4xx': rate, '5xx': rate })
    .describe('Answers per second.'),
})

const statsEvent = z
  .object({
    type: z.enum(STREAM_ONLY_TYPES),
    time: z.string(),
    intervalMs: z.int(),
    pools: z.array(
      poolView.extend({
        live: upstreamLive.extend({ inFlight: z.int() }),
        servers: z.array(serverView.extend({ live: upstreamLive })),
      }),
    ),
    listeners: z.array(listenerView.extend({ live: listenerLive })),
    point: z
      .object({
        time: z.number(),
        listeners: z.record(z.string(), z.unknown()),
        pools: z.record(z.string(), z.unknown()),
      })
      .describe('This reading as one point of `GET /api/v1/stats`: the same paths, one number (or null) each.'),
  })
  .describe('Every second: each pool, server and listener with its live numbers. No `id`; never replayed.')

const eventSchema = z.union([loggedEvent, statsEvent])

const series = z.array(z.number().nullable()).describe('One value per point of `time`; null: nothing to measure.')
const upstreamSeries = z.object({
  rps: series,
  errorRate: series,
  inFlight: series,
  p50: series,
  p95: series,
  p99: series,
})
const statsHistory = z.object({
  intervalMs: z.int(),
  windowMs: z.int(),
  time: z.array(z.number()).describe('ms since the epoch, oldest first.'),
  bucketsS: z.array(z.number()).describe('Upper bounds of the histogram buckets, in s; a last bucket is +Inf.'),
  listeners: z.record(
    z.string(),
    z.object({
      rps: series,
      errorRate: series,
      connections: series,
      inFlight: series,
      '1xx': series,
      '2xx': series,
      '3xx': series,
      '4xx': series,
      '5xx': series,
    }),
  ),
  pools: z.record(z.string(), upstreamSeries.extend({ servers: z.record(z.string(), upstreamSeries) })),
})

// --- the table --------------------------------------------------------------------------------

export interface Answer {
  readonly description: string
  readonly schema?: z.ZodType
  readonly contentType?: string
}

export interface RouteSpec {
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE'
  /** `/api/v1/pools/{pool}`: `{name}` matches one path segment (percent-decoded). */
  readonly path: string
  readonly summary: string
  readonly body?: { readonly schema: z.ZodType; readonly contentType: string; readonly description?: string }
  readonly answers: Readonly<Record<number, Answer>>
}

const notFound: Answer = { description: 'No such pool or server.', schema: errorBody }
const badBody: Answer = { description: 'The body is not valid; `issues` says where.', schema: errorBody }

export const ROUTES = {
  listPools: {
    method: 'GET',
    path: '/api/v1/pools',
    summary: 'Every pool with its servers: state, weight, load, counts and latency.',
    answers: { 200: { description: 'The pools.', schema: z.object({ pools: z.array(poolView) }) } },
  },
  getPool: {
    method: 'GET',
    path: '/api/v1/pools/{pool}',
    summary: 'One pool with its servers.',
    answers: { 200: { description: 'The pool.', schema: poolView }, 404: notFound },
  },
  addServer: {
    method: 'POST',
    path: '/api/v1/pools/{pool}/servers',
    summary: 'Adds a server to the pool, now. Kept across reloads (and restarts, with admin.stateFile).',
    body: { schema: serverAddSchema, contentType: 'application/json' },
    answers: {
      201: { description: 'Added: the server as it serves now.', schema: serverView },
      400: badBody,
      404: notFound,
      409: { description: 'The pool has a server of that name.', schema: errorBody },
    },
  },
  getServer: {
    method: 'GET',
    path: '/api/v1/pools/{pool}/servers/{server}',
    summary: 'One server.',
    answers: { 200: { description: 'The server.', schema: serverView }, 404: notFound },
  },
  updateServer: {
    method: 'PATCH',
    path: '/api/v1/pools/{pool}/servers/{server}',
    summary: "Sets a server's weight or state, now, on every worker.",
    body: { schema: serverPatchSchema, contentType: 'application/json' },
    answers: {
      200: { description: 'Applied: the server as it serves now.', schema: serverView },
      400: badBody,
      404: notFound,
    },
  },
  removeServer: {
    method: 'DELETE',
    path: '/api/v1/pools/{pool}/servers/{server}',
    summary: 'Drains the server, then removes it once its requests are done (or after shutdown.gracePeriod).',
    answers: {
      202: { description: 'Draining; a `change` event tells of the removal.', schema: serverView },
      404: notFound,
    },
  },
  listListeners: {
    method: 'GET',
    path: '/api/v1/listeners',
    summary: 'Every listener with its routes and rules.',
    answers: { 200: { description: 'The listeners.', schema: z.object({ listeners: z.array(listenerView) }) } },
  },
  getStats: {
    method: 'GET',
    path: '/api/v1/stats',
    summary:
      'The live numbers of the last 15 minutes, one point a second, column by column: requests per second, error rate, in flight and p50/p95/p99 of every pool and server; requests per second by status class, connections and in flight of every listener.',
    answers: { 200: { description: 'The history.', schema: statsHistory } },
  },
  getConfig: {
    method: 'GET',
    path: '/api/v1/config',
    summary: 'The effective configuration (the loaded one with the runtime overrides), secrets redacted.',
    answers: { 200: { description: 'The normalized configuration.', schema: z.record(z.string(), z.unknown()) } },
  },
  putConfig: {
    method: 'PUT',
    path: '/api/v1/config',
    summary: 'Applies a whole configuration, as a reload does. It lasts until the next reload from the file.',
    body: {
      schema: z.string(),
      contentType: 'application/yaml',
      description: 'The config as YAML (or JSON, also accepted as application/json).',
    },
    answers: {
      200: { description: 'Applied.', schema: generation },
      400: {
        description: 'Not valid: the issues `switchyard validate` prints, with line and column.',
        schema: errorBody,
      },
    },
  },
  reload: {
    method: 'POST',
    path: '/api/v1/reload',
    summary: 'Reloads the config file.',
    answers: {
      200: { description: 'Applied.', schema: generation },
      400: { description: 'The file is not valid (positioned issues); the running config stays.', schema: errorBody },
      409: { description: 'This instance was not started from a file.', schema: errorBody },
    },
  },
  getOverrides: {
    method: 'GET',
    path: '/api/v1/overrides',
    summary: 'The runtime overlay: every change made through the API that is in force.',
    answers: { 200: { description: 'The overlay.', schema: overridesView } },
  },
  clearOverrides: {
    method: 'DELETE',
    path: '/api/v1/overrides',
    summary: 'Drops every runtime change: the loaded configuration serves as it is.',
    answers: { 200: { description: 'Dropped.', schema: generation } },
  },
  events: {
    method: 'GET',
    path: '/api/v1/events',
    summary:
      'Server-Sent Events: health transitions, ejections, reloads, runtime changes, worker restarts; the kept history first (after `Last-Event-ID`, when sent). And every second a `stats` event, not kept, without an id.',
    answers: {
      200: {
        description: 'An event stream; each `data:` is one event.',
        schema: eventSchema,
        contentType: 'text/event-stream',
      },
    },
  },
  openapi: {
    method: 'GET',
    path: '/api/v1/openapi.json',
    summary: 'This document.',
    answers: { 200: { description: 'OpenAPI 3.1.', schema: z.record(z.string(), z.unknown()) } },
  },
} as const satisfies Record<string, RouteSpec>

export type OperationId = keyof typeof ROUTES

/** A route matched: its operation and path parameters; `methods` when the path exists for other methods. */
export type RouteMatch =
  | { readonly kind: 'match'; readonly operation: OperationId; readonly params: Readonly<Record<string, string>> }
  | { readonly kind: 'method'; readonly allow: readonly string[] }
  | { readonly kind: 'none' }

const COMPILED = (Object.entries(ROUTES) as [OperationId, RouteSpec][]).map(([operation, spec]) => {
  const names: string[] = []
  const source = spec.path.replace(/\{(\w+)\}/g, (_, n: string) => {
    names.push(n)
    return '([^/]+)'
  })
  return { operation, method: spec.method, names, re: new RegExp(`^${source}$`) }
})

export function matchRoute(method: string, path: string): RouteMatch {
  const allow: string[] = []
  for (const r of COMPILED) {
    const m = r.re.exec(path)
    if (m === null) continue
    if (r.method !== method && !(method === 'HEAD' && r.method === 'GET')) {
      allow.push(r.method)
      continue
    }
    const params: Record<string, string> = {}
    try {
      r.names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1] as string)
      })
    } catch {
      return { kind: 'none' }
    }
    return { kind: 'match', operation: r.operation, params }
  }
  return allow.length > 0 ? { kind: 'method', allow } : { kind: 'none' }
}

/** The OpenAPI 3.1 document of the table. */
export function openApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {}
  for (const [operationId, spec] of Object.entries(ROUTES) as [OperationId, RouteSpec][]) {
    const params = [...spec.path.matchAll(/\{(\w+)\}/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
      description: m[1] === 'pool' ? 'Pool name.' : 'Server name (default `host:port`), percent-encoded.',
    }))
    const responses: Record<string, unknown> = {}
    for (const [status, answer] of Object.entries(spec.answers) as [string, Answer][])
      responses[status] = {
        description: answer.description,
        ...(answer.schema === undefined
          ? {}
          : {
              content: { [answer.contentType ?? 'application/json']: { schema: jsonSchema(answer.schema, 'output') } },
            }),
      }
    responses['401'] = { description: 'The admin token is missing or wrong.' }
    const operation: Record<string, unknown> = { operationId, summary: spec.summary, responses }
    if (params.length > 0) operation.parameters = params
    if (spec.body !== undefined)
      operation.requestBody = {
        required: true,
        ...(spec.body.description === undefined ? {} : { description: spec.body.description }),
        content: { [spec.body.contentType]: { schema: jsonSchema(spec.body.schema, 'input') } },
      }
    const entry = paths[spec.path] ?? {}
    entry[spec.method.toLowerCase()] = operation
    paths[spec.path] = entry
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Switchyard admin API',
      version: VERSION,
      description:
        'Read and steer a running Switchyard. Every path needs `Authorization: Bearer <admin token>` when the admin API has a token.',
    },
    components: { securitySchemes: { adminToken: { type: 'http', scheme: 'bearer' } } },
    security: [{ adminToken: [] }],
    paths,
  }
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): unknown {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<
    string,
    unknown
  >
  return rest
}
