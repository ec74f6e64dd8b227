// Turning the measured rounds into medians, ratios and the three outputs: the stdout summary, the
// dated results file and docs/benchmarks.md. Pure functions of the run; no I/O.
import type { Machine, QuietCheck } from './system.js'
import type { WrkResult } from './wrk.js'

export interface Sample {
  /** 1-based; warm-up runs are not samples. */
  readonly round: number
  readonly wrk: WrkResult
  /** CPU time of the candidate's process tree during the run, in seconds; undefined for `direct`. */
  readonly cpuS: number | undefined
  readonly quiet: QuietCheck
}

export interface CandidateRuns {
  readonly name: string
  readonly samples: readonly Sample[]
}

export interface Summary {
  readonly name: string
  readonly reqPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** CPU-seconds per 1,000 requests; undefined when there is no proxy process to measure. */
  readonly cpuSPer1k: number | undefined
}

export interface Ratio {
  /** "switchyard / http-proxy". */
  readonly label: string
  readonly reqPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly cpuSPer1k: number | undefined
}

export interface RunReport {
  readonly date: string
  readonly command: string
  readonly wrkCommand: string
  readonly protocol: string
  readonly machine: Machine
  readonly elapsedS: number
  readonly summaries: readonly Summary[]
  readonly ratios: readonly Ratio[]
  readonly runs: readonly CandidateRuns[]
  readonly notes: readonly string[]
  /** Name and one Markdown line per candidate, in run order. */
  readonly candidates: readonly { readonly name: string; readonly description: string }[]
}

/** Median of a non-empty list (mean of the middle two when even). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Each figure is the median over rounds, taken on its own. */
export function summarize(runs: CandidateRuns): Summary {
  const cpu = runs.samples.flatMap((s) => (s.cpuS === undefined ? [] : [(s.cpuS / s.wrk.requests) * 1_000]))
  return {
    name: runs.name,
    reqPerS: median(runs.samples.map((s) => s.wrk.reqPerS)),
    p50Ms: median(runs.samples.map((s) => s.wrk.p50Ms)),
    p99Ms: median(runs.samples.map((s) => s.wrk.p99Ms)),
    cpuSPer1k: cpu.length === 0 ? undefined : median(cpu),
  }
}

/** `subject` over every other candidate, figure by figure. */
export function ratios(subject: Summary, references: readonly Summary[]): Ratio[] {
  return references.map((ref) => ({
    label: `${subject.name} / ${ref.name}`,
    reqPerS: subject.reqPerS / ref.reqPerS,
    p50Ms: subject.p50Ms / ref.p50Ms,
    p99Ms: subject.p99Ms / ref.p99Ms,
    cpuSPer1k:
      subject.cpuSPer1k === undefined || ref.cpuSPer1k === undefined ? undefined : subject.cpuSPer1k / ref.cpuSPer1k,
  }))
}

/** Notes a reader needs to trust (or distrust) the numbers: errors, non-2xx, a busy box. */
export function runNotes(runs: readonly CandidateRuns[]): string[] {
  const notes: string[] = []
  for (const { name, samples } of runs) {
    for (const s of samples) {
      const at = `${name}, round ${s.round}`
      if (s.wrk.socketErrors > 0) notes.push(`${at}: ${s.wrk.socketErrors} socket errors`)
      if (s.wrk.badStatuses > 0) notes.push(`${at}: ${s.wrk.badStatuses} non-2xx/3xx responses`)
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
    }
  }
  return notes
}

const fmtInt = (n: number): string => Math.round(n).toLocaleString('en-US')
const fmtMs = (n: number): string => n.toFixed(2)
const fmtCpu = (n: number | undefined): string => (n === undefined ? '—' : n.toFixed(3))
const fmtRatio = (n: number | undefined): string => (n === undefined ? '—' : `${n.toFixed(2)}×`)

const TABLE_HEAD = ['candidate', 'median req/s', 'p50 ms', 'p99 ms', 'CPU-s per 1k req']
const RATIO_HEAD = ['ratio', 'req/s', 'p50', 'p99', 'CPU per request']

function tableRows(summaries: readonly Summary[]): string[][] {
  return summaries.map((s) => [s.name, fmtInt(s.reqPerS), fmtMs(s.p50Ms), fmtMs(s.p99Ms), fmtCpu(s.cpuSPer1k)])
}

function ratioRows(rs: readonly Ratio[]): string[][] {
  return rs.map((r) => [r.label, fmtRatio(r.reqPerS), fmtRatio(r.p50Ms), fmtRatio(r.p99Ms), fmtRatio(r.cpuSPer1k)])
}

function plainTable(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  return [line(head), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}

function mdTable(head: readonly string[], rows: readonly string[][]): string {
  const line = (cells: readonly string[]): string => `| ${cells.join(' | ')} |`
  return [line(head), `|${head.map((_, i) => (i === 0 ? '---' : '--:')).join('|')}|`, ...rows.map(line)].join('\n')
}

const RATIO_LEGEND =
  'Ratios are the subject over the reference, figure by figure: above 1× is better for req/s, below 1× is better for latency and CPU.'

export function formatText(r: RunReport): string {
  return [
    plainTable(TABLE_HEAD, tableRows(r.summaries)),
    '',
    plainTable(RATIO_HEAD, ratioRows(r.ratios)),
    '',
    ...r.notes.map((n) => `note: ${n}`),
  ].join('\n')
}

function machineLines(m: Machine): string[] {
  return [`- CPUs (nproc): ${m.cpus}, ${m.cpuModel}`, `- Kernel: ${m.kernel}`, `- Node: ${m.node}`, `- wrk: ${m.wrk}`]
}

function sharedCoresCaveat(m: Machine): string {
  return `wrk, the three backends and the proxy under test all share the same ${m.cpus} CPU${m.cpus === 1 ? '' : 's'}, so absolute numbers are noisy and say little about a dedicated machine. The ratios, measured in one interleaved run, are what matter.`
}

export function formatResultsMd(r: RunReport): string {
  const perRound = r.runs.map((c) => [
    c.name,
    ...c.samples.map((s) => `${fmtInt(s.wrk.reqPerS)} (${fmtMs(s.wrk.p99Ms)} ms)`),
  ])
  const roundHead = ['candidate', ...(r.runs[0]?.samples ?? []).map((s) => `round ${s.round}`)]
  return `# Benchmark run, ${r.date}

Command: \`${r.command}\`

Load: \`${r.wrkCommand}\` against each candidate. ${r.protocol} Whole run: ${Math.round(r.elapsedS)} s.

## Machine

${machineLines(r.machine).join('\n')}

${sharedCoresCaveat(r.machine)}

## Results

${mdTable(TABLE_HEAD, tableRows(r.summaries))}

${mdTable(RATIO_HEAD, ratioRows(r.ratios))}

${RATIO_LEGEND}

## Rounds (req/s, p99)

${mdTable(roundHead, perRound)}

## Notes

${r.notes.length === 0 ? '- none: no socket errors, no non-2xx responses, no waits for a busy box.' : r.notes.map((n) => `- ${n}`).join('\n')}
`
}

export function formatDocsMd(r: RunReport, resultsPath: string): string {
  return `# Benchmarks

\`npm run bench\` measures the Switchyard proxy path side by side with reference candidates, in one interleaved run, and reports ratios:

${r.candidates.map((c) => `- **${c.name}**: ${c.description}`).join('\n')}

The candidates are listed in \`bench/candidates.ts\`; adding one (nginx, HAProxy, @fastify/http-proxy, ...) is one entry there.

## How it is measured

- Three minimal Node backends (\`bench/peers/backends.ts\`) answer every GET with a 100-byte body over keep-alive. Everything listens on 127.0.0.1, on ports the OS hands out.
- Load comes from \`${r.wrkCommand.replace(/http:\S+/, 'URL')}\`. ${r.protocol}
- CPU is the proxy's own user+system time from \`/proc/PID/stat\` during each run, reported as CPU-seconds per 1,000 requests.
- Before each run the bench samples \`/proc/stat\` for 1 s and waits (up to 10 s) while more than 25% of a core is busy outside its own processes.

Run it with \`npm run bench\` (about 2 minutes), or \`npm run bench -- --quick\` for a smoke run (one 3 s run per candidate, about 20 s). \`--duration N\` (seconds) and \`--connections N\` change the load. It needs wrk (\`apt-get install -y wrk\`).

## Latest results (${r.date})

Command: \`${r.command}\`

${machineLines(r.machine).join('\n')}

${mdTable(TABLE_HEAD, tableRows(r.summaries))}

${mdTable(RATIO_HEAD, ratioRows(r.ratios))}

${RATIO_LEGEND}

${sharedCoresCaveat(r.machine)}

Per-round numbers and notes: [${resultsPath}](../${resultsPath}).
`
}
