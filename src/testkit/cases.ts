/**
 * `switchyard test FILE`: a cases file names a config and lists requests with what Switchyard must do
 * with each (route, pool, upstream path and headers, answer, server). Each case runs through
 * `explain()` (explain.ts), so through the real request path, with no network. Output: one line per
 * case, a per-field diff for each failing one (expected, actual, and the decision's steps), and a
 * summary `N passed, M failed`. Exit codes: 0 every case passed, 1 a case failed, 2 the cases file or
 * its config is invalid (problems printed as `FILE:LINE:COL: path: message`, as `switchyard validate`).
 */
import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import path from 'node:path'
import { z } from 'zod'
import {
  type ConfigIssue,
  formatIssue,
  type Locator,
  loadConfigFile,
  parseYamlText,
  type RuntimeConfig,
} from '../config/index.js'
import { createExplainer, type ExplainRequest, type Explanation } from './explain.js'

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
const headerName = z.string().regex(TOKEN, { error: 'expected a header name (a token such as x-tenant)' })

const requestSchema = z
  .strictObject({
    method: z
      .string()
      .regex(TOKEN, { error: 'expected a method such as GET' })
      .default('GET')
      .describe('Default: GET.'),
    host: z.string().min(1).optional().describe('The Host header. Default: localhost.'),
    path: z
      .string()
      .regex(/^(\/|https?:\/\/)/, { error: 'expected a path starting with / (query included)' })
      .default('/')
      .describe('Path and query. Default: /.'),
    headers: z
      .record(headerName, z.union([z.string(), z.array(z.string())]))
      .optional()
      .describe('Request headers; a list sends one header per value.'),
    clientIp: z
      .string()
      .refine((v) => isIP(v) !== 0, { error: 'expected an IP address' })
      .default('127.0.0.1')
      .describe('The address the connection comes from. Default: 127.0.0.1.'),
    listener: z.string().optional().describe("The HTTP listener, by name. Default: the config's first."),
  })
  .describe('The request.')

const expectSchema = z
  .strictObject({
    route: z
      .union([z.string(), z.number().int().min(0), z.null()])
      .optional()
      .describe("The route's name, or its index; null: no route matches."),
    pool: z
      .union([z.string(), z.array(z.string()).min(1), z.null()])
      .optional()
      .describe('The pool; a list: the pools a random split may choose; null: answered here.'),
    upstreamPath: z.string().nullable().optional().describe('Path and query sent upstream; null: not proxied.'),
    upstreamHeaders: z
      .record(headerName, z.string().nullable())
      .optional()
      .describe('Headers sent upstream (a subset): name → value, or null for absent.'),
    status: z.number().int().min(100).max(599).optional().describe('Status of an answer given here.'),
    location: z.string().nullable().optional().describe('Location of that answer; null: none.'),
    server: z.string().nullable().optional().describe('The server the pool chooses first; null: none.'),
  })
  .refine((e) => Object.keys(e).length > 0, {
    error: 'expected at least one of route, pool, upstreamPath, upstreamHeaders, status, location, server, found none',
    // Not on top of another problem: an unknown key alone would leave the mapping empty.
    when: (payload) => payload.issues.length === 0,
  })
  .describe('What must happen.')

export const casesSchema = z.strictObject({
  config: z.string().min(1).describe('The config file, relative to this file.'),
  cases: z
    .array(
      z.strictObject({
        name: z.string().min(1).describe('Shown in the output.'),
        request: requestSchema,
        expect: expectSchema,
      }),
    )
    .min(1),
})

export type CasesFile = z.output<typeof casesSchema>
export type Case = CasesFile['cases'][number]
export type Expectation = Case['expect']

/** Where the runner writes: results to `out`, problems with the files to `err`. */
export interface Output {
  out(text: string): void
  err(text: string): void
}

/** One field that differs: what the case expects and what happened, as text. */
export interface Mismatch {
  readonly field: string
  readonly expected: string
  readonly actual: string
  /** Why the comparison cannot pass as written, when that is the reason. */
  readonly note?: string | undefined
}

export interface CaseResult {
  readonly name: string
  /** `file:line:col` of the case. */
  readonly where: string
  readonly mismatches: readonly Mismatch[]
  readonly explanation: Explanation
}

export type RunResult =
  | { readonly kind: 'ran'; readonly results: readonly CaseResult[] }
  | { readonly kind: 'invalid'; readonly issues: readonly ConfigIssue[] }

/** Reads and checks a cases file and its config, then runs every case. Never throws for bad input. */
export async function runCases(file: string): Promise<RunResult> {
  const invalid = (message: string, p = '(file)'): RunResult => ({
    kind: 'invalid',
    issues: [{ file, line: undefined, col: undefined, path: p, message }],
  })
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    const reason = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message
    return invalid(`cannot read: ${reason}`)
  }
  const parsed = parseYamlText(text, file, casesSchema)
  if (!parsed.ok) return { kind: 'invalid', issues: parsed.issues }
  const cases = parsed.value
  const resolved = path.resolve(path.dirname(file), cases.config)
  const configFile = path.relative(process.cwd(), resolved) || resolved
  const loaded = await loadConfigFile(configFile)
  if (!loaded.ok) return { kind: 'invalid', issues: loaded.issues }
  const issues = checkReferences(cases, loaded.config, file, parsed.locate)
  if (issues.length > 0) return { kind: 'invalid', issues }
  let explainer: Awaited<ReturnType<typeof createExplainer>>
  try {
    explainer = await createExplainer(loaded.config)
  } catch (err) {
    return invalid(`cannot load the config's plugins: ${(err as Error).message}`, 'config')
  }
  try {
    const results: CaseResult[] = []
    for (const [i, c] of cases.cases.entries()) {
      const explanation = await explainer.explain(requestOf(c.request))
      const pos = parsed.locate(['cases', i])
      results.push({
        name: c.name,
        where: `${file}:${pos.line ?? 1}:${pos.col ?? 1}`,
        mismatches: compare(c.expect, explanation),
        explanation,
      })
    }
    return { kind: 'ran', results }
  } finally {
    await explainer.close()
  }
}

/** Runs each cases file and prints the results; resolves with the exit code (0, 1 or 2). */
export async function runCasesFiles(files: readonly string[], io: Output): Promise<number> {
  let passed = 0
  let failed = 0
  let invalid = false
  let ran = false
  for (const file of files) {
    const run = await runCases(file)
    if (run.kind === 'invalid') {
      for (const i of run.issues) io.err(formatIssue(i))
      io.err(`${file}: ${run.issues.length} problem${run.issues.length === 1 ? '' : 's'} found`)
      invalid = true
      continue
    }
    ran = true
    for (const r of run.results) {
      if (r.mismatches.length === 0) {
        passed++
        io.out(`ok    ${r.name}`)
      } else {
        failed++
        io.out(formatFailure(r))
      }
    }
  }
  if (ran) io.out(`${passed} passed, ${failed} failed`)
  return invalid ? 2 : failed > 0 ? 1 : 0
}

/** A failing case: its name and place, each field expected and found, and the decision's steps. */
export function formatFailure(r: CaseResult): string {
  const lines = [`FAIL  ${r.name}  (${r.where})`]
  for (const m of r.mismatches) {
    lines.push(`  ${m.field}:`, `    expected: ${m.expected}`, `    actual:   ${m.actual}`)
    if (m.note !== undefined) lines.push(`    note:     ${m.note}`)
  }
  lines.push('  how it was decided:')
  for (const s of r.explanation.steps) lines.push(`    ${s.step.padEnd(8)} ${s.reason}`)
  return lines.join('\n')
}

function requestOf(r: Case['request']): ExplainRequest {
  return {
    method: r.method,
    host: r.host,
    path: r.path,
    headers: r.headers,
    clientIp: r.clientIp,
    listener: r.listener,
  }
}

/** Names in the cases that the config must have: listeners, routes, pools and servers. */
function checkReferences(cases: CasesFile, config: RuntimeConfig, file: string, locate: Locator): ConfigIssue[] {
  const out: ConfigIssue[] = []
  const issue = (p: (string | number)[], message: string) =>
    out.push({ file, ...locate(p), path: formatPath(p), message })
  const http = config.listeners.filter((l) => l.protocol !== 'tcp')
  const pools = config.pools.map((p) => p.name)
  const servers = new Set(config.pools.flatMap((p) => p.backends.map((b) => b.id)))
  const list = (names: readonly string[]) => names.map((n) => `"${n}"`).join(', ') || 'none'
  if (http.length === 0) issue(['config'], 'expected a config with an HTTP listener, found only tcp listeners')
  for (const [i, c] of cases.cases.entries()) {
    const name = c.request.listener
    const listener = name === undefined ? http[0] : http.find((l) => l.name === name)
    if (name !== undefined && listener === undefined)
      issue(
        ['cases', i, 'request', 'listener'],
        `expected an HTTP listener of the config (${list(http.map((l) => l.name))}), found "${name}"`,
      )
    const route = c.expect.route
    if (listener !== undefined && typeof route === 'string' && !listener.routes.some((r) => r.name === route))
      issue(
        ['cases', i, 'expect', 'route'],
        `expected a route name of listener ${listener.name} (${list(listener.routes.flatMap((r) => r.name ?? []))}) or an index, found "${route}"`,
      )
    if (listener !== undefined && typeof route === 'number' && route >= listener.routes.length)
      issue(
        ['cases', i, 'expect', 'route'],
        `expected a route index below ${listener.routes.length} (listener ${listener.name}), found ${route}`,
      )
    const pool = c.expect.pool
    const named = typeof pool === 'string' ? [pool] : (pool ?? [])
    for (const [j, p] of named.entries())
      if (!pools.includes(p))
        issue(
          typeof pool === 'string' ? ['cases', i, 'expect', 'pool'] : ['cases', i, 'expect', 'pool', j],
          `expected a pool of the config (${list(pools)}), found "${p}"`,
        )
    const server = c.expect.server
    if (typeof server === 'string' && !servers.has(server))
      issue(
        ['cases', i, 'expect', 'server'],
        `expected a server of the config (${list([...servers])}), found "${server}"`,
      )
  }
  return out
}

function formatPath(p: readonly (string | number)[]): string {
  return p.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('')
}

// --- comparing ---------------------------------------------------------------------------------

const show = (v: string | number | undefined | null): string =>
  v === undefined || v === null ? 'none' : typeof v === 'number' ? String(v) : JSON.stringify(v)

/** What the request got instead of being proxied, for fields that only a proxied request has. */
function notProxied(e: Explanation): string {
  return `not proxied (answered ${e.status ?? '?'}${e.error === undefined ? '' : ` ${e.error}`})`
}

/** Each field of `expect` that the explanation does not satisfy. */
export function compare(expect: Expectation, e: Explanation): Mismatch[] {
  const out: Mismatch[] = []
  const routeText =
    e.routeIndex === undefined
      ? 'no route'
      : typeof e.route === 'string'
        ? `"${e.route}" (route ${e.routeIndex})`
        : `route ${e.routeIndex}`
  if (expect.route !== undefined) {
    const ok =
      expect.route === null
        ? e.routeIndex === undefined
        : typeof expect.route === 'number'
          ? e.routeIndex === expect.route
          : e.route === expect.route
    const expected =
      expect.route === null
        ? 'no route'
        : typeof expect.route === 'number'
          ? `route ${expect.route}`
          : show(expect.route)
    if (!ok) out.push({ field: 'route', expected, actual: routeText })
  }
  if (expect.pool !== undefined) comparePool(expect.pool, e, out)
  if (expect.upstreamPath !== undefined && expect.upstreamPath !== (e.upstreamPath ?? null))
    out.push({
      field: 'upstreamPath',
      expected: expect.upstreamPath === null ? 'not proxied' : show(expect.upstreamPath),
      actual: e.upstreamPath === undefined ? notProxied(e) : show(e.upstreamPath),
    })
  for (const [name, want] of Object.entries(expect.upstreamHeaders ?? {})) {
    const field = `upstreamHeaders.${name.toLowerCase()}`
    if (e.upstreamHeaders === undefined) {
      out.push({ field, expected: want === null ? 'absent' : show(want), actual: notProxied(e) })
      continue
    }
    const got = e.upstreamHeaders[name.toLowerCase()]
    if ((got ?? null) !== want)
      out.push({
        field,
        expected: want === null ? 'absent' : show(want),
        actual: got === undefined ? 'absent' : show(got),
      })
  }
  if (expect.status !== undefined && expect.status !== e.status)
    out.push({
      field: 'status',
      expected: String(expect.status),
      actual: e.status === undefined ? `none (proxied to pool ${e.pool})` : String(e.status),
    })
  if (expect.location !== undefined && expect.location !== (e.location ?? null))
    out.push({ field: 'location', expected: show(expect.location), actual: show(e.location) })
  if (expect.server !== undefined) {
    const got = e.server ?? null
    const undecided = typeof expect.server === 'string' && e.server !== undefined && !e.serverDeterministic
    if (got !== expect.server || undecided)
      out.push({
        field: 'server',
        expected: show(expect.server),
        actual: e.server === undefined ? (e.pool === undefined ? notProxied(e) : 'none') : show(e.server),
        note: undecided
          ? `pool ${e.pool} does not choose by the request (${serverStep(e)}): expect a server only of a hashing (ip-hash, ring-hash, maglev) or sticky pool`
          : undefined,
      })
  }
  return out
}

function comparePool(want: string | readonly string[] | null, e: Explanation, out: Mismatch[]): void {
  const random = e.pools !== undefined && e.pools.length > 1 ? e.pools.map((p) => p.pool) : undefined
  const actual =
    e.pool === undefined
      ? notProxied(e)
      : random === undefined
        ? show(e.pool)
        : `any of ${random.map((p) => show(p)).join(', ')} (a random split)`
  if (want === null) {
    if (e.pool !== undefined) out.push({ field: 'pool', expected: 'none (answered here)', actual })
    return
  }
  if (typeof want === 'string') {
    if (random !== undefined)
      out.push({
        field: 'pool',
        expected: show(want),
        actual,
        note: `the split draws at random per request: expect the list [${random.join(', ')}], or make its pools sticky`,
      })
    else if (e.pool !== want) out.push({ field: 'pool', expected: show(want), actual })
    return
  }
  const have = random ?? (e.pool === undefined ? [] : [e.pool])
  const same = have.length === want.length && want.every((p) => have.includes(p))
  if (!same) out.push({ field: 'pool', expected: `any of ${want.map((p) => show(p)).join(', ')}`, actual })
}

function serverStep(e: Explanation): string {
  return e.steps.find((s) => s.step === 'server')?.reason.split(':')[0] ?? 'its balancer'
}
