// End-to-end benchmark: Switchyard against the other candidates in bench/candidates.ts, in one
// interleaved run (A B C, A B C, ...), so that drift on a shared box hits all of them alike.
// Prints a summary, writes bench/results/YYYY-MM-DD.md and overwrites docs/benchmarks.md.
// Usage: npm run bench [-- --quick] [-- --duration SECONDS] [-- --connections N]
import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type Candidate, candidates, SUBJECT } from './candidates.js'
import { Children, freePorts } from './lib/children.js'
import {
  type CandidateRuns,
  formatDocsMd,
  formatResultsMd,
  formatText,
  type RunReport,
  ratios,
  runNotes,
  type Sample,
  summarize,
} from './lib/report.js'
import { CLK_TCK, describeMachine, treeTicks, waitForQuiet } from './lib/system.js'
import { runWrk, wrkArgs, wrkVersion } from './lib/wrk.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const BACKEND_COUNT = 3
/** How long a child gets to start accepting connections. */
const START_TIMEOUT_MS = 15_000

interface Plan {
  readonly durationS: number
  readonly connections: number
  readonly rounds: number
  /** Per candidate, before the measured rounds; 0 skips the warm-up. */
  readonly warmupS: number
}

/** A candidate up and listening. */
interface Target {
  readonly name: string
  readonly port: number
  /** The process whose CPU time is measured; undefined for `direct`. */
  readonly pid: number | undefined
}

const USAGE = `Usage: npm run bench [-- OPTIONS]
  --quick            3 s runs, 1 round, no warm-up (CI smoke)
  --duration N       seconds per measured run (default 10; 3 with --quick)
  --connections N    wrk connections (default 50)
  -h, --help         show this help`

type ParsedArgs = { readonly kind: 'plan'; readonly plan: Plan } | { readonly kind: 'help' }

function parsePlan(argv: readonly string[]): ParsedArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      connections: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) return { kind: 'help' }
  const positive = (flag: string, raw: string | undefined, fallback: number): number => {
    if (raw === undefined) return fallback
    const n = Number(raw)
    if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${flag} wants a positive integer, got ${raw}`)
    return n
  }
  const plan: Plan = values.quick
    ? { durationS: positive('duration', values.duration, 3), connections: 50, rounds: 1, warmupS: 0 }
    : { durationS: positive('duration', values.duration, 10), connections: 50, rounds: 3, warmupS: 2 }
  return { kind: 'plan', plan: { ...plan, connections: positive('connections', values.connections, plan.connections) } }
}

class UsageError extends Error {}

/** Builds dist/ with `npm run build`, so that the run measures the current source. */
function ensureBuilt(): void {
  process.stderr.write('building dist/ (npm run build)\n')
  const out = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
  if (out.status !== 0) throw new Error(`npm run build failed (exit ${out.status ?? out.signal})`)
}

async function startTargets(children: Children, signal: AbortSignal): Promise<Target[]> {
  const procCount = candidates.filter((c) => c.kind === 'process').length
  const ports = await freePorts(BACKEND_COUNT + procCount)
  const backendPorts = ports.slice(0, BACKEND_COUNT)
  const candidatePorts = ports.slice(BACKEND_COUNT)

  const backends = children.start('backends', process.execPath, [
    '--import',
    'tsx',
    path.join(ROOT, 'bench', 'peers', 'backends.ts'),
    ...backendPorts.map(String),
  ])
  for (const port of backendPorts) await children.waitForPort(backends, port, START_TIMEOUT_MS, signal)

  const targets: Target[] = []
  for (const candidate of candidates) targets.push(await startTarget(candidate))
  return targets

  async function startTarget(candidate: Candidate): Promise<Target> {
    switch (candidate.kind) {
      case 'direct':
        return { name: candidate.name, port: backendPorts[0]!, pid: undefined }
      case 'process': {
        const port = candidatePorts.shift()!
        const cmd = candidate.launch({ port, backendPorts, rootDir: ROOT })
        const child = children.start(candidate.name, cmd.file, cmd.args)
        await children.waitForPort(child, port, START_TIMEOUT_MS, signal)
        return { name: candidate.name, port, pid: child.pid }
      }
      default: {
        const unreachable: never = candidate
        throw new Error(`unknown candidate ${JSON.stringify(unreachable)}`)
      }
    }
  }
}

const url = (t: Target): string => `http://127.0.0.1:${t.port}/`

async function measure(children: Children, targets: readonly Target[], plan: Plan, signal: AbortSignal) {
  const wrkFor = (t: Target, durationS: number) => ({ url: url(t), connections: plan.connections, durationS })
  if (plan.warmupS > 0) {
    for (const t of targets) {
      log(`warm-up   ${t.name.padEnd(12)} ${plan.warmupS} s`)
      await runWrk(children, wrkFor(t, plan.warmupS), signal)
    }
  }
  const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
  for (let round = 1; round <= plan.rounds; round++) {
    for (const t of targets) {
      const quiet = await waitForQuiet(process.pid, signal)
      const ticks0 = t.pid === undefined ? 0 : treeTicks(t.pid)
      const wrk = await runWrk(children, wrkFor(t, plan.durationS), signal)
      const ticks1 = t.pid === undefined ? 0 : treeTicks(t.pid)
      if (t.pid !== undefined && !children.pids().includes(t.pid))
        throw new Error(`${t.name} died during round ${round}`)
      const cpuS = t.pid === undefined ? undefined : (ticks1 - ticks0) / CLK_TCK
      samples.get(t.name)!.push({ round, wrk, cpuS, quiet })
      const cpu = cpuS === undefined ? '' : `  cpu ${cpuS.toFixed(2)} s`
      log(
        `round ${round}/${plan.rounds} ${t.name.padEnd(12)} ${Math.round(wrk.reqPerS)} req/s  p50 ${wrk.p50Ms.toFixed(2)} ms  p99 ${wrk.p99Ms.toFixed(2)} ms${cpu}`,
      )
    }
  }
  return targets.map((t): CandidateRuns => ({ name: t.name, samples: samples.get(t.name)! }))
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

function localDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ParsedArgs
  try {
    parsed = parsePlan(argv)
  } catch (err) {
    log(`bench: ${(err as Error).message}\n${USAGE}`)
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

  const wrk = wrkVersion()
  if (wrk === undefined) {
    log('bench: wrk is not on PATH. Install it first:\n\n  apt-get install -y wrk\n')
    return 1
  }
  ensureBuilt()

  const aborter = new AbortController()
  const onSignal = (): void => aborter.abort(new Error('interrupted'))
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const children = new Children(ROOT)
  const killOnExit = (): void => children.killAllNow()
  process.on('exit', killOnExit)

  const started = new Date()
  const command = `npm run bench${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`
  const protocol =
    plan.rounds === 1
      ? 'One measured run per candidate, no warm-up (quick mode).'
      : `Each candidate is warmed up for ${plan.warmupS} s, then measured in ${plan.rounds} interleaved rounds (${candidates.map((c) => c.name).join(', ')}, then again); each figure is the median over the rounds.`
  log(
    `${command}: ${candidates.length} candidates, ${plan.rounds} round(s) of ${plan.durationS} s, ${plan.connections} connections`,
  )
  try {
    const targets = await startTargets(children, aborter.signal)
    const runs = await measure(children, targets, plan, aborter.signal)
    const summaries = runs.map(summarize)
    const isSubject = (s: { name: string }) => s.name === SUBJECT || s.name.startsWith(`${SUBJECT}+`)
    const references = summaries.filter((s) => !isSubject(s))
    const date = localDate(started)
    const report: RunReport = {
      date,
      command,
      wrkCommand: `wrk ${wrkArgs({ url: 'http://127.0.0.1:PORT/', connections: plan.connections, durationS: plan.durationS }).join(' ')}`,
      protocol,
      machine: describeMachine(wrk),
      elapsedS: (Date.now() - started.getTime()) / 1_000,
      summaries,
      ratios: summaries.filter(isSubject).flatMap((subject) => ratios(subject, references)),
      runs,
      notes: runNotes(runs),
      candidates: candidates.map((c) => ({ name: c.name, description: c.description })),
    }
    const resultsPath = `bench/results/${date}.md`
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(path.join(ROOT, resultsPath), formatResultsMd(report))
    mkdirSync(path.join(ROOT, 'docs'), { recursive: true })
    writeFileSync(path.join(ROOT, 'docs', 'benchmarks.md'), formatDocsMd(report, resultsPath))
    process.stdout.write(`\n${formatText(report)}\n\nwrote ${resultsPath} and docs/benchmarks.md\n`)
    return 0
  } catch (err) {
    if (aborter.signal.aborted) {
      log('bench: interrupted')
      return 130
    }
    throw err
  } finally {
    await children.stopAll()
    process.off('exit', killOnExit)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
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
