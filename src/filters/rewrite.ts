/**
 * `rewrite`: changes the path (and optionally the Host) sent upstream. One path rule at most:
 * - `stripPrefix`: removes a leading prefix (`/api` turns `/api/users` into `/users`);
 * - `replacePrefix: { from, to }`: replaces a leading prefix;
 * - `regex: { pattern, replacement }`: a regular expression over the path (without the query), with
 *   `$1` / `$<name>` references. Patterns must be free of backtracking blow-ups (see `unsafeReason`):
 *   no backreferences, no lookaround, no repeated group that holds a quantifier (`(a+)+`), no two
 *   repeats in a row that can match the same characters (`.*.*x`), at most 256 characters. The path
 *   it runs on is bounded by the request head limit.
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

/**
 * The characters a request path can hold: visible ASCII (anything else arrives %-escaped). Character
 * sets are compared over these, exactly, by testing each one.
 */
const PATH_CHARS = Array.from({ length: 0x7f - 0x21 }, (_, i) => String.fromCharCode(0x21 + i))

/** A bounded repeat longer than this counts as unbounded: `\w{1,1000}\w{1,1000}` backtracks as `\w+\w+`. */
const LONG_REPEAT = 16

/** One element of a parsed pattern: a one-character atom, a zero-width assertion, or a group. */
type Node =
  | { readonly t: 'char'; readonly chars: ReadonlySet<string>; readonly min: number; readonly max: number }
  | { readonly t: 'zero' }
  | { readonly t: 'group'; readonly alts: readonly Node[][]; readonly min: number; readonly max: number }

/** An atom before its quantifier is read. */
type Atom =
  | { readonly t: 'char'; readonly chars: ReadonlySet<string> }
  | { readonly t: 'group'; readonly alts: Node[][] }

const NESTED = 'a repeated group may not contain a quantifier or an alternation'
const ADJACENT =
  'two repeats in a row may not match the same characters (`.*.*`, `\\w+\\w+`, `(.*)/(.*)x`): put a character the first cannot match between them, as in `([^/]*)/(.*)`'

/**
 * Why a pattern could backtrack badly, or undefined when it looks safe. Refused: backreferences and
 * lookaround; a repeated group that holds a quantifier or an alternation (`(a+)+`, `(a|aa)*`:
 * exponential); and two repeats in sequence that can match the same characters with nothing between
 * them that the first cannot match (`.*.*x`, `\w+\w+x`: polynomial, 15 s on a 500-character path for
 * three of them). A last repeat that matches every character and ends the pattern (`(.*)$`) never
 * fails, so it is allowed after another (`^/(.*)/(.*)$`).
 */
export function unsafeReason(pattern: string): string | undefined {
  if (/\\[1-9]|\\k</.test(pattern)) return 'backreferences are not allowed'
  if (/\(\?<?[=!]/.test(pattern)) return 'lookaround is not allowed'
  let alts: Node[][]
  try {
    alts = new PatternParser(pattern).parse()
  } catch {
    return undefined // not a valid pattern: the schema's compile check says so
  }
  for (const alt of alts) {
    const reason = checkSequence(alt, true)
    if (reason !== undefined) return reason
  }
  return undefined
}

/** Checks one sequence: the repeats that are live (may still backtrack) against each later one. */
function checkSequence(sequence: readonly Node[], top: boolean): string | undefined {
  const seq = flatten(sequence)
  let last = seq.length - 1
  while (last >= 0 && (seq[last] as Node).t === 'zero') last--
  let live: ReadonlySet<string>[] = []
  for (let i = 0; i < seq.length; i++) {
    const node = seq[i] as Node
    if (node.t === 'zero') continue
    if (node.t === 'group') {
      if (node.max > 1 && complex(node.alts)) return NESTED
      for (const alt of node.alts) {
        const reason = checkSequence(alt, false)
        if (reason !== undefined) return reason
      }
    }
    const chars = charsOf(node)
    const unbounded = node.max > LONG_REPEAT || (node.t === 'group' && node.alts.some((a) => a.some(repeats)))
    if (unbounded) {
      const neverFails = top && i === last && chars.size === PATH_CHARS.length
      if (!neverFails && live.some((q) => overlaps(q, chars))) return ADJACENT
      live = [...live, chars]
    } else if (node.t === 'char' && node.min >= 1) live = live.filter((q) => overlaps(q, chars))
  }
  return undefined
}

/** Groups that neither repeat nor alternate are spliced into the sequence around them. */
function flatten(sequence: readonly Node[]): Node[] {
  const out: Node[] = []
  for (const node of sequence)
    if (node.t === 'group' && node.min === 1 && node.max === 1 && node.alts.length === 1)
      out.push(...flatten(node.alts[0] as Node[]))
    else out.push(node)
  return out
}

/** Alternatives that hold, at any depth, an alternation or a quantifier. */
function complex(alts: readonly (readonly Node[])[]): boolean {
  return (
    alts.length > 1 ||
    alts.some((seq) =>
      seq.some((n) => n.t !== 'zero' && (n.min !== 1 || n.max !== 1 || (n.t === 'group' && complex(n.alts)))),
    )
  )
}

/** The node repeats without a small bound, or holds something that does. */
function repeats(node: Node): boolean {
  if (node.t === 'zero') return false
  if (node.max > LONG_REPEAT) return true
  return node.t === 'group' && node.alts.some((a) => a.some(repeats))
}

function charsOf(node: Node): ReadonlySet<string> {
  if (node.t === 'char') return node.chars
  if (node.t === 'zero') return new Set()
  const out = new Set<string>()
  for (const alt of node.alts) for (const n of alt) for (const c of charsOf(n)) out.add(c)
  return out
}

function overlaps(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  for (const c of a) if (b.has(c)) return true
  return false
}

/** A small parser of the pattern's structure: atoms, classes, groups, alternations and quantifiers. */
class PatternParser {
  readonly #p: string
  #i = 0

  constructor(pattern: string) {
    this.#p = pattern
  }

  parse(): Node[][] {
    const alts = this.#alternatives()
    if (this.#i < this.#p.length) throw new Error('unbalanced )')
    return alts
  }

  #alternatives(): Node[][] {
    const alts: Node[][] = [[]]
    while (this.#i < this.#p.length) {
      const c = this.#p[this.#i] as string
      if (c === ')') break
      if (c === '|') {
        this.#i++
        alts.push([])
        continue
      }
      const atom = this.#atom()
      ;(alts[alts.length - 1] as Node[]).push(atom.t === 'zero' ? atom : this.#quantifier(atom))
    }
    return alts
  }

  #atom(): { readonly t: 'zero' } | Atom {
    const p = this.#p
    const c = p[this.#i] as string
    if (c === '^' || c === '$') {
      this.#i++
      return { t: 'zero' }
    }
    if (c === '(') {
      this.#i++
      if (p[this.#i] === '?') {
        if (p[this.#i + 1] === ':') this.#i += 2
        else if (p[this.#i + 1] === '<') this.#i = p.indexOf('>', this.#i) + 1
        else throw new Error('unsupported group')
      }
      const alts = this.#alternatives()
      if (p[this.#i] !== ')') throw new Error('unclosed group')
      this.#i++
      return { t: 'group', alts }
    }
    const start = this.#i
    if (c === '[') {
      this.#i++
      if (p[this.#i] === '^') this.#i++
      if (p[this.#i] === ']') this.#i++
      while (this.#i < p.length && p[this.#i] !== ']') this.#i += p[this.#i] === '\\' ? 2 : 1
      this.#i++
    } else if (c === '\\') {
      const e = p[this.#i + 1]
      if (e === 'b' || e === 'B') {
        this.#i += 2
        return { t: 'zero' }
      }
      this.#i += e === 'u' ? 6 : e === 'x' ? 4 : e === 'c' ? 3 : 2
    } else this.#i++
    const re = new RegExp(`^${p.slice(start, this.#i)}$`)
    return { t: 'char', chars: new Set(PATH_CHARS.filter((ch) => re.test(ch))) }
  }

  /** The quantifier after an atom, if any (`*`, `+`, `?`, `{n}`, `{n,}`, `{n,m}`, each maybe lazy). */
  #quantifier(atom: Atom): Node {
    const p = this.#p
    let min = 1
    let max = 1
    const c = p[this.#i]
    if (c === '*' || c === '+' || c === '?') {
      this.#i++
      min = c === '+' ? 1 : 0
      max = c === '?' ? 1 : Number.POSITIVE_INFINITY
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(p.slice(this.#i))
      if (m !== null) {
        this.#i += m[0].length
        min = Number(m[1])
        max = m[2] === undefined ? min : m[3] === '' ? Number.POSITIVE_INFINITY : Number(m[3])
      }
    }
    if ((min !== 1 || max !== 1) && p[this.#i] === '?') this.#i++
    return { ...atom, min, max }
  }
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
  const rules = (['stripPrefix', 'replacePrefix', 'regex'] as const).filter((k) => options[k] !== undefined)
  if (rules.length > 1)
    out.push(`expected at most one of stripPrefix, replacePrefix and regex, found ${rules.join(' and ')}`)
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
