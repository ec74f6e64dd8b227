// The bench's cases. Each case is its own interleaved set of rounds over its own candidates (by name,
// from bench/candidates.ts), started fresh for the case and stopped after it; `npm run bench -- --case
// NAME` runs some of them. The first name in `subjects` is the one the case's ratios are about.
// The cases that the HTTP/1.1 engine targets are about (small-50, small-200, 16k-50, cores-50) run
// Switchyard on both engines: `switchyard` (the default one) and `switchyard-native`/`switchyard-node`,
// the one of those whose engine is the default being left out (bench/lib/expand.ts).
import { candidate, speaks } from './candidates.js'
import { HTTP_VERSION_OF, type LoadTool } from './lib/load.js'
import type { Goal } from './lib/report.js'

/** What a single-process proxy runs against: the ceiling, Switchyard's variants, the servers, the Node peers. */
const ONE_WORKER = [
  'direct',
  'switchyard',
  'switchyard-native',
  'switchyard-node',
  'switchyard-nolog',
  'nginx',
  'haproxy',
  'http-proxy',
  'fastify-http-proxy',
  'undici-dispatch',
  'llhttp-floor',
] as const

/** Switchyard on each engine (one of the explicit two is the default's twin and is left out). */
const ENGINE_SUBJECTS = ['switchyard', 'switchyard-native', 'switchyard-node'] as const

/** The cases the HTTP/1.1 engine targets are stated in (bench/lib/engines.ts), which `--engines` runs. */
export const ENGINE_CASES = ['small-50', 'small-200', '16k-50', 'cores-50'] as const

/** Candidates `--engines` leaves out of those cases: variants no engine target reads. */
export const ENGINE_RUN_SKIPS = ['switchyard-nolog', 'switchyard-2w-rr'] as const

/** What the HTTP/2 cases share, for their notes. */
const H2_NOTE =
  "h2load keeps 10 connections open for the whole run, with 10 requests in flight on each (100 in all), and offers only HTTP/2: a proxy that answered HTTP/1.1 would fail the run rather than be measured. Every proxy speaks HTTP/1.1 with keep-alive to the backends. h2load prints no percentiles: p50 and p99 are taken, by nearest rank, from its per-request log (time from a stream's start to the end of its response). No `direct` ceiling (the backends speak only HTTP/1.1) and no Node peers: `http-proxy` has no HTTP/2 server, and the other peers are node:http servers, so the ratios are against nginx and HAProxy only, for the same transport."

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
      /** A multi-worker subject is also divided by its one-worker counterpart (`oneWorker` in bench/candidates.ts). */
      readonly subjects: readonly string[]
      /** Whether the layer-cost table (bare dispatch → no log → full) is built from this case. */
      readonly layers: boolean
      /** What a reader must know to read the figures, for the report (one paragraph of Markdown). */
      readonly note?: string
      /** req/s ratios the first subject aims for, each checked and reported as met or not. */
      readonly goals?: readonly Goal[]
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
      readonly note?: string
    }
  /**
   * Closed-loop h2load over HTTP/2 (h2c with prior knowledge, or h2 by ALPN over TLS, as the
   * candidates' `scheme` says): `connections` × `streams` requests in flight; req/s, latency and CPU
   * per request, with ratios as in a throughput case.
   */
  | {
      readonly kind: 'h2-throughput'
      readonly name: string
      readonly title: string
      readonly path: '/' | '/16k'
      readonly connections: number
      /** Concurrent streams per connection. */
      readonly streams: number
      /** Every one must answer HTTP/2 (`http` in bench/candidates.ts). */
      readonly candidates: readonly string[]
      readonly subjects: readonly string[]
      readonly note?: string
      readonly goals?: readonly Goal[]
    }

export const cases: readonly Case[] = [
  {
    kind: 'throughput',
    name: 'small-50',
    title: '100-byte body (`/`), 50 connections, one worker or thread per proxy',
    path: '/',
    connections: 50,
    candidates: ONE_WORKER,
    subjects: ENGINE_SUBJECTS,
    layers: true,
  },
  {
    kind: 'throughput',
    name: 'small-200',
    title: '100-byte body (`/`), 200 connections, one worker or thread per proxy',
    path: '/',
    connections: 200,
    candidates: ONE_WORKER,
    subjects: ENGINE_SUBJECTS,
    layers: true,
  },
  {
    kind: 'throughput',
    name: '16k-50',
    title: '16 KiB body (`/16k`), 50 connections, one worker or thread per proxy',
    path: '/16k',
    connections: 50,
    candidates: ONE_WORKER,
    subjects: ENGINE_SUBJECTS,
    layers: true,
  },
  {
    kind: 'throughput',
    name: '16k-200',
    title: '16 KiB body (`/16k`), 200 connections, one worker or thread per proxy',
    path: '/16k',
    connections: 200,
    candidates: ONE_WORKER,
    subjects: ENGINE_SUBJECTS,
    layers: true,
  },
  {
    kind: 'throughput',
    name: 'cores-50',
    title: 'all cores: 100-byte body (`/`), 50 connections, 2 workers or threads per proxy',
    path: '/',
    connections: 50,
    candidates: [
      'switchyard',
      'switchyard-native',
      'switchyard-node',
      'switchyard-2w',
      'switchyard-native-2w',
      'switchyard-node-2w',
      'switchyard-2w-rr',
      'nginx-2w',
      'haproxy-2t',
    ],
    subjects: ['switchyard-2w', 'switchyard-native-2w', 'switchyard-node-2w', 'switchyard-2w-rr'],
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
  {
    kind: 'throughput',
    name: 'tcp-50',
    title: 'layer 4: 100-byte body (`/`) through TCP proxies, 50 connections, one worker or thread per proxy',
    note: "wrk's HTTP/1.1 keep-alive traffic flows through each proxy's pipe: every wrk connection is one piped TCP connection to a backend, chosen round-robin per connection (17, 17 and 16 of the 50), so the proxies copy bytes and never parse HTTP. The Node floor is `tcp-pipe`, the bare `net` pipe Switchyard's layer 4 mode is built on.",
    path: '/',
    connections: 50,
    candidates: ['direct', 'switchyard-tcp', 'tcp-pipe', 'nginx-stream', 'haproxy-tcp'],
    subjects: ['switchyard-tcp'],
    layers: false,
    goals: [
      { against: 'tcp-pipe', minReqPerS: 0.9 },
      { against: 'nginx-stream', minReqPerS: 0.8 },
    ],
  },
  {
    kind: 'throughput',
    name: 'https-50',
    title:
      'TLS termination, record encryption on the data path (handshakes only at connection setup): 100-byte body (`/`), 50 connections, one worker or thread per proxy',
    note: 'wrk keeps its 50 connections open for the whole run, so each does one TLS handshake, at setup: this case measures the encryption and decryption of TLS records on the data path, not handshakes. Every TLS candidate serves the same self-signed RSA 2048 certificate (`test/fixtures/tls`, copied for the run), offers TLS 1.2 and 1.3 with its default ciphers (so the same TLS 1.3 suite is negotiated everywhere: TLS_AES_256_GCM_SHA384 with the defaults of OpenSSL 3), and reaches the backends over plain HTTP. `direct-plain-http` is plain HTTP end to end: the ceiling, not a like-for-like reference. No Node peers here.',
    path: '/',
    connections: 50,
    candidates: ['direct-plain-http', 'switchyard-https', 'nginx-https', 'haproxy-https'],
    subjects: ['switchyard-https'],
    layers: false,
  },
  {
    kind: 'h2-throughput',
    name: 'h2c-10x10',
    title:
      'HTTP/2 in the clear (h2c, prior knowledge) to the proxy, HTTP/1.1 to the backends: 100-byte body (`/`), 10 connections × 10 concurrent streams, one worker or thread per proxy',
    note: `${H2_NOTE} \`nginx-h2c\` and \`haproxy-h2c\` speak only HTTP/2 on their port; Switchyard tells HTTP/2 from HTTP/1.1 by the connection preface.`,
    path: '/',
    connections: 10,
    streams: 10,
    candidates: ['switchyard-h2c', 'nginx-h2c', 'haproxy-h2c'],
    subjects: ['switchyard-h2c'],
  },
  {
    kind: 'h2-throughput',
    name: 'h2-tls-10x10',
    title:
      'HTTP/2 over TLS (ALPN `h2`) to the proxy, HTTP/1.1 to the backends: 100-byte body (`/`), 10 connections × 10 concurrent streams, one worker or thread per proxy',
    note: `${H2_NOTE} Each of the 10 connections does one TLS handshake, at setup. The TLS candidates serve the certificate of \`https-50\`; h2load offers only \`h2\` by ALPN and the TLS 1.3 suites in OpenSSL's default order (as wrk does), so TLS_AES_256_GCM_SHA384 is negotiated everywhere.`,
    path: '/',
    connections: 10,
    streams: 10,
    candidates: ['switchyard-h2', 'nginx-h2', 'haproxy-h2'],
    subjects: ['switchyard-h2'],
  },
]

/** Names of every case, in run order. */
export const caseNames = (): string[] => cases.map((c) => c.name)

/** The load tool that drives a case's candidates. */
export function loadToolOf(c: Case): LoadTool {
  switch (c.kind) {
    case 'throughput':
      return 'wrk'
    case 'fixed-rate':
      return 'hey'
    case 'h2-throughput':
      return 'h2load'
    default: {
      const unreachable: never = c
      throw new Error(`unknown case ${JSON.stringify(unreachable)}`)
    }
  }
}

/**
 * Candidates of `c` that do not answer the HTTP version of its load tool (wrk at an HTTP/2-only
 * port, h2load at an HTTP/1.1 one): a mistake in this file. Empty when every candidate fits.
 */
export function misfits(c: Case): string[] {
  const version = HTTP_VERSION_OF[loadToolOf(c)]
  return c.candidates.filter((name) => !speaks(candidate(name), version))
}
