// What the bench reads from the machine: CPU time from /proc (in clock ticks, CLK_TCK per second),
// whether the box is quiet enough to measure on, who owns a listening port, memory and open files of
// a process, and a description of the machine for the report. Linux only.
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, readlinkSync } from 'node:fs'
import os from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'

/** Clock ticks per second, the unit of /proc/PID/stat and /proc/stat (100 nearly everywhere). */
export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** Share of one core that may be busy outside our processes before a run counts as disturbed. */
export const BUSY_LIMIT_PCT_OF_CORE = 25
/** How long to wait for a busy box to calm down before measuring anyway. */
const MAX_QUIET_WAIT_S = 10

interface ProcStat {
  readonly ppid: number
  /** utime + stime + cutime + cstime, in ticks: the process and its children that it has reaped. */
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
  // What follows starts at field 3 (state); ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const ticks = [rest[11], rest[12], rest[13], rest[14]].reduce((sum, f) => sum + Number(f), 0)
  return { ppid: Number(rest[1]), ticks }
}

/** Every live process, by PID, with its parent and ticks; children listed per parent. */
function scanProcs(): { stats: Map<number, ProcStat>; kids: Map<number, number[]> } {
  const stats = new Map<number, ProcStat>()
  const kids = new Map<number, number[]>()
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    const stat = readProcStat(pid)
    if (stat === undefined) continue
    stats.set(pid, stat)
    const siblings = kids.get(stat.ppid)
    if (siblings === undefined) kids.set(stat.ppid, [pid])
    else siblings.push(pid)
  }
  return { stats, kids }
}

/** Start time of `pid` since boot, in ticks (field 22 of /proc/PID/stat): with the PID, names one process. */
export function procStartTime(pid: number): number | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[19])
  } catch {
    return undefined
  }
}

/** `pid` and its live descendants (found by parent PID; this kernel may lack /proc/PID/task/TID/children). */
export function treePids(pid: number): number[] {
  const { kids } = scanProcs()
  const out: number[] = []
  const queue = [pid]
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    out.push(next)
    queue.push(...(kids.get(next) ?? []))
  }
  return out
}

/**
 * CPU time of `pid` and all its live descendants, in ticks, including children they have already
 * reaped (so a wrk that ran and exited still counts for the bench's own tree). 0 if `pid` is gone.
 */
export function treeTicks(pid: number): number {
  const { stats, kids } = scanProcs()
  let total = 0
  const queue = [pid]
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    total += stats.get(next)?.ticks ?? 0
    queue.push(...(kids.get(next) ?? []))
  }
  return total
}

/**
 * Busy ticks summed over all CPUs since boot: user, nice, system and steal from /proc/stat's `cpu`
 * line. irq and softirq are left out: loopback traffic we generate ourselves is processed there, and
 * would otherwise count as someone else's load. Steal stays in: it is the hypervisor's other guests.
 */
function systemBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? ''
  // cpu user nice system idle iowait irq softirq steal (guest time is already inside user).
  const [user, nice, system, _idle, _iowait, _irq, _softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number)
  return [user, nice, system, steal].reduce<number>((sum, t) => sum + (t ?? 0), 0)
}

/**
 * Measures how busy the box is outside the process tree of `ownPid` between `start()` and `stop()`,
 * in % of one core. Kernel threads count as outside (ksoftirqd working for our loopback traffic may
 * show up there, which errs on the side of redoing a run).
 */
export class OutsideBusyMeter {
  readonly #ownPid: number
  #t0Ms = 0
  #sys0 = 0
  #own0 = 0

  constructor(ownPid: number) {
    this.#ownPid = ownPid
  }

  start(): void {
    this.#t0Ms = Date.now()
    this.#sys0 = systemBusyTicks()
    this.#own0 = treeTicks(this.#ownPid)
  }

  /** % of one core busy outside our tree since `start()`; never negative. */
  stop(): number {
    const outsideTicks = systemBusyTicks() - this.#sys0 - (treeTicks(this.#ownPid) - this.#own0)
    const seconds = Math.max((Date.now() - this.#t0Ms) / 1_000, 0.001)
    return Math.max(0, Math.round((outsideTicks / CLK_TCK / seconds) * 100))
  }
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
  const meter = new OutsideBusyMeter(ownPid)
  for (;;) {
    const t0 = Date.now()
    meter.start()
    await sleep(1_000, undefined, { signal })
    const outsidePct = meter.stop()
    const waitedS = Math.round((t0 - startMs) / 1_000)
    if (outsidePct <= BUSY_LIMIT_PCT_OF_CORE) return { kind: 'quiet', waitedS }
    if (waitedS >= MAX_QUIET_WAIT_S) return { kind: 'busy', waitedS, outsideBusyPctOfCore: outsidePct }
  }
}

export type PortOwner =
  | { readonly kind: 'ours'; readonly pid: number }
  /** Something listens on the port, but no process in the tree holds the socket. */
  | { readonly kind: 'not-ours' }
  /** Nothing listening found in /proc/net, or the tree's file descriptors could not be read. */
  | { readonly kind: 'unknown'; readonly reason: string }

/** Inodes of the sockets listening on 127.0.0.1:`port` (or on every address), from /proc/net/tcp{,6}. */
function listeningInodes(port: number): Set<string> {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0')
  const inodes = new Set<string>()
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const f = line.trim().split(/\s+/)
      const local = f[1]
      if (local === undefined || f[3] !== '0A' || !local.endsWith(`:${hexPort}`)) continue
      if (f[9] !== undefined) inodes.add(f[9])
    }
  }
  return inodes
}

/** Which process in the tree of `rootPid` holds the socket listening on `port`, if any. */
export function portOwner(rootPid: number, port: number): PortOwner {
  const inodes = listeningInodes(port)
  if (inodes.size === 0) return { kind: 'unknown', reason: `no listening socket on ${port} in /proc/net/tcp` }
  let unreadable = 0
  for (const pid of treePids(rootPid)) {
    let fds: string[]
    try {
      fds = readdirSync(`/proc/${pid}/fd`)
    } catch {
      unreadable++
      continue
    }
    for (const fd of fds) {
      let link: string
      try {
        link = readlinkSync(`/proc/${pid}/fd/${fd}`)
      } catch {
        continue
      }
      const m = /^socket:\[(\d+)\]$/.exec(link)
      if (m !== null && inodes.has(m[1]!)) return { kind: 'ours', pid }
    }
  }
  return unreadable > 0
    ? { kind: 'unknown', reason: `could not read the file descriptors of ${unreadable} process(es)` }
    : { kind: 'not-ours' }
}

/** A `kB` field of /proc/PID/status (VmRSS, VmHWM, ...), in KiB; undefined if the process is gone. */
export function statusKb(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m === null ? undefined : Number(m[1])
  } catch {
    return undefined
  }
}

/** Number of open file descriptors of `pid`; undefined if they cannot be read. */
export function openFdCount(pid: number): number | undefined {
  try {
    return readdirSync(`/proc/${pid}/fd`).length
  } catch {
    return undefined
  }
}

/**
 * The "Max open files" limit of `pid` (default: this process), soft or hard, from /proc/PID/limits;
 * undefined if unreadable or unlimited.
 */
export function openFileLimit(which: 'soft' | 'hard', pid: number | 'self' = 'self'): number | undefined {
  try {
    const m = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))
    const n = Number(m?.[which === 'soft' ? 1 : 2])
    return Number.isInteger(n) ? n : undefined
  } catch {
    return undefined
  }
}

export interface Machine {
  readonly cpus: number
  readonly cpuModel: string
  readonly memoryGiB: number
  readonly node: string
  readonly kernel: string
  /** Load tools and peer servers found, name → version (or `missing`). */
  readonly tools: Readonly<Record<string, string>>
}

export function describeMachine(tools: Readonly<Record<string, string>>): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8')
  return {
    cpus: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    tools,
  }
}
