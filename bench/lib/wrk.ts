// Driving wrk and reading its `--latency` report. One thread, a fixed connection count, GET of the URL given.
import { spawnSync } from 'node:child_process'
import type { Children } from './children.js'

export interface WrkOptions {
  readonly url: string
  readonly connections: number
  readonly durationS: number
}

/** What one load run measured, whichever tool drove it. */
export interface LoadResult {
  readonly requests: number
  readonly reqPerS: number
  readonly p50Ms: number
  readonly p99Ms: number
  /** Failed requests: wrk's connect + read + write + timeout errors, or hey's error distribution. */
  readonly socketErrors: number
  /** Responses with a status outside 2xx/3xx. */
  readonly badStatuses: number
}

export type WrkResult = LoadResult

export function wrkArgs(o: WrkOptions): string[] {
  return ['-t1', `-c${o.connections}`, `-d${o.durationS}s`, '--latency', o.url]
}

/** Version of the installed wrk, or undefined when wrk is not on PATH. */
export function wrkVersion(): string | undefined {
  // `wrk -v` prints its version, then usage, and exits 1.
  const out = spawnSync('wrk', ['-v'], { encoding: 'utf8', timeout: 5_000 })
  if ((out.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') return undefined
  return /^wrk\s+(\S+)/m.exec(`${out.stdout}${out.stderr}`)?.[1] ?? 'unknown'
}

export async function runWrk(children: Children, o: WrkOptions, signal: AbortSignal): Promise<WrkResult> {
  const args = wrkArgs(o)
  const out = await children.run('wrk', args, signal)
  if (out.code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${out.code ?? out.signal}:\n${out.stderr}`)
  return parseWrk(out.stdout)
}

const UNIT_MS: Readonly<Record<string, number>> = { us: 0.001, ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }

function latencyMs(text: string, percentile: string): number {
  const m = new RegExp(`^\\s*${percentile}%\\s+([\\d.]+)(us|ms|s|m|h)\\s*$`, 'm').exec(text)
  if (m === null) throw new Error(`no ${percentile}% latency in wrk output:\n${text}`)
  return Number(m[1]) * UNIT_MS[m[2]!]!
}

function count(text: string, re: RegExp): number {
  const m = re.exec(text)
  return m === null ? 0 : Number(m[1])
}

/** Parses wrk's stdout. Throws, quoting the output, if a required line is missing. */
export function parseWrk(text: string): WrkResult {
  const requests = /^\s*(\d+) requests in /m.exec(text)
  const reqPerS = /^Requests\/sec:\s*([\d.]+)/m.exec(text)
  if (requests === null || reqPerS === null) throw new Error(`unexpected wrk output:\n${text}`)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text)
  return {
    requests: Number(requests[1]),
    reqPerS: Number(reqPerS[1]),
    p50Ms: latencyMs(text, '50'),
    p99Ms: latencyMs(text, '99'),
    socketErrors: errors === null ? 0 : errors.slice(1).reduce((sum, n) => sum + Number(n), 0),
    badStatuses: count(text, /Non-2xx or 3xx responses: (\d+)/),
  }
}
