// What the bench reads from the machine: CPU time from /proc (in clock ticks, CLK_TCK per second),
// whether the box is quiet enough to measure on, and a description of it for the report. Linux only.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** Clock ticks per second, the unit of /proc/PID/stat and /proc/stat (100 nearly everywhere). */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** Share of one core that may be busy outside our processes before a run counts as disturbed. */
const BUSY_LIMIT_PCT_OF_CORE = 25
/** How long to wait for a busy box to calm down before measuring anyway. */
const MAX_QUIET_WAIT_S = 10

interface ProcStat {
  readonly ppid: number
  /** utime + stime, in ticks. */
  readonly ticks: number
}

/** Fields of /proc/PID/stat, or undefined if the process is gone. */
function readProcStat(pid: number): ProcStat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
  // What follows starts at field 3 (state); ppid is field 4, utime 14, stime 15.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) }
}

/**
 * CPU time of `pid` and all its live descendants, in ticks. Descendants are found by scanning /proc
 * for parent PIDs (this kernel may lack /proc/PID/task/TID/children). 0 if `pid` is gone.
 */
export function treeTicks(pid: number): number {
  const stats = new Map<number, ProcStat>()
  const kids = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    const other = Number(entry)
    if (!Number.isInteger(other)) continue
    const stat = readProcStat(other)
    if (stat === undefined) continue
    stats.set(other, stat)
    kids.set(stat.ppid, [...(kids.get(stat.ppid) ?? []), other])
  }
  let total = 0
  const queue = [pid]
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    total += stats.get(next)?.ticks ?? 0
    queue.push(...(kids.get(next) ?? []))
  }
  return total
}

/** Busy ticks summed over all CPUs since boot: everything in /proc/stat's `cpu` line but idle and iowait. */
function systemBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal (guest time is already inside user).
  const [user, nice, system, _idle, _iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  return [user, nice, system, irq, softirq, steal].reduce<number>((sum, t) => sum + (t ?? 0), 0)
}

export type QuietCheck =
  | { readonly kind: 'quiet'; readonly waitedS: number }
  /** Still busy after the longest wait; the run goes ahead and the report says so. */
  | { readonly kind: 'busy'; readonly waitedS: number; readonly outsideBusyPctOfCore: number }

/**
 * Samples the box for 1 s at a time until no more than 25% of a core is busy outside the process
 * tree of `ownPid` (this bench and its children), for at most 10 s of waiting.
 */
export async function waitForQuiet(ownPid: number, signal: AbortSignal): Promise<QuietCheck> {
  const startMs = Date.now()
  for (;;) {
    const t0 = Date.now()
    const sys0 = systemBusyTicks()
    const own0 = treeTicks(ownPid)
    await sleep(1_000, undefined, { signal })
    const outsideTicks = systemBusyTicks() - sys0 - (treeTicks(ownPid) - own0)
    const outsidePct = (outsideTicks / CLK_TCK / ((Date.now() - t0) / 1_000)) * 100
    const waitedS = Math.round((t0 - startMs) / 1_000)
    if (outsidePct <= BUSY_LIMIT_PCT_OF_CORE) return { kind: 'quiet', waitedS }
    if (waitedS >= MAX_QUIET_WAIT_S) return { kind: 'busy', waitedS, outsideBusyPctOfCore: Math.round(outsidePct) }
  }
}

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly node: string
  readonly wrk: string
  readonly kernel: string
}

export function describeMachine(wrkVersion: string): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cpus: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    node: process.version,
    wrk: wrkVersion,
    kernel: `${os.type()} ${os.release()}`,
  }
}
