// The bench's cases. Each case is its own interleaved set of rounds over its own candidates (by name,
// from bench/candidates.ts), started fresh for the case and stopped after it; `npm run bench -- --case
// NAME` runs some of them. The first name in `subjects` is the one the case's ratios are about.
import type { Goal } from './lib/report.js'

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
  // ---- Hook: cases still to come. Not implemented. ----
  // - h2: HTTP/2 to the proxy (TLS with ALPN, and h2c), driven by h2load (`h2load -c N -m M -D S`).
  //   Waits for Switchyard itself: it does not speak HTTP/2 downstream yet (its https listener offers
  //   only `http/1.1` in ALPN). Needs a new `kind` in the `Case` union with its load in
  //   bench/lib/load.ts, and h2 candidates in bench/candidates.ts.
]

/** Names of every case, in run order. */
export const caseNames = (): string[] => cases.map((c) => c.name)
