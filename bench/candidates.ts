// The candidates a bench run compares, in the order each round runs them. Adding one (nginx,
// HAProxy, @fastify/http-proxy, ...) is one entry here: a name and the command that starts it as a
// child process listening on `ctx.port` in front of `ctx.backendPorts`. The runner hands out the
// port, starts the process, waits until the port accepts connections and measures the process's CPU
// time (its whole process tree, so master/worker servers count in full).
import path from 'node:path'

export interface LaunchContext {
  /** Port the candidate must listen on, at 127.0.0.1. Free when handed out. */
  readonly port: number
  /** Ports of the backends, all at 127.0.0.1, to balance over. */
  readonly backendPorts: readonly number[]
  /** Repository root; children run with it as their working directory. */
  readonly rootDir: string
}

export interface Command {
  readonly file: string
  /** stdout goes to /dev/null; the tail of stderr is kept for error messages. */
  readonly args: readonly string[]
}

export type Candidate =
  /** wrk goes straight to the first backend: the ceiling. No process of its own, so no CPU figure. */
  | { readonly kind: 'direct'; readonly name: string; readonly description: string }
  | {
      readonly kind: 'process'
      readonly name: string
      /** One line of Markdown for docs/benchmarks.md. */
      readonly description: string
      readonly launch: (ctx: LaunchContext) => Command
    }

/**
 * The candidate the ratios are about; every other candidate is a reference for it. Variants named
 * `switchyard+feature` are subjects too.
 */
export const SUBJECT = 'switchyard'

/** A TypeScript peer under bench/peers, run by the same Node as the bench. */
function tsPeer(ctx: LaunchContext, file: string, args: readonly (string | number)[]): Command {
  return {
    file: process.execPath,
    args: ['--import', 'tsx', path.join(ctx.rootDir, 'bench', 'peers', file), ...args.map(String)],
  }
}

/** Switchyard from dist/ in quick mode, round-robin over the backends, plus `extra` flags. */
function switchyard(ctx: LaunchContext, extra: readonly string[]): Command {
  return {
    file: process.execPath,
    args: [
      path.join(ctx.rootDir, 'bin', 'switchyard.js'),
      '--listen',
      `127.0.0.1:${ctx.port}`,
      ...ctx.backendPorts.flatMap((p) => ['--to', `http://127.0.0.1:${p}`]),
      ...extra,
    ],
  }
}

export const candidates: readonly Candidate[] = [
  { kind: 'direct', name: 'direct', description: 'wrk straight at one backend, no proxy in between: the ceiling.' },
  {
    kind: 'process',
    name: SUBJECT,
    description:
      'this project, from `dist/` (rebuilt by the bench before each run): `node bin/switchyard.js --listen … --to … --to … --to … --log-level warn`, round-robin, **no access log** (it is on by default at the `info` level).',
    // --log-level warn turns the access log (on by default at info) off: we measure the bare proxy path.
    launch: (ctx) => switchyard(ctx, ['--log-level', 'warn']),
  },
  {
    kind: 'process',
    name: `${SUBJECT}+log`,
    description:
      'the same, with the default `--log-level info`: one JSON access-log line per request, written to /dev/null.',
    launch: (ctx) => switchyard(ctx, []),
  },
  {
    kind: 'process',
    name: 'http-proxy',
    description:
      'the npm `http-proxy` package, round-robin with a keep-alive `http.Agent` (maxSockets 256): `bench/peers/http-proxy.ts`.',
    launch: (ctx) => tsPeer(ctx, 'http-proxy.ts', [ctx.port, ...ctx.backendPorts]),
  },
]
