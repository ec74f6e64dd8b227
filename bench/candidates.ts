// Every candidate a bench case can run, by name. A candidate is `direct` (no proxy: the ceiling) or a
// process that listens on `ctx.port` in front of `ctx.backendPorts`; the runner hands out the port and
// a private directory, writes the files the command asks for, starts it, waits until the port accepts
// connections, checks that the listening socket is the child's, and measures the CPU time of the
// child's whole process tree (so master/worker servers and cluster workers count in full). The load
// tool speaks HTTP/1.1 (wrk, hey) or HTTP/2 (h2load, in the HTTP/2 cases) to every candidate, over TLS
// to those with `scheme: 'https'`; layer 4 candidates carry it through their pipe. A case runs only
// candidates that answer its tool's HTTP version (`http`; bench/cases.ts checks).
// A candidate whose binary or npm package is missing is skipped with a note, never an error.
// Adding one is one entry in `candidates` plus its name in the cases that run it (bench/cases.ts).
// `switchyard-base` is in no case: `npm run bench -- --base DIR` adds it after `switchyard` (bench/run.ts).
// Switchyard's HTTP/1.1 engine: `switchyard` runs the default one (what `defaultEngine()` in
// src/config/schema.ts gives the child: `SWITCHYARD_ENGINE`, else the built-in default);
// `switchyard-native` and `switchyard-node` set `SWITCHYARD_ENGINE` for the child. The one whose engine
// is the default is the same process as `switchyard` and is not run twice (bench/lib/expand.ts).
// Node-based candidates (`node: true`) run under `ctx.node`: the bench's Node, or each `--node` in turn.
import { existsSync } from 'node:fs'
import path from 'node:path'
import type { Engine } from '../src/config/schema.js'
import {
  HAPROXY_MAXCONN,
  type HaproxyFront,
  haproxyArgs,
  haproxyConf,
  haproxyMaxconn,
  haproxyTcpConf,
} from './lib/haproxy.js'
import { NGINX_DIRS, nginxArgs, proxyConf, streamConf, streamSupport } from './lib/nginx.js'
import { type SwitchyardListener, switchyardConf } from './lib/switchyard.js'
import { openFileLimit } from './lib/system.js'
import { TLS_FILE_NAMES, tlsFileContents, tlsFilesIn } from './lib/tls.js'
import type { Tool } from './lib/tools.js'

export interface LaunchContext {
  /** Port the candidate must listen on, at 127.0.0.1. Free when handed out. */
  readonly port: number
  /** Ports of the backends, all at 127.0.0.1, to balance over. */
  readonly backendPorts: readonly number[]
  /** Repository root; children run with it as their working directory. */
  readonly rootDir: string
  /** The other checkout `--base DIR` names, for `switchyard-base`; undefined without `--base`. */
  readonly baseDir: string | undefined
  /** An empty directory of the candidate's own, removed after the case. */
  readonly workDir: string
  /** The Node binary a Node-based candidate runs under (`node: true`). */
  readonly node: string
  /** Absolute path of a tool the candidate `requires`. */
  binary(tool: Tool): string
}

export interface Command {
  readonly file: string
  /** stdout goes to /dev/null; the tail of stderr is kept for error messages. */
  readonly args: readonly string[]
  /** Added to the bench's environment. */
  readonly env?: Readonly<Record<string, string>>
  /** stdout to this file under `workDir` (appended to) instead of /dev/null: the access log to a file. */
  readonly stdoutFile?: string
  /** Directories to create under `workDir` before the start, as relative paths. */
  readonly dirs?: readonly string[]
  /** Files to write under `workDir` before the start: relative path → content. */
  readonly files?: Readonly<Record<string, string>>
  /** A line for the report when the launch had to depart from the description. */
  readonly note?: string
}

export type Requirement =
  | { readonly kind: 'binary'; readonly name: Tool }
  | { readonly kind: 'package'; readonly name: string }
  /** nginx's `stream` module, built in or as a loadable module file (bench/lib/nginx.ts). */
  | { readonly kind: 'nginx-stream' }
  /** A built checkout named by `--base DIR` (`baseProblem` says what is wrong with one). */
  | { readonly kind: 'base-build' }

/**
 * How the load tool reaches a candidate: in the clear, or over TLS. HTTP/2 is h2c with prior
 * knowledge over `http` and h2 by ALPN over `https`.
 */
export type Scheme = 'http' | 'https'

/** An HTTP version a load tool speaks: wrk and hey speak `http/1.1`, h2load `h2`. */
export type HttpVersion = 'http/1.1' | 'h2'

/** What a candidate answers on its port: HTTP/1.1 only, HTTP/2 only, or either. */
export type HttpVersions = HttpVersion | 'both'

/**
 * What a candidate is, for the ratios: the ceiling, Switchyard itself, a C server (nginx, HAProxy) or
 * a Node proxy (the best of which is one reference).
 */
/** `floor`: the featureless proxy on Switchyard's own parser, which is no Node peer (it has no features to compare). */
export type Family = 'direct' | 'switchyard' | 'nginx' | 'haproxy' | 'node' | 'floor'

export type Candidate =
  /** wrk goes straight to the first backend: the ceiling. No process of its own, so no CPU figure. */
  | { readonly kind: 'direct'; readonly name: string; readonly family: 'direct'; readonly description: string }
  | {
      readonly kind: 'process'
      readonly name: string
      readonly family: Exclude<Family, 'direct'>
      /** One line of Markdown for docs/benchmarks.md. */
      readonly description: string
      readonly requires: readonly Requirement[]
      /** What it listens for; `http` when absent. */
      readonly scheme?: Scheme
      /** The HTTP versions it answers; `http/1.1` when absent. */
      readonly http?: HttpVersions
      readonly launch: (ctx: LaunchContext) => Command
      /** Run by Node (`ctx.node`): a run with several `--node`s runs it once per Node. */
      readonly node?: true
      /**
       * Switchyard's HTTP/1.1 engine: `default` leaves it to the child's `defaultEngine()`; an engine
       * sets `SWITCHYARD_ENGINE`. Only on the candidates the engine table compares (bench/lib/engines.ts).
       */
      readonly engine?: Engine | 'default'
      /** For an explicit engine: the `default` candidate that is the same process when this engine is the default. */
      readonly twin?: string
      /** For a multi-worker candidate: its one-worker counterpart, which its scaling ratio divides by. */
      readonly oneWorker?: string
    }

/** Whether `c` answers `version`. `direct` is the backends: HTTP/1.1 only. */
export function speaks(c: Candidate, version: HttpVersion): boolean {
  const versions = c.kind === 'process' ? (c.http ?? 'http/1.1') : 'http/1.1'
  return versions === 'both' || versions === version
}

/** The candidate the single-process ratios are about: the full feature path, access log on. */
export const SUBJECT = 'switchyard'

/** The candidate `--base DIR` adds: Switchyard from another checkout, to compare two builds. */
export const BASE = 'switchyard-base'

/** Why `dir` cannot serve as `switchyard-base`, or undefined when it has a built Switchyard. */
export function baseProblem(dir: string | undefined): string | undefined {
  if (dir === undefined) return 'no --base DIR given'
  for (const file of ['bin/switchyard.js', 'dist/cli.js'])
    if (!existsSync(path.join(dir, file))) return `${dir} has no ${file} (build it there: npm ci, or npm run build)`
  return undefined
}

/** A TypeScript peer under bench/peers, run by `ctx.node` through tsx. */
function tsPeer(ctx: LaunchContext, file: string): Command {
  return {
    file: ctx.node,
    args: [
      '--import',
      'tsx',
      path.join(ctx.rootDir, 'bench', 'peers', file),
      ...[ctx.port, ...ctx.backendPorts].map(String),
    ],
  }
}

/** The file under `workDir` a quick-mode Switchyard writes its log (the access log) to. */
export const ACCESS_LOG_FILE = 'access.log'

/**
 * Switchyard from dist/ in quick mode (`--listen`, `--to`: its defaults, every feature on), round-robin
 * over the backends, plus `extra` flags; its log, the access log included, appended to a file.
 */
function switchyard(ctx: LaunchContext, extra: readonly string[], env?: Readonly<Record<string, string>>): Command {
  return {
    file: ctx.node,
    args: [
      path.join(ctx.rootDir, 'bin', 'switchyard.js'),
      '--listen',
      `127.0.0.1:${ctx.port}`,
      ...ctx.backendPorts.flatMap((p) => ['--to', `http://127.0.0.1:${p}`]),
      ...extra,
    ],
    stdoutFile: ACCESS_LOG_FILE,
    ...(env === undefined ? {} : { env }),
  }
}

/** `SWITCHYARD_ENGINE` for the child, plus `env`. */
const withEngine = (engine: Engine, env: Readonly<Record<string, string>> = {}): Record<string, string> => ({
  ...env,
  SWITCHYARD_ENGINE: engine,
})

/** Switchyard from dist/ with a config file (layer 4, HTTPS or HTTP/2 listener), default log level. */
function switchyardWithConfig(ctx: LaunchContext, listener: SwitchyardListener): Command {
  const conf = path.join(ctx.workDir, 'switchyard.yaml')
  return {
    file: ctx.node,
    args: [path.join(ctx.rootDir, 'bin', 'switchyard.js'), '-c', conf],
    files: {
      'switchyard.yaml': switchyardConf(ctx.port, ctx.backendPorts, listener),
      ...(listener.protocol === 'https' ? tlsFileContents(ctx.rootDir) : {}),
    },
  }
}

/** How an nginx or HAProxy peer's listener talks to clients: in the clear or over TLS, with or without HTTP/2. */
interface Front {
  readonly tls: boolean
  readonly http2: boolean
}

const HTTP1: Front = { tls: false, http2: false }

/** nginx as an HTTP reverse proxy, terminating TLS and speaking HTTP/2 as `front` says. */
function nginx(ctx: LaunchContext, workers: number, front: Front = HTTP1): Command {
  const conf = path.join(ctx.workDir, 'nginx.conf')
  const listener = { http2: front.http2, ...(front.tls ? { tls: tlsFilesIn(ctx.workDir) } : {}) }
  return {
    file: ctx.binary('nginx'),
    args: nginxArgs(ctx.workDir, conf),
    dirs: NGINX_DIRS,
    files: {
      'nginx.conf': proxyConf(ctx.workDir, ctx.port, ctx.backendPorts, workers, listener),
      ...(front.tls ? tlsFileContents(ctx.rootDir) : {}),
    },
  }
}

function nginxStream(ctx: LaunchContext): Command {
  const binary = ctx.binary('nginx')
  const support = streamSupport(binary)
  // The `nginx-stream` requirement was checked before the launch.
  if (support.kind === 'missing') throw new Error(support.reason)
  const conf = path.join(ctx.workDir, 'nginx.conf')
  const moduleFile = support.kind === 'dynamic' ? support.moduleFile : undefined
  return {
    file: binary,
    args: nginxArgs(ctx.workDir, conf),
    files: { 'nginx.conf': streamConf(ctx.workDir, ctx.port, ctx.backendPorts, 1, moduleFile) },
  }
}

/** HAProxy in HTTP mode (TLS and HTTP/2 to clients as `mode.front` says) or layer 4 (`tcp`). */
function haproxy(
  ctx: LaunchContext,
  threads: number,
  mode: { readonly kind: 'http'; readonly front: Front } | { readonly kind: 'tcp' } = { kind: 'http', front: HTTP1 },
): Command {
  const hard = openFileLimit('hard')
  const maxconn = haproxyMaxconn(hard)
  let cfg: string
  let tls = false
  switch (mode.kind) {
    case 'http': {
      tls = mode.front.tls
      const front: HaproxyFront = {
        http2: mode.front.http2,
        ...(tls ? { crtFile: path.join(ctx.workDir, TLS_FILE_NAMES.combined) } : {}),
      }
      cfg = haproxyConf(ctx.port, ctx.backendPorts, threads, maxconn, front)
      break
    }
    case 'tcp':
      cfg = haproxyTcpConf(ctx.port, ctx.backendPorts, threads, maxconn)
      break
    default: {
      const unreachable: never = mode
      throw new Error(`unknown HAProxy mode ${JSON.stringify(unreachable)}`)
    }
  }
  return {
    file: ctx.binary('haproxy'),
    args: haproxyArgs(path.join(ctx.workDir, 'haproxy.cfg')),
    files: { 'haproxy.cfg': cfg, ...(tls ? tlsFileContents(ctx.rootDir) : {}) },
    ...(maxconn < HAPROXY_MAXCONN
      ? { note: `maxconn ${maxconn}, not ${HAPROXY_MAXCONN}: the open-file hard limit here is ${hard}` }
      : {}),
  }
}

const SWITCHYARD_CMD = '`node bin/switchyard.js --listen … --to … --to … --to …`'

export const candidates: readonly Candidate[] = [
  {
    kind: 'direct',
    name: 'direct',
    family: 'direct',
    description: 'the load tool straight at one backend, no proxy in between: the ceiling.',
  },
  {
    kind: 'direct',
    name: 'direct-plain-http',
    family: 'direct',
    description:
      'the same as `direct`, in the `https-50` case: **plain HTTP, no TLS**, straight at one backend (the backends speak only HTTP). The ceiling, not a like-for-like reference: its ratio includes the whole cost of TLS.',
  },
  {
    kind: 'process',
    name: SUBJECT,
    family: 'switchyard',
    description: `this project, from \`dist/\` (rebuilt by the bench first): ${SWITCHYARD_CMD}, quick mode with its defaults (every feature on: routing, metrics, passive health and retries, forwarded headers, the filter pipeline in place), round-robin, one process, default \`--log-level info\`: one JSON access-log line per request, appended to a file. The default HTTP/1.1 engine (\`SWITCHYARD_ENGINE\` or the built-in default; the run says which). **The subject of the ratios.**`,
    requires: [],
    node: true,
    engine: 'default',
    launch: (ctx) => switchyard(ctx, []),
  },
  {
    kind: 'process',
    name: 'switchyard-native',
    family: 'switchyard',
    description:
      '`switchyard` with `SWITCHYARD_ENGINE=native`: the native HTTP/1.1 engine (llhttp on raw sockets, both sides). Not run when native is the default engine: `switchyard` is then the same process.',
    requires: [],
    node: true,
    engine: 'native',
    twin: SUBJECT,
    launch: (ctx) => switchyard(ctx, [], withEngine('native')),
  },
  {
    kind: 'process',
    name: 'switchyard-node',
    family: 'switchyard',
    description:
      '`switchyard` with `SWITCHYARD_ENGINE=node`: node:http for clients, undici for servers. Not run when node is the default engine: `switchyard` is then the same process.',
    requires: [],
    node: true,
    engine: 'node',
    twin: SUBJECT,
    launch: (ctx) => switchyard(ctx, [], withEngine('node')),
  },
  {
    kind: 'process',
    name: BASE,
    family: 'switchyard',
    description:
      '`switchyard` from another checkout, the one `npm run bench -- --base DIR` names: its own `bin/switchyard.js`, `dist/` and `node_modules` (built there; the bench does not rebuild it), the same command line. The build a change is compared with, in the same interleaved run; only with `--base`, measured next to `switchyard` in each round (after it in odd rounds, before it in even ones).',
    requires: [{ kind: 'base-build' }],
    node: true,
    launch: (ctx) => {
      if (ctx.baseDir === undefined) throw new Error(`${BASE} needs --base DIR`)
      return switchyard({ ...ctx, rootDir: ctx.baseDir }, [])
    },
  },
  {
    kind: 'process',
    name: 'switchyard-nolog',
    family: 'switchyard',
    description: 'the same with `--log-level warn`, which turns the access log off: shows what the access log costs.',
    requires: [],
    node: true,
    launch: (ctx) => switchyard(ctx, ['--log-level', 'warn']),
  },
  {
    kind: 'process',
    name: 'switchyard-2w',
    family: 'switchyard',
    description:
      '`switchyard` with `--workers 2`: a cluster supervisor and 2 workers accepting from the shared listening socket (CPU counts all three processes), the default engine.',
    requires: [],
    node: true,
    engine: 'default',
    oneWorker: SUBJECT,
    launch: (ctx) => switchyard(ctx, ['--workers', '2']),
  },
  {
    kind: 'process',
    name: 'switchyard-native-2w',
    family: 'switchyard',
    description: '`switchyard-2w` with `SWITCHYARD_ENGINE=native` (not run when native is the default engine).',
    requires: [],
    node: true,
    engine: 'native',
    twin: 'switchyard-2w',
    oneWorker: 'switchyard-native',
    launch: (ctx) => switchyard(ctx, ['--workers', '2'], withEngine('native')),
  },
  {
    kind: 'process',
    name: 'switchyard-node-2w',
    family: 'switchyard',
    description: '`switchyard-2w` with `SWITCHYARD_ENGINE=node` (not run when node is the default engine).',
    requires: [],
    node: true,
    engine: 'node',
    twin: 'switchyard-2w',
    oneWorker: 'switchyard-node',
    launch: (ctx) => switchyard(ctx, ['--workers', '2'], withEngine('node')),
  },
  {
    kind: 'process',
    name: 'switchyard-2w-rr',
    family: 'switchyard',
    description:
      '`switchyard-2w` with `NODE_CLUSTER_SCHED_POLICY=rr`: the supervisor accepts and hands connections to the workers in turn.',
    requires: [],
    node: true,
    oneWorker: SUBJECT,
    launch: (ctx) => switchyard(ctx, ['--workers', '2'], { NODE_CLUSTER_SCHED_POLICY: 'rr' }),
  },
  {
    kind: 'process',
    name: 'nginx',
    family: 'nginx',
    description:
      'nginx `proxy_pass` to an `upstream` of the backends (round-robin), `worker_processes 1`, `keepalive 64` upstream connections over `proxy_http_version 1.1` with `proxy_set_header Connection ""`, `keepalive_requests 1000000` on both sides, no access log (`bench/lib/nginx.ts`).',
    requires: [{ kind: 'binary', name: 'nginx' }],
    launch: (ctx) => nginx(ctx, 1),
  },
  {
    kind: 'process',
    name: 'nginx-2w',
    family: 'nginx',
    description: 'the same nginx with `worker_processes 2`.',
    requires: [{ kind: 'binary', name: 'nginx' }],
    launch: (ctx) => nginx(ctx, 2),
  },
  {
    kind: 'process',
    name: 'haproxy',
    family: 'haproxy',
    description:
      'HAProxy, `mode http`, `nbthread 1`, `maxconn 20000` in global and defaults (less if the open-file limit cannot hold 2 descriptors per connection; a note says so), round-robin, `option http-keep-alive`, `http-reuse always`, timeouts set, no logging, run in the foreground (`haproxy -f CFG -db`; `bench/lib/haproxy.ts`).',
    requires: [{ kind: 'binary', name: 'haproxy' }],
    launch: (ctx) => haproxy(ctx, 1),
  },
  {
    kind: 'process',
    name: 'haproxy-2t',
    family: 'haproxy',
    description: 'the same HAProxy with `nbthread 2`.',
    requires: [{ kind: 'binary', name: 'haproxy' }],
    launch: (ctx) => haproxy(ctx, 2),
  },
  {
    kind: 'process',
    name: 'http-proxy',
    family: 'node',
    description:
      'the npm `http-proxy` package, round-robin with a keep-alive `http.Agent` (maxSockets 256): `bench/peers/http-proxy.ts`.',
    requires: [{ kind: 'package', name: 'http-proxy' }],
    node: true,
    launch: (ctx) => tsPeer(ctx, 'http-proxy.ts'),
  },
  {
    kind: 'process',
    name: 'fastify-http-proxy',
    family: 'node',
    description:
      '`@fastify/http-proxy` on Fastify (logger off), round-robin through an undici `BalancedPool` handed to its reply-from layer, keep-alive on: `bench/peers/fastify-http-proxy.ts`.',
    requires: [
      { kind: 'package', name: 'fastify' },
      { kind: 'package', name: '@fastify/http-proxy' },
    ],
    node: true,
    launch: (ctx) => tsPeer(ctx, 'fastify-http-proxy.ts'),
  },
  {
    kind: 'process',
    name: 'undici-dispatch',
    family: 'node',
    description:
      'the bare undici `dispatch` proxy, no features (no routing, metrics, logs or forwarded headers): node:http in, round-robin over one undici `Pool` per backend: `bench/peers/undici-dispatch.ts`. The floor Switchyard is built on.',
    requires: [{ kind: 'package', name: 'undici' }],
    node: true,
    launch: (ctx) => tsPeer(ctx, 'undici-dispatch.ts'),
  },
  {
    kind: 'process',
    name: 'llhttp-floor',
    family: 'floor',
    description:
      "the floor of Switchyard's own engine: a featureless proxy on the same parser module (`src/http1/parser.ts`, llhttp in strict mode) and plain `net` sockets, with no routing, metrics, logs, timeouts, retries, forwarded headers, error mapping or request bodies; LIFO keep-alive reuse per backend, round-robin per request, head and body in one corked write: `bench/peers/llhttp-floor.ts`. Not a peer: it shows how much of Switchyard's cost per request its features are.",
    requires: [],
    node: true,
    launch: (ctx) => tsPeer(ctx, 'llhttp-floor.ts'),
  },
  {
    kind: 'process',
    name: 'switchyard-tcp',
    family: 'switchyard',
    description:
      'Switchyard in layer 4 mode: `node bin/switchyard.js -c FILE` with one `protocol: tcp` listener and a pool of the backends as `tcp://` servers (`bench/lib/switchyard.ts`), round-robin per connection, default log level (one log line per connection, at close; stdout to /dev/null). **The subject of the `tcp-50` case.**',
    requires: [],
    node: true,
    launch: (ctx) => switchyardWithConfig(ctx, { protocol: 'tcp' }),
  },
  {
    kind: 'process',
    name: 'tcp-pipe',
    family: 'node',
    description:
      "the bare Node TCP pipe, no features (no timeouts, metrics or logs): `net.createServer`, each connection `pipe()`d both ways to the next backend in turn: `bench/peers/tcp-pipe.ts`. The floor Switchyard's layer 4 mode is built on.",
    requires: [],
    node: true,
    launch: (ctx) => tsPeer(ctx, 'tcp-pipe.ts'),
  },
  {
    kind: 'process',
    name: 'nginx-stream',
    family: 'nginx',
    description:
      'nginx `stream` module: a `server` with `proxy_pass` to an `upstream` of the backends (round-robin per connection), `worker_processes 1`, no `http` block; the module is loaded with `load_module` when it is a dynamic one (Debian: libnginx-mod-stream), skipped with a note when nginx has none (`bench/lib/nginx.ts`).',
    requires: [{ kind: 'binary', name: 'nginx' }, { kind: 'nginx-stream' }],
    launch: nginxStream,
  },
  {
    kind: 'process',
    name: 'haproxy-tcp',
    family: 'haproxy',
    description:
      "HAProxy, `mode tcp`, `nbthread 1`, round-robin per connection, `maxconn` as for `haproxy`, 65 s timeouts, no logging, HAProxy's default buffering (no splice options) (`bench/lib/haproxy.ts`).",
    requires: [{ kind: 'binary', name: 'haproxy' }],
    launch: (ctx) => haproxy(ctx, 1, { kind: 'tcp' }),
  },
  {
    kind: 'process',
    name: 'switchyard-https',
    family: 'switchyard',
    description:
      'Switchyard terminating TLS: `node bin/switchyard.js -c FILE` with one `protocol: https` listener (`tls: { cert, key }`, defaults otherwise) and the backends as `http://` servers (`bench/lib/switchyard.ts`), round-robin, default log level: access log on (stdout to /dev/null). **The subject of the `https-50` case.**',
    requires: [],
    scheme: 'https',
    node: true,
    launch: (ctx) => switchyardWithConfig(ctx, { protocol: 'https', tls: tlsFilesIn(ctx.workDir) }),
  },
  {
    kind: 'process',
    name: 'nginx-https',
    family: 'nginx',
    description:
      'the `nginx` proxy with `listen … ssl`, `ssl_certificate`, `ssl_certificate_key` and `ssl_protocols TLSv1.2 TLSv1.3` (nginx before 1.23.4 leaves TLS 1.3 out by default; default ciphers), plain HTTP upstream with `keepalive 64`, `worker_processes 1`.',
    requires: [{ kind: 'binary', name: 'nginx' }],
    scheme: 'https',
    launch: (ctx) => nginx(ctx, 1, { tls: true, http2: false }),
  },
  {
    kind: 'process',
    name: 'haproxy-https',
    family: 'haproxy',
    description:
      "the `haproxy` proxy with `bind … ssl crt FILE` (one PEM: certificate, then key; HAProxy's default protocols, TLS 1.2 and 1.3, and ciphers), plain HTTP to the backends, `nbthread 1`.",
    requires: [{ kind: 'binary', name: 'haproxy' }],
    scheme: 'https',
    launch: (ctx) => haproxy(ctx, 1, { kind: 'http', front: { tls: true, http2: false } }),
  },
  {
    kind: 'process',
    name: 'switchyard-h2c',
    family: 'switchyard',
    description:
      'Switchyard with HTTP/2 to clients in the clear: `node bin/switchyard.js -c FILE` with one `protocol: http` listener with `http2: true` (HTTP/2 with prior knowledge beside HTTP/1.1, told apart by the connection preface; 100 concurrent streams per connection) and the backends as `http://` servers, reached over HTTP/1.1 (`bench/lib/switchyard.ts`), round-robin, default log level: access log on (stdout to /dev/null). **The subject of the `h2c-10x10` case.**',
    requires: [],
    http: 'both',
    node: true,
    launch: (ctx) => switchyardWithConfig(ctx, { protocol: 'http', http2: true }),
  },
  {
    kind: 'process',
    name: 'nginx-h2c',
    family: 'nginx',
    description:
      "the `nginx` proxy with `listen … http2` and no `ssl`: HTTP/2 with prior knowledge only (no HTTP/1.1 on that port), nginx's default of 128 concurrent streams, `keepalive_requests 1000000` bounding HTTP/2 connections too; HTTP/1.1 upstream with `keepalive 64`, `worker_processes 1`.",
    requires: [{ kind: 'binary', name: 'nginx' }],
    http: 'h2',
    launch: (ctx) => nginx(ctx, 1, { tls: false, http2: true }),
  },
  {
    kind: 'process',
    name: 'haproxy-h2c',
    family: 'haproxy',
    description:
      "the `haproxy` proxy with `bind … proto h2`: HTTP/2 with prior knowledge only, HAProxy's default of 100 concurrent streams; HTTP/1.1 to the backends, `nbthread 1`.",
    requires: [{ kind: 'binary', name: 'haproxy' }],
    http: 'h2',
    launch: (ctx) => haproxy(ctx, 1, { kind: 'http', front: { tls: false, http2: true } }),
  },
  {
    kind: 'process',
    name: 'switchyard-h2',
    family: 'switchyard',
    description:
      'Switchyard terminating TLS with HTTP/2 to clients: `switchyard-https` with `http2: true` on its `protocol: https` listener (ALPN offers `h2` and `http/1.1`; 100 concurrent streams per connection), HTTP/1.1 to the backends, default log level: access log on (stdout to /dev/null). **The subject of the `h2-tls-10x10` case.**',
    requires: [],
    scheme: 'https',
    http: 'both',
    node: true,
    launch: (ctx) => switchyardWithConfig(ctx, { protocol: 'https', tls: tlsFilesIn(ctx.workDir), http2: true }),
  },
  {
    kind: 'process',
    name: 'nginx-h2',
    family: 'nginx',
    description:
      "the `nginx-https` proxy with `listen … ssl http2` (ALPN offers `h2` and `http/1.1`; nginx's default of 128 concurrent streams), HTTP/1.1 upstream with `keepalive 64`, `worker_processes 1`.",
    requires: [{ kind: 'binary', name: 'nginx' }],
    scheme: 'https',
    http: 'both',
    launch: (ctx) => nginx(ctx, 1, { tls: true, http2: true }),
  },
  {
    kind: 'process',
    name: 'haproxy-h2',
    family: 'haproxy',
    description:
      "the `haproxy-https` proxy with `bind … ssl crt FILE alpn h2,http/1.1` (HAProxy's default of 100 concurrent streams), HTTP/1.1 to the backends, `nbthread 1`.",
    requires: [{ kind: 'binary', name: 'haproxy' }],
    scheme: 'https',
    http: 'both',
    launch: (ctx) => haproxy(ctx, 1, { kind: 'http', front: { tls: true, http2: true } }),
  },
]

/** The candidate called `name`; throws on a name not in the table (a bug in bench/cases.ts). */
export function candidate(name: string): Candidate {
  const found = candidates.find((c) => c.name === name)
  if (found === undefined) throw new Error(`no candidate named ${name} in bench/candidates.ts`)
  return found
}
