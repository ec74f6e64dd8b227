/**
 * `rewrite`: changes the path (and optionally the Host) sent upstream. One path rule at most:
 * - `stripPrefix`: removes a leading prefix (`/api` turns `/api/users` into `/users`);
 * - `replacePrefix: { from, to }`: replaces a leading prefix;
 * - `regex: { pattern, replacement }`: a regular expression over the path (without the query), with
 *   `$1` / `$<name>` references. Patterns must be free of backtracking blow-ups: no backreferences, no
 *   lookaround, and no quantified group that itself holds a quantifier (`(a+)+`), at most 256
 *   characters. The path it runs on is bounded by the request head limit.
 * The query is kept. Prefixes must agree with the route's `match.pathPrefix`, so that what matched and
 * what is forwarded cannot drift apart.
 */
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter } from './types.js'

const safePattern = z
  .string()
  .min(1)
  .max(256)
  .refine((p) => unsafeReason(p) === undefined, {
    error: (issue) => `expected a pattern without backtracking blow-ups: ${unsafeReason(String(issue.input))}`,
  })
  .refine((p) => compiles(p), { error: 'expected a valid regular expression' })

export const schema = z
  .strictObject({
    stripPrefix: z.string().startsWith('/').optional().describe('Remove this prefix from the path.'),
    replacePrefix: z
      .strictObject({
        from: z.string().startsWith('/').describe('Prefix to replace.'),
        to: z.string().startsWith('/').describe('What replaces it.'),
      })
      .optional()
      .describe('Replace a leading prefix of the path.'),
    regex: z
      .strictObject({
        pattern: safePattern.describe('Regular expression over the path (no query).'),
        replacement: z.string().describe('Replacement; `$1`, `$<name>` refer to groups.'),
      })
      .optional()
      .describe('Rewrite the path with a regular expression (first match).'),
    host: z
      .string()
      .regex(/^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/, { error: 'expected host or host:port' })
      .optional()
      .describe('The Host header sent upstream (overrides `preserveHost`).'),
  })
  .describe('Change what is sent upstream: the path (one of stripPrefix, replacePrefix, regex) and the Host.')

export type RewriteOptions = z.output<typeof schema>

/** Why a pattern could backtrack badly, or undefined when it looks safe. */
export function unsafeReason(pattern: string): string | undefined {
  if (/\\[1-9]|\\k</.test(pattern)) return 'backreferences are not allowed'
  if (/\(\?<?[=!]/.test(pattern)) return 'lookaround is not allowed'
  // A group with a quantifier inside that is itself quantified: (a+)+, (a*)*, (a|aa)+ and the like.
  const stack: { quantified: boolean; alternation: boolean }[] = []
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '\\') {
      i++
      continue
    }
    if (c === '[') {
      const end = pattern.indexOf(']', i + 1)
      if (end < 0) return undefined
      i = end
      continue
    }
    if (c === '(') stack.push({ quantified: false, alternation: false })
    else if (c === '|' && stack.length > 0) (stack[stack.length - 1] as { alternation: boolean }).alternation = true
    else if (c === '*' || c === '+' || c === '?' || c === '{') {
      if (stack.length > 0) (stack[stack.length - 1] as { quantified: boolean }).quantified = true
    } else if (c === ')') {
      const group = stack.pop()
      const next = pattern[i + 1]
      const outerQuantified = next === '*' || next === '+' || next === '{'
      if (group !== undefined && outerQuantified && (group.quantified || group.alternation))
        return 'a repeated group may not contain a quantifier or an alternation'
      if (group?.quantified && stack.length > 0) (stack[stack.length - 1] as { quantified: boolean }).quantified = true
    }
  }
  return undefined
}

function compiles(pattern: string): boolean {
  try {
    new RegExp(pattern)
    return true
  } catch {
    return false
  }
}

/** The problems of a rewrite at its route: at most one path rule, and prefixes that agree with the match. */
export function check(
  options: RewriteOptions,
  pathPrefix: string | undefined,
  exactPath: string | undefined,
): string[] {
  const out: string[] = []
  const rules = [options.stripPrefix, options.replacePrefix, options.regex].filter((r) => r !== undefined)
  if (rules.length > 1) out.push('expected at most one of stripPrefix, replacePrefix and regex')
  const prefix = options.stripPrefix ?? options.replacePrefix?.from
  if (prefix !== undefined) {
    const matched = pathPrefix ?? exactPath
    if (matched === undefined || !matched.startsWith(prefix))
      out.push(
        `expected the route's match.pathPrefix (or match.path) to start with "${prefix}", found ${matched === undefined ? 'none' : `"${matched}"`}: only requests that match can be rewritten this way`,
      )
  }
  return out
}

export function create(options: RewriteOptions, _env: FilterEnv): Filter {
  const rewritePath = pathRule(options)
  const host = options.host
  return {
    name: 'rewrite',
    onRoute(ctx) {
      const up = ctx.upstream
      if (rewritePath !== undefined) {
        const target = up.path
        const q = target.indexOf('?')
        const path = q < 0 ? target : target.slice(0, q)
        up.path = rewritePath(path) + (q < 0 ? '' : target.slice(q))
      }
      if (host !== undefined) up.host = host
    },
  }
}

function pathRule(options: RewriteOptions): ((path: string) => string) | undefined {
  const strip = options.stripPrefix
  if (strip !== undefined) return (path) => rooted(path.startsWith(strip) ? path.slice(strip.length) : path)
  const replace = options.replacePrefix
  if (replace !== undefined)
    return (path) => (path.startsWith(replace.from) ? rooted(replace.to + path.slice(replace.from.length)) : path)
  const regex = options.regex
  if (regex !== undefined) {
    const re = new RegExp(regex.pattern)
    return (path) => rooted(path.replace(re, regex.replacement))
  }
  return undefined
}

/** A path that starts with `/` (an emptied or relative result gets one). */
function rooted(path: string): string {
  if (path === '') return '/'
  return path.charCodeAt(0) === 47 ? path : `/${path}`
}
