// The bench's cases. Each case is its own interleaved set of rounds over its own candidates (by name,
// from bench/candidates.ts), started fresh for the case and stopped after it; `npm run bench -- --case
// NAME` runs some of them. The first name in `subjects` is the one the case's ratios are about.

/** What a single-process proxy runs against: the ceiling, Switchyard's variants, the servers, the Node peers. */
const ONE_WORKER = [
  'direct',
  'switchyard',
  'switchyard-nolog',
  'nginx',
  'haproxy',
  'http-proxy',
  'fastify-http-proxy',
  'undici-dispatch',
] as const

export type Case =
  /** Closed-loop wrk: each candidate as fast as it goes; req/s, latency and CPU per request. */
  | {
      readonly kind: 'throughput'
      readonly name: string
      /** One line for the report. */
      readonly title: string
      /** Request path; bench/lib/bodies.ts says what the backends answer. */
      readonly path: '/' | '/16k'
      readonly connections: number
      readonly candidates: readonly string[]
      readonly subjects: readonly string[]
      /** A one-worker candidate each subject is divided by for the scaling ratio (e.g. 2w / 1w). */
      readonly scalingBase?: string
      /** Whether the layer-cost table (bare dispatch → no log → full) is built from this case. */
      readonly layers: boolean
    }
  /**
   * Open-loop hey at a fixed rate: `rateShare` of the median req/s that `rateFrom.candidate` reached in
   * case `rateFrom.case` (measured again here, briefly, when that case is not part of the run).
   */
  | {
      readonly kind: 'fixed-rate'
      readonly name: string
      readonly title: string
      readonly path: '/' | '/16k'
      readonly connections: number
      readonly candidates: readonly string[]
      readonly subjects: readonly string[]
      readonly rateFrom: { readonly case: string; readonly candidate: string }
      readonly rateShare: number
    }

export const cases: readonly Case[] = [
  {
    kind: 'throughput',
    name: 'small-50',
    title: '100-byte body (`/`), 50 connections, one worker or thread per proxy',
    path: '/',
    connections: 50,
    candidates: ONE_WORKER,
    subjects: ['switchyard'],
    layers: true,
  },
  {
    kind: 'throughput',
    name: 'small-200',
    title: '100-byte body (`/`), 200 connections, one worker or thread per proxy',
    path: '/',
    connections: 200,
    candidates: ONE_WORKER,
    subjects: ['switchyard'],
    layers: true,
  },
  {
    kind: 'throughput',
    name: '16k-50',
    title: '16 KiB body (`/16k`), 50 connections, one worker or thread per proxy',
    path: '/16k',
    connections: 50,
    candidates: ONE_WORKER,
    subjects: ['switchyard'],
    layers: true,
  },
  {
    kind: 'throughput',
    name: '16k-200',
    title: '16 KiB body (`/16k`), 200 connections, one worker or thread per proxy',
    path: '/16k',
    connections: 200,
    candidates: ONE_WORKER,
    subjects: ['switchyard'],
    layers: true,
  },
  {
    kind: 'throughput',
    name: 'cores-50',
    title: 'all cores: 100-byte body (`/`), 50 connections, 2 workers or threads per proxy',
    path: '/',
    connections: 50,
    candidates: ['switchyard', 'switchyard-2w', 'switchyard-2w-rr', 'nginx-2w', 'haproxy-2t'],
    subjects: ['switchyard-2w', 'switchyard-2w-rr'],
    scalingBase: 'switchyard',
    layers: false,
  },
  {
    kind: 'fixed-rate',
    name: 'latency-50',
    title: "latency at half of Switchyard's top rate: 100-byte body (`/`), 50 connections, one worker",
    path: '/',
    connections: 50,
    candidates: ['direct', 'switchyard', 'nginx', 'haproxy'],
    subjects: ['switchyard'],
    rateFrom: { case: 'small-50', candidate: 'switchyard' },
    rateShare: 0.5,
  },
  // ---- Hook: cases still to come. Not implemented; each needs a new `kind` in the `Case` union,
  // its load in bench/lib/load.ts and its candidates in bench/candidates.ts. ----
  // - tcp (layer 4): Switchyard's tcp:// listener against bench/peers/tcp-pipe.ts, nginx `stream` and
  //   HAProxy `mode tcp`, driven by wrk through the pipe.
  // - https: TLS termination in front of the same backends; wrk against https://, one certificate
  //   made for the run; nginx `ssl`, HAProxy `bind ... ssl crt`.
  // - h2: HTTP/2 to the proxy (TLS with ALPN, and h2c), driven by h2load (`h2load -c N -m M -D S`).
]

/** Names of every case, in run order. */
export const caseNames = (): string[] => cases.map((c) => c.name)
