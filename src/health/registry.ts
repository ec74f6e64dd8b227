/**
 * Every health check type, listed explicitly: one file each, one line in `HEALTH_CHECKS`. That table is
 * the only list: the config union for `healthCheck:` (keyed on `type`), the list of type names and the
 * probe factory are derived from it.
 */
import { z } from 'zod'
import type { Probe } from './check.js'
import * as grpcCheck from './grpc-check.js'
import * as httpCheck from './http-check.js'
import * as tcpCheck from './tcp-check.js'

/** The config fragment of one check type: a strict object whose `type` is its name. */
export type CheckSchema<Name extends string = string> = z.ZodObject<
  { type: z.ZodLiteral<Name> } & z.core.$ZodLooseShape,
  z.core.$strict
>

/** Check type name → its config fragment and a probe factory, with the option type erased. */
export type HealthCheckTable = {
  readonly [name: string]: { readonly schema: CheckSchema; readonly create: (options: never) => Probe }
}

const entry = <S extends CheckSchema>(schema: S, create: (options: z.output<S>) => Probe) =>
  ({ schema, create }) as const

export const HEALTH_CHECKS = {
  http: entry(httpCheck.schema, httpCheck.create),
  tcp: entry(tcpCheck.schema, tcpCheck.create),
  grpc: entry(grpcCheck.schema, grpcCheck.create),
} as const satisfies HealthCheckTable

type Checks = typeof HEALTH_CHECKS
type Name = keyof Checks & string
type Schemas = Checks[Name]['schema']

// Each key is the `type` literal of its own schema: a typo in either fails to compile.
type Misnamed = { [K in Name]: Checks[K]['schema'] extends CheckSchema<K> ? never : K }[Name]
const _namesMatch: [Misnamed] extends [never] ? true : Misnamed = true
void _namesMatch

/** The check type names, as written in configs. */
export const CHECK_TYPES = Object.keys(HEALTH_CHECKS) as [Name, ...Name[]]

export const healthCheckSchema = z.discriminatedUnion(
  'type',
  Object.values(HEALTH_CHECKS).map((e) => e.schema) as [Schemas, ...Schemas[]],
)

export type HealthCheckOptions = z.infer<typeof healthCheckSchema>

/** A probe for validated options, looked up in `table` (the built-ins unless a caller registers more). */
export function createProbe(options: HealthCheckOptions, table: HealthCheckTable = HEALTH_CHECKS): Probe {
  const found = Object.hasOwn(table, options.type) ? table[options.type] : undefined
  if (found === undefined) throw new Error(`unknown health check type ${JSON.stringify(options.type)}`)
  // The options were validated by this entry's own schema (the union is keyed on the same name).
  return found.create(options as never)
}
