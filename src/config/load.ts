/**
 * Loading a config: YAML or JSON text → `${ENV}` interpolation → schema validation → runtime config.
 * Every problem comes back as a ConfigIssue with the file, line and column of the offending key, its
 * dotted path, and "what was expected, what was found". Nothing here throws for bad input.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from 'yaml'
import type { z } from 'zod'
import type { BalancerTable } from '../balancer/index.js'
import { balancerTable } from '../plugins/balancers.js'
import { loadPlugins } from '../plugins/load.js'
import { type NormalizeOptions, normalize, type RuntimeConfig } from './normalize.js'
import { checkReferences, configSchema, configSchemaFor, formatPath } from './schema.js'
import { explainYamlError } from './yaml-errors.js'

export interface ConfigIssue {
  readonly file: string | undefined
  readonly line: number | undefined
  readonly col: number | undefined
  /** Dotted key path, e.g. `pools[0].servers[1].weight`. */
  readonly path: string
  /** What was expected, what was found. */
  readonly message: string
}

export type LoadResult =
  | { readonly ok: true; readonly config: RuntimeConfig }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] }

/** `FILE:LINE:COL: key.path: message`, as `switchyard validate` prints it. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.file ? `${issue.file}:${issue.line ?? 1}:${issue.col ?? 1}: ` : ''
  return `${where}${issue.path}: ${issue.message}`
}

export async function loadConfigFile(file: string, env: NodeJS.ProcessEnv = process.env): Promise<LoadResult> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    return {
      ok: false,
      issues: [{ file, line: undefined, col: undefined, path: '(file)', message: `cannot read: ${reason}` }],
    }
  }
  // Algorithms that the config's plugins add must be known before `balance:` is validated.
  const modules = pluginModules(text, path.dirname(path.resolve(file)))
  if (modules.length === 0) return parseConfigText(text, file, env)
  let balancers: BalancerTable | undefined
  try {
    balancers = balancerTable(await loadPlugins(modules.map((m) => ({ module: m.module, options: m.options }))))
  } catch (err) {
    const first = parseConfigText(text, file, env)
    if (!first.ok) return first
    return {
      ok: false,
      issues: [{ file, line: undefined, col: undefined, path: 'plugins', message: (err as Error).message }],
    }
  }
  return parseConfigText(text, file, env, { balancers })
}

/** The plugin modules a config file names (paths resolved), read leniently: validation comes after. */
function pluginModules(text: string, baseDir: string): { module: string; options: unknown }[] {
  let raw: unknown
  try {
    raw = parseDocument(text).toJS()
  } catch {
    return []
  }
  const list = (raw as { plugins?: unknown } | null)?.plugins
  if (!Array.isArray(list)) return []
  return list.flatMap((p: unknown) => {
    const module = (p as { module?: unknown } | null)?.module
    if (typeof module !== 'string' || module === '' || module.includes('${')) return []
    const resolved = module.startsWith('./') || module.startsWith('../') ? path.resolve(baseDir, module) : module
    return [{ module: resolved, options: (p as { options?: unknown }).options }]
  })
}

/**
 * Parses YAML (or JSON, a subset of YAML) config text. `file` is only used in positions (and as where
 * relative paths start, unless `options.baseDir` says). `options.balancers`: algorithms that plugins add.
 */
export function parseConfigText(
  text: string,
  file: string,
  env: NodeJS.ProcessEnv = process.env,
  options: Pick<ValidateOptions, 'balancers' | 'baseDir'> = {},
): LoadResult {
  const { doc, at, syntax } = readYaml(text, file)
  if (syntax.length > 0) return { ok: false, issues: syntax }
  const envIssues = interpolateEnv(doc, env).map((p) => ({ file, ...at(p.offset), path: p.path, message: p.message }))
  if (envIssues.length > 0) return { ok: false, issues: envIssues }

  const result = validateConfig(doc.toJS(), {
    baseDir: options.baseDir ?? path.dirname(path.resolve(file)),
    balancers: options.balancers,
  })
  if (result.ok) return result
  const issues = result.issues.map(({ rawPath, atKey, ...i }) => ({ ...i, file, ...at(locate(doc, rawPath, atKey)) }))
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0))
  return { ok: false, issues }
}

/** Parses YAML text with positions: the document, an offset → line/col mapper, and its syntax problems. */
function readYaml(text: string, file: string) {
  const lineCounter = new LineCounter()
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true })
  const at = (offset: number | undefined) => {
    if (offset === undefined) return { line: undefined, col: undefined }
    const pos = lineCounter.linePos(offset)
    return { line: pos.line, col: pos.col }
  }
  // One problem per line: a mis-indented line often draws two or three errors from the parser.
  const byLine = new Map<number | undefined, ConfigIssue>()
  for (const e of doc.errors) {
    const { offset, message } = explainYamlError(text, e)
    const issue = { file, ...at(offset), path: '(syntax)', message }
    if (!byLine.has(issue.line)) byLine.set(issue.line, issue)
  }
  return { doc, at, syntax: [...byLine.values()] }
}

/** Where a key of a parsed YAML file is: line and column (1-based), or undefined. */
export type Locator = (path: readonly PropertyKey[]) => { line: number | undefined; col: number | undefined }

export type YamlResult<T> =
  | { readonly ok: true; readonly value: T; readonly locate: Locator }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] }

/**
 * Parses YAML text against another schema than the config's (`switchyard test` reads its cases files
 * so), with the same positions and messages as a config file; no `${ENV}` interpolation. `locate`
 * finds a key of the value, for checks made after the schema's.
 */
export function parseYamlText<S extends z.ZodType>(text: string, file: string, schema: S): YamlResult<z.output<S>> {
  const { doc, at, syntax } = readYaml(text, file)
  if (syntax.length > 0) return { ok: false, issues: syntax }
  const input: unknown = doc.toJS()
  const parsed = schema.safeParse(input, { reportInput: true })
  if (parsed.success) return { ok: true, value: parsed.data, locate: (p) => at(locate(doc, p, false)) }
  const raw: RawIssue[] = []
  for (const issue of parsed.error.issues) explain(issue, [], input, raw, schema)
  const issues = raw.map(({ rawPath, atKey, ...i }) => ({ ...i, file, ...at(locate(doc, rawPath, atKey)) }))
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0))
  return { ok: false, issues }
}

interface RawIssue extends ConfigIssue {
  readonly rawPath: readonly PropertyKey[]
  /** Point at the key of the last path segment rather than its value (unknown keys). */
  readonly atKey: boolean
}

type ValidateResult = { ok: true; config: RuntimeConfig } | { ok: false; issues: readonly RawIssue[] }

/** Validates a plain object (the library API's entry). Issues carry paths but no positions. */
export interface ValidateOptions extends NormalizeOptions {
  /** The balancing algorithms `balance:` may name: the built-ins and those plugins add. Default: the built-ins. */
  readonly balancers?: BalancerTable | undefined
}

export function validateConfig(input: unknown, options: ValidateOptions = {}): ValidateResult {
  const parsed = configSchemaFor(options.balancers).safeParse(input, { reportInput: true })
  // A cross-check says more than the schema about the same key (`tls` on a tcp listener): it wins.
  const references: RawIssue[] = checkReferences(input).map((p) => ({
    file: undefined,
    line: undefined,
    col: undefined,
    path: formatPath(p.path),
    message: p.message,
    rawPath: p.path,
    atKey: p.atKey === true,
  }))
  const schemaIssues: RawIssue[] = []
  if (!parsed.success) for (const issue of parsed.error.issues) explain(issue, [], input, schemaIssues)
  const checked = new Set(references.map((r) => r.path))
  const issues = [...schemaIssues.filter((i) => !checked.has(i.path)), ...references]
  if (parsed.success && issues.length === 0) return { ok: true, config: normalize(parsed.data, options) }
  return { ok: false, issues }
}

/** Turns a zod issue into messages; `schema` is the root the input was parsed with (for unknown keys). */
function explain(
  issue: z.core.$ZodIssue,
  prefix: readonly PropertyKey[],
  root: unknown,
  out: RawIssue[],
  schema: z.core.$ZodType = configSchema,
): void {
  const path = [...prefix, ...issue.path]
  const push = (p: readonly PropertyKey[], message: string, atKey = false): void => {
    out.push({ file: undefined, line: undefined, col: undefined, path: formatPath(p), message, rawPath: p, atKey })
  }
  const found = describe(issue.input === undefined ? valueAt(root, path) : issue.input)
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined && valueAt(root, path) === undefined)
        return push(path, `expected ${article(issue.expected)}, found nothing (the key is required)`)
      return push(path, `expected ${article(issue.expected)}, found ${found}`)
    case 'unrecognized_keys':
      for (const key of issue.keys) push([...path, key], unknownKey(path, key, root, schema), true)
      return
    case 'invalid_value':
      return push(path, `expected ${issue.values.map((v) => JSON.stringify(v)).join(' or ')}, found ${found}`)
    case 'invalid_union': {
      // A discriminated union whose key names none of its options: list that union's own options.
      const { discriminator, note, options } = issue as { discriminator?: string; note?: string; options?: unknown[] }
      if (note === 'No matching discriminator' && discriminator) {
        const names = (options ?? []).filter((o) => o !== undefined).map(String)
        const value = valueAt(root, path)
        const foundText = value === undefined ? 'nothing (the key is required)' : describe(value)
        return push(path, `expected one of ${names.join(', ')}, found ${foundText}`)
      }
      // Prefer the branch that got furthest: its issues are deeper than the union itself (an unknown key
      // of a mapping is one: the value had that branch's type).
      const deep = issue.errors.find(
        (branch) => branch.length > 0 && branch.every((e) => e.path.length > 0 || e.code === 'unrecognized_keys'),
      )
      if (deep) {
        for (const e of deep) explain(e, path, root, out, schema)
        return
      }
      const expected = issue.errors.flatMap((b) => b.map(expectation)).filter((x) => x !== '')
      return push(path, `expected ${[...new Set(expected)].join(' or ') || 'a valid value'}, found ${found}`)
    }
    case 'too_small':
    case 'too_big': {
      const word = issue.code === 'too_small' ? 'at least' : 'at most'
      const bound = issue.code === 'too_small' ? issue.minimum : issue.maximum
      const what =
        issue.origin === 'array'
          ? ` item${Number(bound) === 1 ? '' : 's'}`
          : issue.origin === 'string'
            ? ' characters'
            : ''
      const foundText = issue.origin === 'array' && Array.isArray(issue.input) ? `${issue.input.length}` : found
      return push(path, `expected ${word} ${String(bound)}${what}, found ${foundText}`)
    }
    default: {
      // Custom checks and formats whose message we wrote ("expected …"); add what was found when missing.
      const msg = issue.message
      return push(path, msg.includes('found') ? msg : `${msg}, found ${found}`)
    }
  }
}

function expectation(issue: z.core.$ZodIssue): string {
  if (issue.path.length > 0) return ''
  if (issue.code === 'invalid_type') return article(issue.expected)
  if (issue.code === 'invalid_value') return issue.values.map((v) => JSON.stringify(v)).join(' or ')
  return ''
}

function article(type: string): string {
  if (type === 'array') return 'a list'
  if (type === 'object') return 'a mapping'
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing'
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'object') return 'a mapping'
  if (typeof value === 'string') return `"${value.length > 60 ? `${value.slice(0, 57)}...` : value}"`
  return `${typeof value} ${String(value)}`
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<PropertyKey, unknown>)[seg]
  }
  return v
}

interface Def {
  type: string
  innerType?: z.core.$ZodType
  in?: z.core.$ZodType
  options?: z.core.$ZodType[]
  discriminator?: string
  shape?: Record<string, z.core.$ZodType>
  element?: z.core.$ZodType
}

const defOf = (s: z.core.$ZodType): Def => s._zod.def as unknown as Def

/** The values a discriminated union's option takes at its discriminator (`undefined`: the key may be absent). */
const discriminatorValues = (option: z.core.$ZodType, discriminator: string): unknown[] => [
  ...(option._zod.propValues?.[discriminator] ?? []),
]

/** A discriminated union met on the way down a path, and the options the input's value chose. */
interface Branch {
  /** Length of the path prefix where the union sits. */
  readonly depth: number
  readonly discriminator: string
  readonly chosen: readonly z.core.$ZodType[]
  readonly others: readonly z.core.$ZodType[]
}

/**
 * The schemas at `path` below `start` (which sits at `base`), following the input: a discriminated
 * union contributes only the options that its discriminator's value in `root` selects. Returns the
 * object (and other leaf) schemas found, and the innermost discriminated union passed on the way.
 * Walks zod's public definitions.
 */
function schemasAt(
  start: readonly z.core.$ZodType[],
  base: readonly PropertyKey[],
  path: readonly PropertyKey[],
  root: unknown,
): { schemas: z.core.$ZodType[]; branch: Branch | undefined } {
  let branch: Branch | undefined
  const expand = (s: z.core.$ZodType, depth: number): z.core.$ZodType[] => {
    const def = defOf(s)
    if (def.innerType) return expand(def.innerType, depth)
    if (def.type === 'pipe' && def.in) return expand(def.in, depth)
    if (def.type === 'union' && def.options) {
      const value = valueAt(root, [...base, ...path.slice(0, depth)])
      const discriminator = def.discriminator
      if (discriminator !== undefined && value !== null && typeof value === 'object' && !Array.isArray(value)) {
        const own = (value as Record<string, unknown>)[discriminator]
        const chosen = def.options.filter((o) => discriminatorValues(o, discriminator).includes(own))
        if (chosen.length > 0) {
          branch = { depth, discriminator, chosen, others: def.options.filter((o) => !chosen.includes(o)) }
          return chosen.flatMap((o) => expand(o, depth))
        }
      }
      return def.options.flatMap((o) => expand(o, depth))
    }
    return [s]
  }
  let schemas = start.flatMap((s) => expand(s, 0))
  path.forEach((seg, i) => {
    const children = schemas.flatMap((s) => {
      const def = defOf(s)
      if (def.type === 'object' && typeof seg === 'string' && def.shape?.[seg]) return [def.shape[seg]]
      if (def.type === 'array' && typeof seg === 'number' && def.element) return [def.element]
      return []
    })
    schemas = children.flatMap((s) => expand(s, i + 1))
  })
  return { schemas, branch }
}

const keysOf = (schemas: readonly z.core.$ZodType[]): string[] => [
  ...new Set(
    schemas.flatMap((s) => {
      const def = defOf(s)
      return def.type === 'object' && def.shape ? Object.keys(def.shape) : []
    }),
  ),
]

/**
 * What to say about an unknown `key` in the mapping at `path`: the keys allowed there, or, when the
 * key belongs to another option of a union (`forwarded` on a tcp listener, `path` on a tcp check),
 * which options have it.
 */
function unknownKey(path: readonly PropertyKey[], key: string, root: unknown, schema: z.core.$ZodType): string {
  const { schemas, branch } = schemasAt([schema], [], path, root)
  if (branch) {
    const below = path.slice(branch.depth)
    const owners = branch.others.filter((o) =>
      keysOf(schemasAt([o], path.slice(0, branch.depth), below, root).schemas).includes(key),
    )
    if (owners.length > 0) {
      const named = (options: readonly z.core.$ZodType[]) => [
        ...new Set(options.flatMap((o) => discriminatorValues(o, branch.discriminator)).filter((v) => v !== undefined)),
      ]
      const own = valueAt(root, [...path.slice(0, branch.depth), branch.discriminator]) ?? named(branch.chosen)[0]
      const what = [...below, key].join('.')
      return `expected no \`${what}\` for ${branch.discriminator} ${String(own)} (only ${branch.discriminator} ${named(owners).join(' or ')} has it)`
    }
  }
  const allowed = keysOf(schemas).filter((k) => k !== '$schema')
  return `unknown key, ${allowed.length > 0 ? `expected one of ${allowed.join(', ')}` : 'expected no such key'}`
}

/** Source offset of the node at `path`, or of the deepest ancestor that exists. */
function locate(doc: Document, path: readonly PropertyKey[], atKey: boolean): number | undefined {
  let node: unknown = doc.contents
  let offset = (doc.contents as Node | null)?.range?.[0]
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]
    const last = i === path.length - 1
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && p.key.value === seg)
      if (!pair) return offset
      const keyNode = pair.key as Node
      if (last && atKey) return keyNode.range?.[0] ?? offset
      node = pair.value
      // A key with no value (`weight:`) has no range of its own: point at the key.
      offset = (pair.value as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg] as Node | undefined
      if (!item) return offset
      node = item
      offset = item.range?.[0] ?? offset
    } else return offset
  }
  return offset
}

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g

/**
 * Replaces `${NAME}` and `${NAME:-default}` in string values, in place. A plain (unquoted) scalar that is
 * exactly one reference is re-read as YAML, so `weight: ${W}` yields a number. `$${` escapes a literal `${`.
 */
function interpolateEnv(
  doc: Document,
  env: NodeJS.ProcessEnv,
): { offset: number | undefined; path: string; message: string }[] {
  const problems: { offset: number | undefined; path: string; message: string }[] = []
  visit(doc, {
    Scalar(_key, node, ancestry) {
      if (typeof node.value !== 'string' || !node.value.includes('${')) return
      const raw = node.value
      let missing: string | undefined
      const replaced = raw.replace(
        /\$?\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g,
        (whole, name: string, dflt?: string) => {
          if (whole.startsWith('$$')) return whole.slice(1)
          const value = env[name]
          if (value !== undefined && value !== '') return value
          if (dflt !== undefined) return dflt
          missing ??= name
          return ''
        },
      )
      if (missing !== undefined) {
        problems.push({
          offset: node.range?.[0],
          path: formatPath(pathOf(ancestry, node)),
          message: `expected environment variable ${missing} to be set, found it unset (use \${${missing}:-default} for a default)`,
        })
        return
      }
      const whole = raw.match(ENV_RE)
      if (node.type === 'PLAIN' && whole?.length === 1 && whole[0] === raw) {
        const reparsed = parseDocument(replaced).contents
        node.value = isScalar(reparsed) ? reparsed.value : replaced
      } else node.value = replaced
    },
  })
  return problems
}

function pathOf(ancestry: readonly unknown[], node: unknown): PropertyKey[] {
  const path: PropertyKey[] = []
  let child = node
  for (let i = ancestry.length - 1; i >= 0; i--) {
    const a = ancestry[i]
    if (isPair(a)) {
      if (a.value === child && isScalar(a.key)) path.unshift(String(a.key.value))
    } else if (isSeq(a)) path.unshift(a.items.indexOf(child as never))
    child = a
  }
  return path
}
