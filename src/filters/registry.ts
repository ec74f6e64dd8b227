/**
 * Every built-in rule, listed once: its config key, where it may be written, its schema and its
 * factory. The config schema (the keys of routes and listeners), the list of names and the filters a
 * snapshot compiles are all derived from this table; nothing else names a rule. The table's order is
 * the order the rules run inward (defences first, then answers, rewrites, headers and taps); outward phases run
 * in reverse.
 */
import type { z } from 'zod'
import * as access from './access.js'
import * as auth from './auth.js'
import * as compress from './compress.js'
import type { FilterEnv, RuleLevel } from './env.js'
import * as headers from './headers.js'
import * as mirror from './mirror.js'
import * as rateLimit from './rate-limit.js'
import * as redirect from './redirect.js'
import * as respond from './respond.js'
import * as rewrite from './rewrite.js'
import * as securityHeaders from './security-headers.js'
import * as split from './split.js'
import type { Filter } from './types.js'

interface Traits<L extends readonly RuleLevel[]> {
  readonly levels: L
  /** The rule answers every request it sees: a route with it needs no pool. */
  readonly answers?: boolean
  /** The rule chooses the pool: a route with it names none. */
  readonly choosesPool?: boolean
}

interface RuleEntry<S extends z.ZodType> extends Traits<readonly RuleLevel[]> {
  readonly schema: S
  readonly create: (options: z.output<S>, env: FilterEnv) => Filter
}

function rule<S extends z.ZodType, const L extends readonly RuleLevel[]>(
  schema: S,
  traits: Traits<L>,
  create: (options: z.output<S>, env: FilterEnv) => Filter,
): RuleEntry<S> & { readonly levels: L } {
  return { schema, ...traits, create }
}

export const RULES = {
  access: rule(access.schema, { levels: ['listener', 'route'] }, access.create),
  rateLimit: rule(rateLimit.schema, { levels: ['listener', 'route'] }, rateLimit.create),
  auth: rule(auth.schema, { levels: ['route'] }, auth.create),
  redirect: rule(redirect.schema, { levels: ['listener', 'route'], answers: true }, redirect.create),
  respond: rule(respond.schema, { levels: ['listener', 'route'], answers: true }, respond.create),
  pools: rule(split.schema, { levels: ['route'], choosesPool: true }, (o, env) => split.create(o, env)),
  rewrite: rule(rewrite.schema, { levels: ['route'] }, rewrite.create),
  headers: rule(headers.schema, { levels: ['listener', 'route'] }, headers.create),
  securityHeaders: rule(securityHeaders.schema, { levels: ['listener', 'route'] }, securityHeaders.create),
  mirror: rule(mirror.schema, { levels: ['route'] }, (o, env) => mirror.create(o, env)),
  compress: rule(compress.schema, { levels: ['listener', 'route'] }, compress.create),
} as const

export type RuleName = keyof typeof RULES
export const RULE_NAMES = Object.keys(RULES) as RuleName[]

/** The rules of one route or listener, as validated (plain data: it crosses IPC to workers). */
export type RuleOptions = { readonly [K in RuleName]?: z.output<(typeof RULES)[K]['schema']> }

type LevelsOf<K extends RuleName> = (typeof RULES)[K]['levels'][number]

/** The config keys of the rules that may be written at `level`, each optional. */
export type RuleShape<L extends RuleLevel> = {
  [K in RuleName as L extends LevelsOf<K> ? K : never]: z.ZodOptional<(typeof RULES)[K]['schema']>
}

export function ruleShape<L extends RuleLevel>(level: L): RuleShape<L> {
  const shape: Record<string, z.ZodType> = {}
  for (const name of RULE_NAMES) {
    const entry = RULES[name] as RuleEntry<z.ZodType>
    if (entry.levels.includes(level)) shape[name] = entry.schema.optional()
  }
  return shape as RuleShape<L>
}

/** The names of the rules that may be written at `level`. */
export function rulesAt(level: RuleLevel): RuleName[] {
  return RULE_NAMES.filter((n) => (RULES[n].levels as readonly RuleLevel[]).includes(level))
}

/** Picks a route's or listener's rules out of its parsed config. */
export function rulesOf(source: Record<string, unknown>, level: RuleLevel): RuleOptions {
  const out: Record<string, unknown> = {}
  for (const name of rulesAt(level)) if (source[name] !== undefined) out[name] = source[name]
  return out as RuleOptions
}

/** Compiles the rules of one route or listener into filters, in the table's order. */
export function createRules(rules: RuleOptions, env: FilterEnv): Filter[] {
  const out: Filter[] = []
  for (const name of RULE_NAMES) {
    const options = rules[name]
    if (options === undefined) continue
    const entry = RULES[name] as RuleEntry<z.ZodType>
    out.push(entry.create(options, env))
  }
  return out
}

/** Rules that answer the request themselves: a route with one needs no pool. */
export const ANSWERING_RULES: readonly RuleName[] = RULE_NAMES.filter((n) => (RULES[n] as RuleEntry<z.ZodType>).answers)

/** Rules that choose the pool: a route with one names no `pool`. */
export const POOL_RULES: readonly RuleName[] = RULE_NAMES.filter((n) => (RULES[n] as RuleEntry<z.ZodType>).choosesPool)

export { check as checkRedirect } from './redirect.js'
export { check as checkRewrite } from './rewrite.js'
