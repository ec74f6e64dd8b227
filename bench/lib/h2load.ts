// Driving h2load (nghttp2) over HTTP/2 and reading its summary and per-request log. One thread, a
// fixed number of connections with a fixed number of concurrent streams each, GET of the URL given,
// for a set duration. An http:// URL is HTTP/2 with prior knowledge (h2c); an https:// one offers only
// `h2` by ALPN, so a server that would fall back to HTTP/1.1 fails the run instead of being measured
// over HTTP/1.1 pipelining. h2load prints no latency percentiles (only min, max, mean and sd), so p50
// and p99 come from its `--log-file`: one tab-separated line per request of the measured period,
// start time (µs since the epoch), HTTP status (-1 for a failed stream), µs until the end of the
// response.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Children } from './children.js'
import type { LoadResult } from './wrk.js'

export interface H2loadOptions {
  readonly url: string
  readonly connections: number
  /** Concurrent streams per connection (`-m`): requests in flight = connections × streams. */
  readonly streams: number
  readonly durationS: number
}

/**
 * TLS 1.3 suites offered over https://, in OpenSSL's default order, which is what wrk offers: so that
 * a server that follows the client's preference (nginx's default) picks the same suite as one that
 * follows its own (Node, HAProxy). h2load's own default puts TLS_AES_128_GCM_SHA256 first.
 */
export const H2LOAD_TLS13_CIPHERS = 'TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256'

/**
 * h2load's arguments, writing the per-request log to `logFile`. No `--warm-up-time`: the bench warms
 * every candidate up with runs of its own, and a warm-up inside the run would leave its requests out
 * of the count while their CPU time is still measured (as with wrk, the run includes connection setup).
 */
export function h2loadArgs(o: H2loadOptions, logFile: string): string[] {
  const tls = o.url.startsWith('https:') ? [`--tls13-ciphers=${H2LOAD_TLS13_CIPHERS}`] : []
  return [
    '-t',
    '1',
    '-c',
    String(o.connections),
    '-m',
    String(o.streams),
    '-D',
    String(o.durationS),
    '--npn-list=h2',
    ...tls,
    `--log-file=${logFile}`,
    o.url,
  ]
}

/** Runs h2load once, its log in a private temporary directory; throws with its output if it fails. */
export async function runH2load(children: Children, o: H2loadOptions, signal: AbortSignal): Promise<LoadResult> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-h2load-'))
  try {
    const logFile = path.join(dir, 'requests.tsv')
    const args = h2loadArgs(o, logFile)
    const out = await children.run('h2load', args, signal)
    if (out.code !== 0)
      throw new Error(`h2load ${args.join(' ')} exited ${out.code ?? out.signal}:\n${out.stdout}${out.stderr}`)
    let log: string
    try {
      log = readFileSync(logFile, 'utf8')
    } catch (err) {
      throw new Error(`h2load wrote no log (${(err as Error).message}); its output:\n${out.stdout}${out.stderr}`)
    }
    return parseH2load(out.stdout, log)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * The `p`th percentile (0 < p ≤ 100) of `sorted` (ascending, non-empty) by nearest rank: the smallest
 * value with at least p% of the values at or below it.
 */
export function nearestRank(sorted: ArrayLike<number>, p: number): number {
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]!
}

/**
 * Durations in µs of the responses in an h2load `--log-file`, ascending; failed streams (status -1)
 * are left out. Throws, quoting the line, on a line that is not three integer columns.
 */
export function responseTimesUs(log: string): Float64Array {
  const lines = log.split('\n')
  const out = new Float64Array(lines.length)
  let n = 0
  for (const [i, line] of lines.entries()) {
    if (line === '') continue
    const m = /^(\d+)\t(-?\d+)\t(\d+)(?:\t|$)/.exec(line)
    if (m === null) throw new Error(`unexpected line ${i + 1} in h2load's log: ${JSON.stringify(line)}`)
    if (Number(m[2]) < 0) continue
    out[n++] = Number(m[3])
  }
  return out.subarray(0, n).sort()
}

/**
 * Reads h2load's stdout and its per-request log. Throws, quoting the output, if a required line is
 * missing, if the connection did not speak HTTP/2, or if the log holds no response.
 *
 * h2load's counts: `done` streams either `succeeded` (a 2xx or 3xx response) or `failed`; `errored`
 * is the part of `failed` with no complete response (reset streams, broken connections, and the
 * `timeout`s, which it counts in `errored` too). So socket errors are `errored` and bad statuses are
 * `failed − errored`; requests are the responses, `done − errored`, as wrk counts them.
 */
export function parseH2load(stdout: string, log: string): LoadResult {
  const finished = /^finished in [\d.]+\w*, ([\d.]+) req\/s/m.exec(stdout)
  const counts =
    /^requests: \d+ total, \d+ started, (\d+) done, \d+ succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/m.exec(
      stdout,
    )
  if (finished === null || counts === null) throw new Error(`unexpected h2load output:\n${stdout}`)
  const protocol = /^Application protocol: (\S+)/m.exec(stdout)?.[1]
  if (protocol !== 'h2' && protocol !== 'h2c')
    throw new Error(`h2load did not speak HTTP/2 (application protocol: ${protocol ?? 'none'}):\n${stdout}`)
  const [done, failed, errored] = [counts[1], counts[2], counts[3]].map(Number) as [number, number, number]
  const times = responseTimesUs(log)
  if (times.length === 0) throw new Error(`h2load logged no response; its output:\n${stdout}`)
  return {
    requests: done - errored,
    reqPerS: Number(finished[1]),
    p50Ms: nearestRank(times, 50) / 1_000,
    p99Ms: nearestRank(times, 99) / 1_000,
    socketErrors: errored,
    badStatuses: Math.max(failed - errored, 0),
  }
}
