// The HTTP/1.1 engines side by side: one table of every Switchyard subject that has an engine (case ×
// engine × workers × Node), with the ratios the engine targets of issue 12 are stated in, each taken
// against references of the same case (the same interleaved rounds) and, for the Node peers, the same
// Node; then those targets, checked. Informative only: a missed target never fails the bench.
// Pure functions of the summaries; report.ts renders the cells.
import { ENGINES, type Engine } from '../../src/config/schema.js'
import { candidate } from '../candidates.js'
import type { Summary } from './report.js'

/** The bare undici dispatch peer and npm http-proxy: two of the references the targets name. */
const BARE = 'undici-dispatch'
const HTTP_PROXY = 'http-proxy'
/** The featureless proxy on Switchyard's own parser: how far features and generality keep it from its floor. */
const FLOOR = 'llhttp-floor'

/** One Switchyard subject of one case. Ratios are undefined when their reference did not run. */
export interface MatrixRow {
  readonly case: string
  /** Its name in the run. */
  readonly subject: string
  readonly engine: Engine
  /** Whether `engine` is the run's default one. */
  readonly isDefault: boolean
  readonly workers: number
  /** The Node label (`node24`); undefined if the subject is not a Node program (never, for Switchyard). */
  readonly node: string | undefined
  readonly reqPerS: number
  readonly p99Ms: number
  /** req/s over the bare undici dispatch proxy's, same Node. */
  readonly vsBare: number | undefined
  /** req/s over npm http-proxy's, same Node. */
  readonly vsHttpProxy: number | undefined
  /** req/s over the llhttp floor's (a featureless proxy on the same parser), same Node. */
  readonly vsFloor: number | undefined
  /** req/s per busy core over nginx's (the case's first nginx: `nginx`, or `nginx-2w`). */
  readonly vsNginxPerCore: number | undefined
  /** p99 over nginx's p99. */
  readonly p99VsNginx: number | undefined
  /** req/s over the subject's one-worker counterpart's, same Node (multi-worker subjects). */
  readonly vsOneWorker: number | undefined
}

export type MatrixFigure = 'vsBare' | 'vsHttpProxy' | 'vsFloor' | 'vsNginxPerCore' | 'p99VsNginx' | 'vsOneWorker'

/** What the matrix needs of a measured throughput case. */
export interface MatrixCase {
  readonly name: string
  readonly summaries: readonly Summary[]
  /** Subjects by their names in the run, in the case's order. */
  readonly subjects: readonly string[]
  /** Multi-worker subject → its one-worker counterpart. */
  readonly oneWorker: Readonly<Record<string, string>>
}

const div = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined || b === undefined || b === 0 ? undefined : a / b

/** `--workers N` of a Switchyard candidate: 2 for those with a one-worker counterpart, else 1. */
function workersOf(name: string): number {
  const c = candidate(name)
  return c.kind === 'process' && c.oneWorker !== undefined ? 2 : 1
}

const nodeOrder = (label: string | undefined): number => Number(/\d+/.exec(label ?? '')?.[0] ?? 0)

/** The engine table: every subject with an engine, by case, then engine, workers and Node. */
export function engineMatrix(cases: readonly MatrixCase[], defaultEngine: Engine): MatrixRow[] {
  const rows = cases.flatMap((c, caseIndex) => {
    const nginx = c.summaries.find((s) => s.family === 'nginx')
    const peer = (name: string, node: string | undefined): Summary | undefined =>
      c.summaries.find((s) => s.candidate === name && s.node === node)
    return c.subjects.flatMap((name) => {
      const s = c.summaries.find((x) => x.name === name)
      if (s === undefined || s.engine === undefined) return []
      const one = c.oneWorker[name]
      const base = one === undefined ? undefined : c.summaries.find((x) => x.name === one)
      const row: MatrixRow = {
        case: c.name,
        subject: s.name,
        engine: s.engine,
        isDefault: s.engine === defaultEngine,
        workers: workersOf(s.candidate),
        node: s.node,
        reqPerS: s.reqPerS,
        p99Ms: s.p99Ms,
        vsBare: div(s.reqPerS, peer(BARE, s.node)?.reqPerS),
        vsHttpProxy: div(s.reqPerS, peer(HTTP_PROXY, s.node)?.reqPerS),
        vsFloor: div(s.reqPerS, peer(FLOOR, s.node)?.reqPerS),
        vsNginxPerCore: div(s.reqPerCore, nginx?.reqPerCore),
        p99VsNginx: div(s.p99Ms, nginx?.p99Ms),
        vsOneWorker: div(s.reqPerS, base?.reqPerS),
      }
      return [{ row, key: [caseIndex, ENGINES.indexOf(s.engine), row.workers, nodeOrder(s.node)] }]
    })
  })
  const cmp = (a: readonly number[], b: readonly number[]): number => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! - b[i]!
    return 0
  }
  return rows.sort((a, b) => cmp(a.key, b.key)).map((r) => r.row)
}

/** One target of issue 12, on one figure of the engine table. */
export interface EngineTarget {
  /** As the issue states it. */
  readonly text: string
  readonly case: string
  readonly workers: number
  readonly figure: MatrixFigure
  /** `at-least`: the figure must reach `value`; `at-most`: it must stay at or under it. */
  readonly bound: 'at-least' | 'at-most'
  readonly value: number
  /** A further goal beyond `value`, on the same side. */
  readonly stretch?: number
}

/** The engine the targets are for: the native one. The other engine's figures are shown beside it. */
export const TARGET_ENGINE: Engine = 'native'

/** Memory per idle keep-alive client connection, in KB, at most (checked by `npm run bench:idle`). */
export const IDLE_TARGET_KB = 8

/**
 * Issue 12's targets that `npm run bench` measures, every feature on (quick mode with its defaults).
 * The memory target is `npm run bench:idle`'s (`IDLE_TARGET_KB`).
 */
export const ENGINE_TARGETS: readonly EngineTarget[] = [
  {
    text: 'small body, 50 connections, 1 worker: ≥ 1.3× bare undici dispatch (stretch 1.6×)',
    case: 'small-50',
    workers: 1,
    figure: 'vsBare',
    bound: 'at-least',
    value: 1.3,
    stretch: 1.6,
  },
  {
    text: 'small body, 50 connections, 1 worker: ≥ 2.0× npm http-proxy',
    case: 'small-50',
    workers: 1,
    figure: 'vsHttpProxy',
    bound: 'at-least',
    value: 2.0,
  },
  {
    text: 'small body, 50 connections, 1 worker: ≥ 0.40× nginx per proxy core',
    case: 'small-50',
    workers: 1,
    figure: 'vsNginxPerCore',
    bound: 'at-least',
    value: 0.4,
  },
  {
    text: "p99 at 200 connections ≤ 2× nginx's p99",
    case: 'small-200',
    workers: 1,
    figure: 'p99VsNginx',
    bound: 'at-most',
    value: 2.0,
  },
  {
    text: '16 KiB body, 50 connections: ≥ 1.2× bare undici dispatch',
    case: '16k-50',
    workers: 1,
    figure: 'vsBare',
    bound: 'at-least',
    value: 1.2,
  },
  {
    text: 'two workers ≥ 1.5× one worker (100-byte body, 50 connections)',
    case: 'cores-50',
    workers: 2,
    figure: 'vsOneWorker',
    bound: 'at-least',
    value: 1.5,
  },
]

export type Verdict = 'met' | 'met, stretch too' | 'missed' | 'not measured'

export interface Measured {
  readonly value: number | undefined
  readonly verdict: Verdict
}

export function verdict(t: EngineTarget, value: number | undefined): Verdict {
  if (value === undefined) return 'not measured'
  const reaches = (goal: number): boolean => (t.bound === 'at-least' ? value >= goal : value <= goal)
  if (!reaches(t.value)) return 'missed'
  return t.stretch !== undefined && reaches(t.stretch) ? 'met, stretch too' : 'met'
}

/** One target under one Node, for each engine. */
export interface TargetCheck {
  readonly target: EngineTarget
  /** Undefined when no row of the target's case ran. */
  readonly node: string | undefined
  readonly byEngine: Readonly<Record<Engine, Measured>>
}

/** Each target once per Node that the engine table has rows for (once, unmeasured, when it has none). */
export function checkTargets(rows: readonly MatrixRow[], targets = ENGINE_TARGETS): TargetCheck[] {
  const nodes = [...new Set(rows.map((r) => r.node))].sort((a, b) => nodeOrder(a) - nodeOrder(b))
  return targets.flatMap((target) =>
    (nodes.length === 0 ? [undefined] : nodes).map((node): TargetCheck => {
      const measure = (engine: Engine): Measured => {
        const row = rows.find(
          (r) => r.case === target.case && r.workers === target.workers && r.engine === engine && r.node === node,
        )
        const value = row?.[target.figure]
        return { value, verdict: verdict(target, value) }
      }
      return {
        target,
        node,
        byEngine: Object.fromEntries(ENGINES.map((e) => [e, measure(e)])) as Record<Engine, Measured>,
      }
    }),
  )
}

// ---- Cells for report.ts ----

const ratio = (n: number | undefined): string => (n === undefined ? '—' : `${n.toFixed(2)}×`)
const int = (n: number): string => Math.round(n).toLocaleString('en-US')

export const MATRIX_HEAD = [
  'case',
  'engine',
  'Node',
  'req/s',
  'p99 ms',
  'vs bare dispatch',
  'vs http-proxy',
  'of the llhttp floor',
  'vs nginx, per core',
  'p99 vs nginx',
  'vs 1 worker',
] as const

/** Columns on the left (text), the rest are figures. */
export const MATRIX_LEFT = 3

export function engineLabel(r: Pick<MatrixRow, 'engine' | 'isDefault' | 'workers'>): string {
  return `${r.engine}${r.isDefault ? ' (default)' : ''}${r.workers > 1 ? `, ${r.workers} workers` : ''}`
}

export function matrixCells(rows: readonly MatrixRow[]): string[][] {
  return rows.map((r) => [
    r.case,
    engineLabel(r),
    r.node ?? '—',
    int(r.reqPerS),
    r.p99Ms.toFixed(2),
    ratio(r.vsBare),
    ratio(r.vsHttpProxy),
    ratio(r.vsFloor),
    ratio(r.vsNginxPerCore),
    ratio(r.p99VsNginx),
    ratio(r.vsOneWorker),
  ])
}

export const TARGETS_HEAD = ['target', 'Node', ...ENGINES.map((e) => `${e} engine`)]

/** Three decimals, so that a miss never reads as the target itself (1.295 is not 1.30). */
function measuredCell(m: Measured): string {
  return m.value === undefined ? 'not measured' : `${m.value.toFixed(3)}×: ${m.verdict}`
}

export function targetCells(checks: readonly TargetCheck[]): string[][] {
  return checks.map((c) => [c.target.text, c.node ?? '—', ...ENGINES.map((e) => measuredCell(c.byEngine[e]))])
}

export const TARGETS_NOTE = `The targets are the ${TARGET_ENGINE} engine's (issue 12); the other engine's figures stand beside them for comparison. Each ratio is taken within one case's interleaved rounds, against the Node peers under the same Node. Informative only: the bench never fails on a missed target. Memory per idle keep-alive connection (≤ ${IDLE_TARGET_KB} KB) is \`npm run bench:idle\`'s: see "Idle connections".`
