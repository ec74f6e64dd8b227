// Driving hey at a fixed request rate and reading its summary. hey's `-q` is a rate per worker, so a
// total of RATE req/s over C connections is `-c C -q RATE/C`. Its latency percentiles are printed in
// seconds with 4 decimals: a resolution of 0.1 ms.
import type { Children } from './children.js'
import type { LoadResult } from './wrk.js'

export interface HeyOptions {
  readonly url: string
  readonly connections: number
  readonly durationS: number
  /** Total requests per second over all connections. */
  readonly ratePerS: number
}

export function heyArgs(o: HeyOptions): string[] {
  const perWorker = Math.max(o.ratePerS / o.connections, 0.01)
  return ['-z', `${o.durationS}s`, '-c', String(o.connections), '-q', perWorker.toFixed(2), o.url]
}

/** Runs hey once; throws with its output if it fails or prints no latency distribution. */
export async function runHey(children: Children, o: HeyOptions, signal: AbortSignal): Promise<LoadResult> {
  const args = heyArgs(o)
  const out = await children.run('hey', args, signal)
  if (out.code !== 0) throw new Error(`hey ${args.join(' ')} exited ${out.code ?? out.signal}:\n${out.stderr}`)
  return parseHey(out.stdout)
}

function percentileMs(text: string, pct: number): number {
  const m = new RegExp(`^\\s*${pct}% in ([\\d.]+) secs`, 'm').exec(text)
  if (m === null) throw new Error(`no ${pct}% latency in hey output:\n${text}`)
  return Number(m[1]) * 1_000
}

/** Parses hey's summary. Throws, quoting the output, if a required line is missing. */
export function parseHey(text: string): LoadResult {
  const total = /^\s*Total:\s+([\d.]+) secs/m.exec(text)
  if (total === null) throw new Error(`unexpected hey output:\n${text}`)
  let requests = 0
  let badStatuses = 0
  for (const m of text.matchAll(/^\s*\[(\d{3})\]\s+(\d+) responses/gm)) {
    const n = Number(m[2])
    requests += n
    if (!/^[23]/.test(m[1]!)) badStatuses += n
  }
  const errorsAt = text.indexOf('Error distribution:')
  let socketErrors = 0
  if (errorsAt >= 0) for (const m of text.slice(errorsAt).matchAll(/^\s*\[(\d+)\]\s/gm)) socketErrors += Number(m[1])
  return {
    requests,
    reqPerS: requests / Number(total[1]),
    p50Ms: percentileMs(text, 50),
    p99Ms: percentileMs(text, 99),
    socketErrors,
    badStatuses,
  }
}
