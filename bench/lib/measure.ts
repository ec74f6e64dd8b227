// One measured run and the interleaved rounds of a case. Before each run the bench waits for a quiet
// box; during it, it measures the candidate's CPU time (its whole process tree) and how busy the box
// was outside the bench. A run during which other processes took more than a quarter of a core is
// redone once; if the redo is disturbed too, it is kept and the report says so.
import type { Children } from './children.js'
import { type Load, runLoad } from './load.js'
import type { Attempt, CandidateRuns, Sample } from './report.js'
import { BUSY_LIMIT_PCT_OF_CORE, CLK_TCK, OutsideBusyMeter, treeTicks, waitForQuiet } from './system.js'
import type { Target } from './targets.js'

export interface Rounds {
  readonly rounds: number
  /** Per candidate, before the measured rounds; 0 skips the warm-up. */
  readonly warmupS: number
  /**
   * Two candidates that trade places in even rounds (A B, then B A, ...), so that neither always runs
   * first: for a comparison round by round. Both must be among the targets; others keep their place.
   */
  readonly swap?: readonly [string, string]
}

/** `targets` in the order of round `round`: `swap`'s two exchanged in even rounds. */
export function roundOrder(targets: readonly Target[], round: number, swap?: readonly [string, string]): Target[] {
  if (swap === undefined || round % 2 === 1) return [...targets]
  const [a, b] = swap
  const ta = targets.find((t) => t.name === a)
  const tb = targets.find((t) => t.name === b)
  if (ta === undefined || tb === undefined) return [...targets]
  return targets.map((t) => (t === ta ? tb : t === tb ? ta : t))
}

type Log = (line: string) => void

async function attempt(children: Children, t: Target, load: Load, signal: AbortSignal): Promise<Attempt> {
  const quiet = await waitForQuiet(process.pid, signal)
  const meter = new OutsideBusyMeter(process.pid)
  const pid = t.child?.pid
  meter.start()
  const t0 = performance.now()
  const ticks0 = pid === undefined ? 0 : treeTicks(pid)
  const result = await runLoad(children, t, load, signal)
  const ticks1 = pid === undefined ? 0 : treeTicks(pid)
  const wallS = (performance.now() - t0) / 1_000
  const outsideBusyPctOfCore = meter.stop()
  if (t.child !== undefined && !children.alive(t.child))
    throw new Error(`${t.name} died during a run:\n${t.child.stderrTail()}`)
  return {
    load: result,
    cpuS: pid === undefined ? undefined : (ticks1 - ticks0) / CLK_TCK,
    wallS,
    quiet,
    outsideBusyPctOfCore,
  }
}

/** One measured run of `load` against `t`, redone once if the box was disturbed during it. */
export async function measureRun(
  children: Children,
  t: Target,
  load: Load,
  round: number,
  signal: AbortSignal,
  log: Log,
): Promise<Sample> {
  const first = await attempt(children, t, load, signal)
  if (first.outsideBusyPctOfCore <= BUSY_LIMIT_PCT_OF_CORE) return { round, ...first }
  log(`  ${t.name}: ${first.outsideBusyPctOfCore}% of a core busy outside the bench during the run; redoing it`)
  const second = await attempt(children, t, load, signal)
  return { round, ...second, discarded: first }
}

/**
 * Warm-up, then `rounds` interleaved rounds (A B C, A B C, ...; see `swap`) over `targets`; samples per
 * target.
 */
export async function runRounds(
  children: Children,
  targets: readonly Target[],
  load: Load,
  plan: Rounds,
  signal: AbortSignal,
  log: Log,
): Promise<CandidateRuns[]> {
  if (plan.warmupS > 0) {
    for (const t of targets) {
      log(`  warm-up ${t.name.padEnd(20)} ${plan.warmupS} s`)
      await runLoad(children, t, { ...load, durationS: plan.warmupS }, signal)
    }
  }
  const samples = new Map<string, Sample[]>(targets.map((t) => [t.name, []]))
  for (let round = 1; round <= plan.rounds; round++) {
    for (const t of roundOrder(targets, round, plan.swap)) {
      const s = await measureRun(children, t, load, round, signal, log)
      samples.get(t.name)!.push(s)
      const cpu = s.cpuS === undefined ? '' : `  cpu ${s.cpuS.toFixed(2)} s`
      log(
        `  round ${round}/${plan.rounds} ${t.name.padEnd(20)} ${Math.round(s.load.reqPerS)} req/s  p50 ${s.load.p50Ms.toFixed(2)} ms  p99 ${s.load.p99Ms.toFixed(2)} ms${cpu}`,
      )
    }
  }
  return targets.map(
    (t): CandidateRuns => ({
      name: t.name,
      candidate: t.candidate,
      family: t.family,
      node: t.node,
      engine: t.engine,
      samples: samples.get(t.name)!,
    }),
  )
}
