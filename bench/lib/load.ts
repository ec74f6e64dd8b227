// One load run, whichever tool drives it: wrk as fast as it can (throughput cases), hey at a fixed
// rate (latency cases), both over HTTP/1.1, or h2load as fast as it can over HTTP/2 (HTTP/2 cases),
// in the clear or over TLS as the target asks. Everything goes to 127.0.0.1, and every run is bounded
// by its duration.
import type { HttpVersion, Scheme } from '../candidates.js'
import type { Children } from './children.js'
import { h2loadArgs, runH2load } from './h2load.js'
import { heyArgs, runHey } from './hey.js'
import { type LoadResult, runWrk, wrkArgs } from './wrk.js'

export type Load =
  /** `wrk -t1 -cN -dS --latency`: closed loop, as many requests as the target answers. */
  | { readonly tool: 'wrk'; readonly path: string; readonly connections: number; readonly durationS: number }
  /** `hey -z S -c N -q RATE/N`: open loop at `ratePerS` in total, for latency at a set load. */
  | {
      readonly tool: 'hey'
      readonly path: string
      readonly connections: number
      readonly durationS: number
      readonly ratePerS: number
    }
  /**
   * `h2load -t 1 -c N -m M -D S`: closed loop over HTTP/2, N connections with M concurrent streams
   * each; h2c with prior knowledge on http://, h2 by ALPN on https://.
   */
  | {
      readonly tool: 'h2load'
      readonly path: string
      readonly connections: number
      /** Concurrent streams per connection. */
      readonly streams: number
      readonly durationS: number
    }

export type LoadTool = Load['tool']

/** The HTTP version each tool speaks: a candidate must answer it (bench/cases.ts checks). */
export const HTTP_VERSION_OF: Readonly<Record<LoadTool, HttpVersion>> = {
  wrk: 'http/1.1',
  hey: 'http/1.1',
  h2load: 'h2',
}

/** Where the load goes: a port on 127.0.0.1 and the scheme spoken there. */
export interface Endpoint {
  readonly port: number
  readonly scheme: Scheme
}

const urlOf = (scheme: Scheme, port: number | string, path: string): string => `${scheme}://127.0.0.1:${port}${path}`

export async function runLoad(children: Children, to: Endpoint, load: Load, signal: AbortSignal): Promise<LoadResult> {
  const url = urlOf(to.scheme, to.port, load.path)
  switch (load.tool) {
    case 'wrk':
      return runWrk(children, { url, connections: load.connections, durationS: load.durationS }, signal)
    case 'hey':
      return runHey(
        children,
        { url, connections: load.connections, durationS: load.durationS, ratePerS: load.ratePerS },
        signal,
      )
    case 'h2load':
      return runH2load(
        children,
        { url, connections: load.connections, streams: load.streams, durationS: load.durationS },
        signal,
      )
    default: {
      const unreachable: never = load
      throw new Error(`unknown load ${JSON.stringify(unreachable)}`)
    }
  }
}

/** The exact command line of `load` over `scheme`, with PORT in place of the port. */
export function describeLoad(load: Load, scheme: Scheme): string {
  const url = urlOf(scheme, 'PORT', load.path)
  switch (load.tool) {
    case 'wrk':
      return `wrk ${wrkArgs({ url, connections: load.connections, durationS: load.durationS }).join(' ')}`
    case 'hey':
      return `hey ${heyArgs({ url, connections: load.connections, durationS: load.durationS, ratePerS: load.ratePerS }).join(' ')}`
    case 'h2load':
      return `h2load ${h2loadArgs({ url, connections: load.connections, streams: load.streams, durationS: load.durationS }, 'FILE').join(' ')}`
    default: {
      const unreachable: never = load
      throw new Error(`unknown load ${JSON.stringify(unreachable)}`)
    }
  }
}
