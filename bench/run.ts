// End-to-end benchmark: Switchyard against nginx, HAProxy and Node proxies, case by case
// (bench/cases.ts). Each case starts its own candidates (bench/candidates.ts) in front of the same
// three backends, warms them up, then measures them in interleaved rounds (A B C, A B C, ...) so that
// drift on a shared box hits all of them alike, and stops them. Prints a summary and writes
// bench/results/YYYY-MM-DD.md (every run) and docs/benchmarks.md (tables, ratios, notes).
// With --base DIR, every case that runs `switchyard` also runs `switchyard-base`, the Switchyard built in
// another checkout (e.g. `git worktree add ../base COMMIT && cd ../base && npm ci`), next to it in each
// round (after it in odd rounds, before it in even ones), and reports the two round by round; such a run compares builds, so it writes
// bench/results/YYYY-MM-DD-base.md only and leaves docs/benchmarks.md alone.
// Switchyard runs on both HTTP/1.1 engines where the engine targets are stated (bench/cases.ts), and
// with --node PATH (repeatable) the Node-based candidates run under each Node named, side by side in
// the same rounds (bench/lib/nodes.ts, bench/lib/expand.ts); --engines keeps the cases and candidates
// the targets need (bench/lib/engines.ts): `npm run bench:engines` is that, under Node 20 and 24.
// Usage: npm run bench [-- --quick] [-- --case NAME ...] [-- --candidate NAME ...] [-- --base DIR]
//   [-- --engines] [-- --node PATH ...] [-- --no-docs] [-- --duration S --rounds N --warmup S]
import { spawnSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { defaultEngine, type Engine } from '../src/config/schema.js'
import { BASE, baseProblem, candidate, candidates, type Scheme, SUBJECT } from './candidates.js'
import { type Case, caseNames, cases, ENGINE_CASES, ENGINE_RUN_SKIPS, loadToolOf, misfits } from './cases.js'
import type { BackendKind } from './lib/backends.js'
import { ensureBuilt, localDate } from './lib/build.js'
import { freePorts } from './lib/children.js'
import { extractSection } from './lib/docs-section.js'
import { expandCase, runName } from './lib/expand.js'
import { describeLoad, type Load } from './lib/load.js'
import { runRounds } from './lib/measure.js'
import { NODE24_INSTALL, type NodeRuntime, nativeParserCheck, SELF, selfNode } from './lib/nodes.js'
import { backendsOption, nodesOption, SetupError, SHARED_OPTIONS, UsageError } from './lib/options.js'
import {
  type CaseResult,
  ENGINE_NOTES_BEGIN,
  ENGINE_NOTES_END,
  formatDocsMd,
  formatResultsMd,
  formatText,
  IDLE_BEGIN,
  IDLE_END,
  type LoadVariant,
  type NodeInfo,
  PIPELINE_BEGIN,
  PIPELINE_END,
  PROFILE_BEGIN,
  PROFILE_END,
  type RunReport,
  type Skipped,
  summarize,
} from './lib/report.js'
import { BenchSession } from './lib/session.js'
import { describeMachine } from './lib/system.js'
import { type StartContext, startCandidate, type Target } from './lib/targets.js'
import { packageVersion, probeTool, TOOL_PACKAGES, type Tool } from './lib/tools.js'
import { runWrk } from './lib/wrk.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const BACKEND_COUNT = 3
/** Rough cost of things other than load, for the planned time: a candidate's start, a quiet check. */
const START_S = 1.5
const QUIET_CHECK_S = 1.2
const BUILD_S = 20

interface Plan {
  readonly durationS: number
  readonly rounds: number
  /** Per candidate and case, before the measured rounds; 0 skips the warm-up. */
  readonly warmupS: number
  readonly quick: boolean
  /** The selected cases, their candidates narrowed by `--candidate` and widened by `--base`. */
  readonly cases: readonly Case[]
  readonly backends: BackendKind | 'auto'
  /** The other build `switchyard-base` runs; undefined without `--base`. */
  readonly base: BaseBuild | undefined
  /** The Nodes the Node-based candidates run under, each in turn in every round (`--node`; the bench's own by default). */
  readonly nodes: readonly NodeRuntime[]
  /** The engine `switchyard` runs: the bench's `defaultEngine()`, which its children inherit. */
  readonly defaultEngine: Engine
  /** `--engines`: the cases and candidates the engine targets need. */
  readonly engines: boolean
  /** Whether to write docs/benchmarks.md (not with `--no-docs` or `--base`). */
  readonly docs: boolean
}

/** A checkout with a built Switchyard, named by `--base DIR`. */
interface BaseBuild {
  readonly dir: string
  /** Its commit, short, or `unknown` when git cannot tell. */
  readonly commit: string
}

const USAGE = `Usage: npm run bench [-- OPTIONS]
  --quick            every case once for 2 s, no warm-up (smoke test; figures not to be quoted)
  --case NAME        run only this case (repeat for more): ${caseNames().join(', ')}
  --candidate NAME   run only this candidate in each case (repeat for more; e.g. direct, switchyard)
  --base DIR         also run ${BASE}: Switchyard from the built checkout DIR (not rebuilt),
                     next to ${SUBJECT} (after it in odd rounds, before it in even ones), with
                     the ratio round by round; writes bench/results/DATE-base.md only
  --engines          only the cases the HTTP/1.1 engine targets are stated in (${ENGINE_CASES.join(', ')}),
                     without ${ENGINE_RUN_SKIPS.join(' and ')}; the engine table and targets check come with
                     every run that has both engines (npm run bench:engines: this, 7 s runs, Node 20 and 24)
  --node PATH        run the Node-based candidates (Switchyard, the Node peers) under this Node: a binary,
                     a directory with one (an npm prefix: ${NODE24_INSTALL}),
                     or ${SELF} (the bench's own, default). Repeat it to run them under each, side by side
  --no-docs          write bench/results/ only, leave docs/benchmarks.md alone (for trial runs)
  --duration S       seconds per measured run (default 8; 2 with --quick)
  --rounds N         interleaved rounds per case (default 3; 1 with --quick)
  --warmup S         warm-up seconds per candidate and case (default 2; 0 with --quick)
  --backends KIND    auto (nginx if installed, default) | nginx | node
  -h, --help         show this help`

type ParsedArgs = { readonly kind: 'plan'; readonly plan: Plan } | { readonly kind: 'help' }

function parsePlan(argv: readonly string[]): ParsedArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      case: { type: 'string', multiple: true },
      candidate: { type: 'string', multiple: true },
      base: { type: 'string' },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      engines: { type: 'boolean', default: false },
      ...SHARED_OPTIONS,
    },
    strict: true,
  })
  if (values.help) return { kind: 'help' }
  const count = (flag: string, raw: string | undefined, fallback: number, min: number): number => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n < min)
      throw new UsageError(`--${flag} wants an integer of at least ${min}, got ${raw}`)
    return n
  }
  const selected = (values.case ?? []).flatMap((v) => v.split(','))
  const unknown = selected.filter((name) => !caseNames().includes(name))
  if (unknown.length > 0) throw new UsageError(`unknown case ${unknown.join(', ')}; cases: ${caseNames().join(', ')}`)
  const nodes = nodesOption(values.node)
  const backends = backendsOption(values.backends)
  const only = (values.candidate ?? []).flatMap((v) => v.split(','))
  const known = candidates.map((c) => c.name)
  const strangers = only.filter((name) => !known.includes(name))
  if (strangers.length > 0)
    throw new UsageError(`unknown candidate ${strangers.join(', ')}; candidates: ${known.join(', ')}`)
  const base = values.base === undefined ? undefined : baseBuild(values.base)
  if (base !== undefined && nodes.length > 1)
    throw new UsageError('--base compares two builds under one Node: give at most one --node with it')
  const engines = values.engines
  const inSelection = (name: string): boolean =>
    (selected.length === 0 || selected.includes(name)) &&
    (!engines || (ENGINE_CASES as readonly string[]).includes(name))
  const picked = cases.filter((c) => inSelection(c.name))
  const skips: readonly string[] = engines ? ENGINE_RUN_SKIPS : []
  const quick = values.quick
  return {
    kind: 'plan',
    plan: {
      durationS: count('duration', values.duration, quick ? 2 : 8, 1),
      rounds: count('rounds', values.rounds, quick ? 1 : 3, 1),
      warmupS: count('warmup', values.warmup, quick ? 0 : 2, 0),
      quick,
      cases: picked.map((c) => ({
        ...c,
        candidates: caseCandidates(c.candidates, only, base !== undefined).filter((n) => !skips.includes(n)),
      })),
      backends,
      base,
      nodes,
      defaultEngine: defaultEngine(),
      engines,
      docs: base === undefined && !values['no-docs'],
    },
  }
}

/** `dir` as the base build; a usage error when it has no built Switchyard. */
function baseBuild(raw: string): BaseBuild {
  const dir = path.resolve(raw)
  const problem = baseProblem(dir)
  if (problem !== undefined) throw new UsageError(`--base: ${problem}`)
  return { dir, commit: commitOf(dir) }
}

/** The short commit checked out in `dir`, or `unknown` when git cannot tell. */
function commitOf(dir: string): string {
  const git = spawnSync('git', ['-C', dir, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8', timeout: 5_000 })
  return git.status === 0 ? git.stdout.trim() : 'unknown'
}

/** Whether `dir` has uncommitted changes to tracked files under src/ (what its build is made of). */
function dirty(dir: string): boolean {
  const git = spawnSync(
    'git',
    ['--no-optional-locks', '-C', dir, 'status', '--porcelain', '--untracked-files=no', '--', 'src'],
    {
      encoding: 'utf8',
      timeout: 5_000,
    },
  )
  return git.status === 0 && git.stdout.trim() !== ''
}

/** A case's candidates: `switchyard-base` after `switchyard` with `--base`, then only those `--candidate` names. */
function caseCandidates(names: readonly string[], only: readonly string[], withBase: boolean): string[] {
  const all = withBase ? names.flatMap((n) => (n === SUBJECT ? [n, BASE] : [n])) : [...names]
  return only.length === 0 ? all : all.filter((n) => only.includes(n))
}

/** The plan of a plain `npm run bench`. */
function defaultPlan(): Plan {
  const parsed = parsePlan([])
  if (parsed.kind !== 'plan') throw new Error('no default plan')
  return parsed.plan
}

/**
 * What `npm run bench:engines` is planned to take (package.json: `--engines --duration 7` under two
 * Nodes), for the docs; the second Node stands in for Node 24.
 */
function enginesPlan(): Plan {
  const parsed = parsePlan(['--engines', '--duration', '7'])
  if (parsed.kind !== 'plan') throw new Error('no engines plan')
  const self = selfNode()
  return { ...parsed.plan, nodes: [self, { ...self, label: `${self.label}-other` }] }
}

/** What a run starts for case `c`: its candidates across the Nodes, its subjects, one-worker pairs. */
const expansion = (c: Case, plan: Plan) => expandCase(c.candidates, c.subjects, plan.nodes, plan.defaultEngine)

/** Seconds the plan should take on a quiet box: load time plus starts and quiet checks. */
function plannedSeconds(plan: Plan): number {
  let total = BUILD_S
  for (const c of plan.cases) {
    const n = expansion(c, plan).entries.length
    total += n * (START_S + plan.warmupS) + plan.rounds * n * (plan.durationS + QUIET_CHECK_S)
    if (c.kind === 'fixed-rate' && !plan.cases.some((other) => other.name === c.rateFrom.case))
      total += plan.durationS + QUIET_CHECK_S
  }
  return total
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

const fmtReqPerS = (n: number): string => `${Math.round(n).toLocaleString('en-US')} req/s`

/** Median req/s per case and candidate, for cases that take their rate from an earlier one. */
type RatesSeen = Map<string, Map<string, number>>

/** Runs one case: starts its candidates, measures them, stops them. */
async function runCase(
  c: Case,
  plan: Plan,
  sc: StartContext,
  seen: RatesSeen,
  tools: Readonly<Record<string, string>>,
): Promise<CaseResult> {
  const tool = loadToolOf(c)
  const unfit = misfits(c)
  if (unfit.length > 0)
    throw new Error(`bench/cases.ts: case ${c.name} drives ${unfit.join(', ')} with ${tool}, which they do not answer`)
  if (tools[tool] === 'missing')
    return {
      kind: 'skipped',
      name: c.name,
      title: c.title,
      reason: `${tool} is not installed (\`apt-get install -y ${TOOL_PACKAGES[tool]}\`)`,
    }
  const expanded = expansion(c, plan)
  const wanted = expanded.entries
  const ports = await freePorts(wanted.length)
  const targets: Target[] = []
  const skipped: Skipped[] = []
  const notes: string[] = []
  try {
    for (const [i, entry] of wanted.entries()) {
      const outcome = await startCandidate(entry, ports[i]!, sc)
      switch (outcome.kind) {
        case 'started':
          targets.push(outcome.target)
          if (outcome.note !== undefined) notes.push(outcome.note)
          break
        case 'skipped':
          log(`  ${entry.name}: skipped (${outcome.reason})`)
          skipped.push({ name: entry.name, reason: outcome.reason })
          break
        default: {
          const unreachable: never = outcome
          throw new Error(`unknown start outcome ${JSON.stringify(unreachable)}`)
        }
      }
    }
    let load: Load
    let rate: { perS: number; source: string } | undefined
    switch (c.kind) {
      case 'throughput':
        load = { tool: 'wrk', path: c.path, connections: c.connections, durationS: plan.durationS }
        break
      case 'fixed-rate': {
        const top = await topRate(c, plan, sc, targets, seen)
        rate = {
          perS: Math.round(top.perS * c.rateShare),
          source: `${Math.round(c.rateShare * 100)}% of ${top.source}`,
        }
        load = { tool: 'hey', path: c.path, connections: c.connections, durationS: plan.durationS, ratePerS: rate.perS }
        break
      }
      case 'h2-throughput':
        load = {
          tool: 'h2load',
          path: c.path,
          connections: c.connections,
          streams: c.streams,
          durationS: plan.durationS,
        }
        break
      default: {
        const unreachable: never = c
        throw new Error(`unknown case ${JSON.stringify(unreachable)}`)
      }
    }
    if (plan.base !== undefined && targets.some((t) => t.name === BASE))
      notes.push(
        `${BASE}: the build in ${plan.base.dir}, commit ${plan.base.commit}; ${SUBJECT}: this checkout, commit ${commitOf(ROOT)}${dirty(ROOT) ? ' with uncommitted changes' : ''}`,
      )
    // With a base build, the two builds trade places every other round, so that neither always runs first.
    const rounds = plan.base === undefined ? plan : { ...plan, swap: [SUBJECT, BASE] as const }
    const runs = await runRounds(sc.children, targets, load, rounds, sc.signal, log)
    seen.set(c.name, new Map(runs.map((r) => [r.name, summarize(r).reqPerS])))
    notes.push(...emptyLogs(targets))
    const scheme = schemeOf(c.subjects[0])
    return {
      kind: 'measured',
      name: c.name,
      title: c.title,
      load: c.kind === 'fixed-rate' ? 'fixed-rate' : 'throughput',
      loadCommand: describeLoad(load, scheme),
      loadVariants: loadVariants(load, scheme, targets),
      subjects: expanded.subjects,
      oneWorker: expanded.oneWorker,
      layers: c.kind === 'throughput' && c.layers,
      runs,
      skipped,
      notes,
      rate,
      note: c.note,
      goals: (c.kind === 'fixed-rate' ? undefined : c.goals) ?? [],
    }
  } finally {
    for (const t of targets) {
      if (t.child !== undefined) await sc.children.stop(t.child)
      // Access logs grow by hundreds of MB per case: gone with the candidate.
      if (t.workDir !== undefined) rmSync(t.workDir, { recursive: true, force: true })
    }
  }
}

/** A note for each target whose stdout file (the access log) stayed empty: it did not log what it should. */
function emptyLogs(targets: readonly Target[]): string[] {
  return targets.flatMap((t) => {
    if (t.stdoutFile === undefined || t.candidate === 'switchyard-nolog') return []
    let size = 0
    try {
      size = statSync(t.stdoutFile).size
    } catch {
      // No file: as empty.
    }
    return size > 0 ? [] : [`${t.name}: its log file stayed empty, so no access log was written`]
  })
}

/** The scheme the load tool speaks to candidate `name` (the case's subject: its scheme is the case's). */
function schemeOf(name: string | undefined): Scheme {
  const c = name === undefined ? undefined : candidate(name)
  return c?.kind === 'process' ? (c.scheme ?? 'http') : 'http'
}

/** The targets the load reaches over another scheme than the case's, grouped by scheme, with the command. */
function loadVariants(load: Load, caseScheme: Scheme, targets: readonly Target[]): LoadVariant[] {
  const others = [...new Set(targets.map((t) => t.scheme))].filter((s) => s !== caseScheme)
  return others.map((scheme) => ({
    names: targets.filter((t) => t.scheme === scheme).map((t) => t.name),
    command: describeLoad(load, scheme),
  }))
}

/**
 * The top rate a fixed-rate case is a share of: the median from its source case when that ran in this
 * run, otherwise one wrk run against the source candidate, started for this case.
 */
async function topRate(
  c: Extract<Case, { kind: 'fixed-rate' }>,
  plan: Plan,
  sc: StartContext,
  targets: readonly Target[],
  seen: RatesSeen,
): Promise<{ perS: number; source: string }> {
  // Under the first Node, in a run with several.
  const who = runName(c.rateFrom.candidate, plan.nodes[0], plan.nodes)
  const from = c.rateFrom.case
  const earlier = seen.get(from)?.get(who)
  if (earlier !== undefined) return { perS: earlier, source: `${who}'s median in ${from}: ${fmtReqPerS(earlier)}` }
  const source = cases.find((x) => x.name === from)
  const t = targets.find((x) => x.name === who)
  if (source === undefined || source.kind !== 'throughput' || t === undefined)
    throw new Error(`${c.name} takes its rate from ${who} in ${from}, which cannot be measured here`)
  log(`  ${c.name}: measuring ${who}'s top rate (${from} was not part of this run)`)
  const wrk = await runWrk(
    sc.children,
    {
      url: `${t.scheme}://127.0.0.1:${t.port}${source.path}`,
      connections: source.connections,
      durationS: plan.durationS,
    },
    sc.signal,
  )
  return {
    perS: wrk.reqPerS,
    source: `${who}'s top rate in one ${plan.durationS} s wrk run shaped like ${from}, which was not part of this run: ${fmtReqPerS(wrk.reqPerS)}`,
  }
}

/** Versions of the tools and peer packages, `missing` where absent, for the report. */
function toolVersions(): Record<string, string> {
  const out: Record<string, string> = {}
  for (const tool of ['wrk', 'nginx', 'haproxy', 'hey', 'h2load'] as const satisfies readonly Tool[])
    out[tool] = probeTool(tool)?.version ?? 'missing'
  for (const pkg of ['undici', 'http-proxy', 'fastify', '@fastify/http-proxy'])
    out[pkg] = packageVersion(ROOT, pkg) ?? 'missing'
  return out
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ParsedArgs
  try {
    parsed = parsePlan(argv)
  } catch (err) {
    if (err instanceof SetupError) {
      log(`bench: ${err.message}`)
      return 1
    }
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err
    log(`bench: ${err.message}\n${USAGE}`)
    return 2
  }
  switch (parsed.kind) {
    case 'help':
      process.stdout.write(`${USAGE}\n`)
      return 0
    case 'plan':
      break
    default: {
      const unreachable: never = parsed
      throw new Error(`unknown arguments ${JSON.stringify(unreachable)}`)
    }
  }
  const { plan } = parsed

  if (probeTool('wrk') === undefined) {
    log('bench: wrk is not on PATH. Install it first:\n\n  apt-get install -y wrk\n')
    return 1
  }
  const tools = toolVersions()
  const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`
  const plannedS = plannedSeconds(plan)
  log(
    `${command}: ${plan.cases.length} case(s) (${plan.cases.map((c) => c.name).join(', ')}), ${plan.rounds} round(s) of ${plan.durationS} s, warm-up ${plan.warmupS} s`,
  )
  log(
    `Node-based candidates under ${plan.nodes.map((n) => `${n.version} (${n.label})`).join(' and ')}; switchyard runs the ${plan.defaultEngine} engine (the default)`,
  )
  log(`planned: about ${Math.ceil(plannedS / 60)} min on a quiet box (more if it has to wait or redo runs)`)
  ensureBuilt(ROOT, log)
  const nodes: NodeInfo[] = plan.nodes.map((n) => ({
    label: n.label,
    version: n.version,
    file: n.file,
    nativeParser: nativeParserCheck(n, ROOT),
  }))
  for (const n of nodes)
    if (!n.nativeParser.ok)
      log(`note: under ${n.version} the native engine falls back to node (parser self-test: ${n.nativeParser.reason})`)

  const session = new BenchSession(ROOT, 'switchyard-bench-')
  const started = new Date()
  try {
    const backends = await session.startBackends(BACKEND_COUNT, plan.backends)
    log(`backends: ${backends.kind} on ${backends.ports.join(', ')}`)
    const sc: StartContext = {
      children: session.children,
      rootDir: ROOT,
      baseDir: plan.base?.dir,
      tmpDir: session.tmpDir,
      backendPorts: backends.ports,
      backendChild: backends.child,
      signal: session.signal,
    }
    const seen: RatesSeen = new Map()
    const results: CaseResult[] = []
    for (const c of plan.cases) {
      log(`case ${c.name}: ${c.title}`)
      results.push(await runCase(c, plan, sc, seen, tools))
    }

    const date = localDate(started)
    const used = new Set(plan.cases.flatMap((c) => expansion(c, plan).entries.map((e) => e.candidate.name)))
    const twins = [...new Map(plan.cases.flatMap((c) => expansion(c, plan).twins.map((t) => [t.name, t]))).values()]
    const report: RunReport = {
      date,
      command,
      protocol:
        plan.rounds === 1
          ? `One measured run of ${plan.durationS} s per candidate and case${plan.warmupS > 0 ? `, after a ${plan.warmupS} s warm-up` : ', no warm-up'}.`
          : `In each case every candidate is warmed up for ${plan.warmupS} s, then measured in ${plan.rounds} interleaved rounds of ${plan.durationS} s (all candidates in turn, then again${plan.base === undefined ? '' : `; ${SUBJECT} and ${BASE} trade places every other round`}); each figure is the median over the rounds.`,
      quick: plan.quick,
      machine: describeMachine(tools),
      backends: backends.description,
      elapsedS: (Date.now() - started.getTime()) / 1_000,
      plannedS,
      defaultPlannedS: plannedSeconds(defaultPlan()),
      enginesPlannedS: plannedSeconds(enginesPlan()),
      cases: results,
      candidates: candidates.filter((c) => used.has(c.name)).map((c) => ({ name: c.name, description: c.description })),
      nodes,
      defaultEngine: plan.defaultEngine,
      engineTwins: twins,
    }
    const suffix = `${plan.engines ? '-engines' : ''}${plan.quick ? '-quick' : ''}${plan.base === undefined ? '' : '-base'}`
    const resultsPath = `bench/results/${date}${suffix}.md`
    const docsPath = path.join(ROOT, 'docs', 'benchmarks.md')
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(path.join(ROOT, resultsPath), formatResultsMd(report))
    if (!plan.docs) {
      // A comparison of two builds, or a trial run, is not the page's figures: the page keeps its last plain run.
      const why = plan.base === undefined ? '--no-docs' : '--base'
      process.stdout.write(`\n${formatText(report)}\n\nwrote ${resultsPath} (docs/benchmarks.md left alone: ${why})\n`)
      return 0
    }
    mkdirSync(path.dirname(docsPath), { recursive: true })
    writeFileSync(
      docsPath,
      formatDocsMd(
        report,
        resultsPath,
        previousSection(docsPath, IDLE_BEGIN, IDLE_END),
        previousSection(docsPath, PROFILE_BEGIN, PROFILE_END),
        previousSection(docsPath, PIPELINE_BEGIN, PIPELINE_END),
        previousSection(docsPath, ENGINE_NOTES_BEGIN, ENGINE_NOTES_END),
      ),
    )
    process.stdout.write(`\n${formatText(report)}\n\nwrote ${resultsPath} and docs/benchmarks.md\n`)
    return 0
  } catch (err) {
    if (session.signal.aborted) {
      log('bench: interrupted')
      return 130
    }
    throw err
  } finally {
    await session.close()
  }
}

/** A section another script (bench:idle, bench:profile) or a person last wrote into docs/benchmarks.md, if any. */
function previousSection(docsPath: string, begin: string, end: string): string | undefined {
  try {
    return extractSection(readFileSync(docsPath, 'utf8'), begin, end)
  } catch {
    return undefined
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    log(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exitCode = 1
  },
)
