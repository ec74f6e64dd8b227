// Memory per idle client connection: starts Switchyard (one process, from dist/, default log level)
// in front of the bench's backends, reads its RSS, opens 20,000 keep-alive client connections that
// each make one request and then stay open and silent, waits for the RSS to settle, and reports the
// growth in total and per connection. Then closes everything. Once per HTTP/1.1 engine (both by
// default, `SWITCHYARD_ENGINE` set for the child) and per Node (`--node`, as in bench/run.ts), one
// after the other; each measurement is bounded (60 s), well inside Switchyard's 60 s idle timeout for
// client connections, and checked against the issue 12 target (≤ 8 KB per connection).
// Writes bench/results/YYYY-MM-DD-idle.md and the idle section of docs/benchmarks.md (between the
// markers in bench/lib/report.ts; `npm run bench` carries that section over when it rewrites the file).
// Usage: npm run bench:idle [-- --connections N] [-- --backends auto|nginx|node] [-- --engine E ...]
//   [-- --node PATH ...] [-- --no-docs]
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { ENGINES, type Engine } from '../src/config/schema.js'
import type { BackendKind } from './lib/backends.js'
import { ensureBuilt, localDate } from './lib/build.js'
import { type Child, type Children, freePorts } from './lib/children.js'
import { replaceSection } from './lib/docs-section.js'
import { IDLE_TARGET_KB } from './lib/engines.js'
import { NODE24_INSTALL, type NodeRuntime, SELF } from './lib/nodes.js'
import { backendsOption, nodesOption, SetupError, SHARED_OPTIONS, UsageError } from './lib/options.js'
import { IDLE_BEGIN, IDLE_END } from './lib/report.js'
import { BenchSession } from './lib/session.js'
import { openFdCount, openFileLimit, portOwner, statusKb } from './lib/system.js'
import { probeTool } from './lib/tools.js'
import { runWrk } from './lib/wrk.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const DEFAULT_CONNECTIONS = 20_000
/** The most connections one client process opens; more clients share a larger count. */
const PER_CLIENT = 10_000
/**
 * Descriptors left to the proxy below its open-file limit: its own files and listeners (about 30)
 * and the upstream connections it opens while a wave of 100 client requests is in flight.
 */
const PROXY_FD_RESERVE = 500
/** One measurement, start to stop: after it the bench aborts and stops everything. */
const DEADLINE_MS = 60_000
const START_TIMEOUT_MS = 15_000
/** RSS counts as settled when the last SETTLE_SAMPLES samples, SAMPLE_MS apart, differ by less than this. */
const SETTLE_KB = 512
const SETTLE_SAMPLES = 4
const SAMPLE_MS = 500
/** Longest wait for the RSS to settle, per measurement. */
const SETTLE_MAX_MS = 15_000

const USAGE = `Usage: npm run bench:idle [-- OPTIONS]
  --connections N    idle client connections to open (default ${DEFAULT_CONNECTIONS}; fewer if the open-file limit is lower)
  --backends KIND    auto (nginx if installed, default) | nginx | node
  --engine E         measure this HTTP/1.1 engine: ${ENGINES.join(' | ')} (repeat for more; default: each)
  --node PATH        run Switchyard under this Node (repeat for more; default: ${SELF}, the bench's own;
                     a binary, or a directory with one, e.g. after ${NODE24_INSTALL})
  --no-docs          write bench/results/ only, leave docs/benchmarks.md alone
  -h, --help         show this help`

/** One measurement: Switchyard on `engine` under `node`. */
interface Variant {
  readonly engine: Engine
  readonly node: NodeRuntime
}

interface IdleResult {
  readonly variant: Variant
  readonly asked: number
  readonly open: number
  readonly failed: number
  readonly closedBeforeMeasure: number
  readonly baselineKb: number
  readonly loadedKb: number
  readonly baselineFds: number | undefined
  readonly loadedFds: number | undefined
  readonly settleBaselineS: number
  readonly settleLoadedS: number
  readonly capNote: string | undefined
  /** The clients' `failures: ...` lines, when some connections failed. */
  readonly failNotes: readonly string[]
}

function log(line: string): void {
  process.stderr.write(`${line}\n`)
}

/**
 * Starts `file args` through bash after raising the open-file limit as far as allowed (65,536, or
 * the hard limit when that is lower); `exec` keeps the PID, so the child is the process itself.
 */
function startWithFileLimit(
  children: Children,
  name: string,
  file: string,
  args: readonly string[],
  stdout: 'ignore' | 'pipe',
  env: Readonly<Record<string, string>> = {},
): Child {
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"'
  return children.start(name, 'bash', ['-c', script, file, ...args], { stdout, env })
}

/** Samples VmRSS until it holds still (see SETTLE_KB); returns the last sample and the time it took. */
async function settledRssKb(pid: number, signal: AbortSignal): Promise<{ kb: number; waitedS: number }> {
  const t0 = Date.now()
  const samples: number[] = []
  for (;;) {
    const kb = statusKb(pid, 'VmRSS')
    if (kb === undefined) throw new Error(`process ${pid} is gone`)
    samples.push(kb)
    const last = samples.slice(-SETTLE_SAMPLES)
    const waitedMs = Date.now() - t0
    if (last.length === SETTLE_SAMPLES && Math.max(...last) - Math.min(...last) < SETTLE_KB)
      return { kb, waitedS: waitedMs / 1_000 }
    if (waitedMs >= SETTLE_MAX_MS) return { kb, waitedS: waitedMs / 1_000 }
    await sleep(SAMPLE_MS, undefined, { signal })
  }
}

/**
 * Resolves with a client's `ready OPEN FAILED` line; rejects if the client exits first or `signal`
 * aborts. The `closed N` lines (a running total) go to `onClosed`, before and after.
 */
function clientReady(
  client: Child,
  onClosed: (n: number) => void,
  signal: AbortSignal,
): Promise<{ open: number; failed: number }> {
  const stdout = client.stdout
  if (stdout === null) return Promise.reject(new Error(`${client.name} has no stdout`))
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: stdout })
    lines.on('line', (line) => {
      const r = /^ready (\d+) (\d+)$/.exec(line)
      if (r !== null) resolve({ open: Number(r[1]), failed: Number(r[2]) })
      const c = /^closed (\d+)$/.exec(line)
      if (c !== null) onClosed(Number(c[1]))
    })
    // Once settled, a later reject is a no-op: the client exiting after `ready` is expected.
    lines.once('close', () => reject(new Error(`${client.name} exited before it was ready:\n${client.stderrTail()}`)))
    signal.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

/** Switchyard on `variant` in front of `backendPorts`, measured at rest and with `connections` idle clients. */
async function measure(
  children: Children,
  variant: Variant,
  connections: number,
  backendPorts: readonly number[],
  signal: AbortSignal,
): Promise<IdleResult> {
  const [proxyPort] = await freePorts(1)
  const proxy = startWithFileLimit(
    children,
    `switchyard-${variant.engine}@${variant.node.label}`,
    variant.node.file,
    [
      path.join(ROOT, 'bin', 'switchyard.js'),
      '--listen',
      `127.0.0.1:${proxyPort}`,
      ...backendPorts.flatMap((p) => ['--to', `http://127.0.0.1:${p}`]),
    ],
    'ignore',
    { SWITCHYARD_ENGINE: variant.engine },
  )
  const clients: Child[] = []
  try {
    await children.waitForPort(proxy, proxyPort!, START_TIMEOUT_MS, signal)
    if (portOwner(proxy.pid, proxyPort!).kind === 'not-ours')
      throw new Error(`another process listens on ${proxyPort}, not the Switchyard we started`)

    const limit = openFileLimit('soft', proxy.pid)
    const count = limit === undefined ? connections : Math.min(connections, limit - PROXY_FD_RESERVE)
    const capNote =
      count < connections
        ? `${count} connections, not ${connections}: Switchyard's open-file limit here is ${limit} (the hard limit could not be raised)`
        : undefined
    if (capNote !== undefined) log(`note: ${capNote}`)

    // Load the request path once (code, pools, buffers), so the baseline is a warm proxy at rest.
    await runWrk(children, { url: `http://127.0.0.1:${proxyPort}/`, connections: 10, durationS: 1 }, signal)
    const baseline = await settledRssKb(proxy.pid, signal)
    const baselineFds = openFdCount(proxy.pid)
    log(`  baseline: RSS ${baseline.kb} KB, ${baselineFds ?? '?'} open files`)

    const clientCount = Math.ceil(count / PER_CLIENT)
    let closed = 0
    const lifetimeS = String(Math.ceil(DEADLINE_MS / 1_000) + 10)
    for (let i = 0; i < clientCount; i++) {
      const share = Math.floor(count / clientCount) + (i < count % clientCount ? 1 : 0)
      clients.push(
        startWithFileLimit(
          children,
          `idle-client-${i + 1}`,
          process.execPath,
          [
            '--import',
            'tsx',
            path.join(ROOT, 'bench', 'peers', 'idle-client.ts'),
            String(proxyPort),
            String(share),
            lifetimeS,
          ],
          'pipe',
        ),
      )
    }
    const closedBy = new Map<number, number>()
    const readies = await Promise.all(
      clients.map((c) =>
        clientReady(
          c,
          (n) => {
            closedBy.set(c.pid, n)
            closed = [...closedBy.values()].reduce((a, b) => a + b, 0)
          },
          signal,
        ),
      ),
    )
    const open = readies.reduce((sum, r) => sum + r.open, 0)
    const failed = readies.reduce((sum, r) => sum + r.failed, 0)
    log(`  ${open} idle connections open (${failed} failed); waiting for RSS to settle`)
    const failNotes = clients.flatMap((c) => c.stderrTail().match(/^failures: .*$/m) ?? [])
    const loaded = await settledRssKb(proxy.pid, signal)
    const loadedFds = openFdCount(proxy.pid)
    return {
      variant,
      asked: connections,
      open: open - closed,
      failed,
      closedBeforeMeasure: closed,
      baselineKb: baseline.kb,
      loadedKb: loaded.kb,
      baselineFds,
      loadedFds,
      settleBaselineS: baseline.waitedS,
      settleLoadedS: loaded.waitedS,
      capNote,
      failNotes,
    }
  } finally {
    for (const c of clients) await children.stop(c)
    await children.stop(proxy)
  }
}

const kbToMb = (kb: number): string => (kb / 1_024).toFixed(1)

function perConnectionKb(r: IdleResult): number | undefined {
  return r.open > 0 ? (r.loadedKb - r.baselineKb) / r.open : undefined
}

const variantText = (v: Variant): string => `${v.engine} engine, Node ${v.node.version}`

/** The issue 12 target, for one result: met, missed or not measured. */
function targetText(r: IdleResult): string {
  const per = perConnectionKb(r)
  if (per === undefined) return 'not measured'
  return per <= IDLE_TARGET_KB ? 'met' : 'missed'
}

/** The section of docs/benchmarks.md, markers included. */
function docsSection(rs: readonly IdleResult[], date: string, resultsPath: string): string {
  const rows = rs.map((r) => {
    const per = perConnectionKb(r)
    return `| ${r.variant.engine} | ${r.variant.node.label} (${r.variant.node.version}) | **${per === undefined ? '—' : per.toFixed(1)}** | ${kbToMb(r.baselineKb)} → ${kbToMb(r.loadedKb)} | ${r.open.toLocaleString('en-US')} | ${targetText(r)} |`
  })
  const caps = [...new Set(rs.flatMap((r) => (r.capNote === undefined ? [] : [r.capNote])))]
  const asked = rs[0]?.asked ?? DEFAULT_CONNECTIONS
  return `${IDLE_BEGIN}
\`npm run bench:idle\` starts Switchyard (one process, from \`dist/\`, quick mode, default log level) in front of the backends, reads its RSS (\`VmRSS\` in \`/proc/PID/status\`), opens ${asked.toLocaleString('en-US')} keep-alive client connections that each make one request and then stay open and silent, waits for the RSS to settle, and reads it again; once per HTTP/1.1 engine (\`SWITCHYARD_ENGINE\`) and per Node (\`--node\`), one after the other. Each measurement is bounded to ${DEADLINE_MS / 1_000} s, inside Switchyard's 60 s idle timeout. Target (issue 12): at most ${IDLE_TARGET_KB} KB per idle connection.

Latest (${date}):

| engine | Node | KB per idle connection | RSS MB, at rest → loaded | idle connections | ≤ ${IDLE_TARGET_KB} KB |
|---|---|--:|--:|--:|---|
${rows.join('\n')}
${caps.length === 0 ? '' : `\nNote: ${caps.join('; ')}.\n`}
Details: [${resultsPath}](../${resultsPath}).
${IDLE_END}`
}

function resultsMd(rs: readonly IdleResult[], date: string, backends: string, command: string): string {
  const cell = (f: (r: IdleResult) => string): string => `| ${rs.map(f).join(' | ')} |`
  const figure = (label: string, f: (r: IdleResult) => string): string => `| ${label} ${cell(f)}`
  const notes = rs.flatMap((r) => (r.capNote === undefined ? [] : [`${variantText(r.variant)}: ${r.capNote}.`]))
  return `# Idle connections, ${date}

Command: \`${command}\`

Switchyard: one process from \`dist/\`, quick mode, default \`--log-level info\`, round-robin over three backends, one measurement per column, one after the other. Backends: ${backends}. Idle clients: Node ${process.version}.

| figure | ${rs.map((r) => variantText(r.variant)).join(' | ')} |
|---|${rs.map(() => '--:').join('|')}|
${[
  figure('connections asked', (r) => r.asked.toLocaleString('en-US')),
  figure('open when measured', (r) => r.open.toLocaleString('en-US')),
  figure('failed to open', (r) => `${r.failed}${r.failNotes.length === 0 ? '' : ` (${r.failNotes.join('; ')})`}`),
  figure('closed by the server before the measurement', (r) => String(r.closedBeforeMeasure)),
  figure(
    'RSS at rest (after 1 s of wrk), MB',
    (r) => `${kbToMb(r.baselineKb)} (settled in ${r.settleBaselineS.toFixed(1)} s)`,
  ),
  figure(
    'RSS with the idle connections, MB',
    (r) => `${kbToMb(r.loadedKb)} (settled in ${r.settleLoadedS.toFixed(1)} s)`,
  ),
  figure('growth, MB', (r) => kbToMb(r.loadedKb - r.baselineKb)),
  figure('**per connection**', (r) => `**${perConnectionKb(r)?.toFixed(1) ?? '—'} KB**`),
  figure(`target: ≤ ${IDLE_TARGET_KB} KB`, targetText),
  figure("Switchyard's open files, at rest → loaded", (r) => `${r.baselineFds ?? '?'} → ${r.loadedFds ?? '?'}`),
].join('\n')}

RSS "settles" when ${SETTLE_SAMPLES} samples ${SAMPLE_MS} ms apart differ by less than ${SETTLE_KB} KB (at most ${SETTLE_MAX_MS / 1_000} s). RSS includes whatever V8 has not collected yet, so the figure is an upper bound on what a connection keeps alive.
${notes.length === 0 ? '' : `\n${notes.map((n) => `- ${n}`).join('\n')}\n`}`
}

interface Options {
  readonly connections: number
  readonly backends: BackendKind | 'auto'
  readonly variants: readonly Variant[]
  readonly docs: boolean
}

function parseOptions(argv: readonly string[]): Options | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      connections: { type: 'string' },
      engine: { type: 'string', multiple: true },
      ...SHARED_OPTIONS,
    },
    strict: true,
  })
  if (values.help) return 'help'
  const connections = values.connections === undefined ? DEFAULT_CONNECTIONS : Number(values.connections)
  if (!Number.isInteger(connections) || connections <= 0)
    throw new UsageError(`--connections wants a positive integer, got ${values.connections}`)
  const backends = backendsOption(values.backends)
  const engines = (values.engine ?? [...ENGINES]).map((e) => {
    if (!(ENGINES as readonly string[]).includes(e))
      throw new UsageError(`--engine wants ${ENGINES.join(' or ')}, got ${e}`)
    return e as Engine
  })
  const nodes = nodesOption(values.node)
  return {
    connections,
    backends,
    variants: nodes.flatMap((node) => [...new Set(engines)].map((engine) => ({ engine, node }))),
    docs: !values['no-docs'],
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let options: Options | 'help'
  try {
    options = parseOptions(argv)
  } catch (err) {
    if (err instanceof SetupError) {
      log(`bench:idle: ${err.message}`)
      return 1
    }
    if (!(err instanceof UsageError) && !(err instanceof TypeError)) throw err
    log(`bench:idle: ${err.message}\n${USAGE}`)
    return 2
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (probeTool('wrk') === undefined) {
    log('bench:idle: wrk is not on PATH. Install it first:\n\n  apt-get install -y wrk\n')
    return 1
  }
  const command = `npm run bench:idle${argv.length > 0 ? ` -- ${argv.join(' ')}` : ''}`
  log(
    `${command}: ${options.variants.length} measurement(s) (${options.variants.map(variantText).join('; ')}), at most ${DEADLINE_MS / 1_000} s each`,
  )
  ensureBuilt(ROOT, log)

  const session = new BenchSession(ROOT, 'switchyard-idle-')
  const date = localDate(new Date())
  let signal: AbortSignal = session.signal
  try {
    const backends = await session.startBackends(3, options.backends)
    const results: IdleResult[] = []
    for (const variant of options.variants) {
      log(`${variantText(variant)}:`)
      signal = AbortSignal.any([session.signal, AbortSignal.timeout(DEADLINE_MS)])
      results.push(await measure(session.children, variant, options.connections, backends.ports, signal))
    }
    await session.children.stop(backends.child)
    const resultsPath = `bench/results/${date}-idle.md`
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(path.join(ROOT, resultsPath), resultsMd(results, date, backends.description, command))
    if (options.docs) {
      const docsPath = path.join(ROOT, 'docs', 'benchmarks.md')
      const docs = existsSync(docsPath) ? readFileSync(docsPath, 'utf8') : '# Benchmarks\n'
      writeFileSync(
        docsPath,
        replaceSection(
          docs,
          IDLE_BEGIN,
          IDLE_END,
          docsSection(results, date, resultsPath),
          (text, s) => `${text.trimEnd()}\n\n## Idle connections\n\n${s}\n`,
        ),
      )
    }
    for (const r of results) {
      const per = perConnectionKb(r)
      process.stdout.write(
        `${variantText(r.variant)}: ${r.open} idle connections, RSS ${kbToMb(r.baselineKb)} MB → ${kbToMb(r.loadedKb)} MB, ${per === undefined ? '—' : per.toFixed(1)} KB per connection (target ≤ ${IDLE_TARGET_KB} KB: ${targetText(r)})\n`,
      )
    }
    process.stdout.write(
      `wrote ${resultsPath}${options.docs ? ' and the idle section of docs/benchmarks.md' : ' (docs/benchmarks.md left alone: --no-docs)'}\n`,
    )
    return 0
  } catch (err) {
    if (signal.aborted) {
      log(
        `bench:idle: ${session.signal.aborted ? 'interrupted' : `a measurement did not finish within ${DEADLINE_MS / 1_000} s`}`,
      )
      return session.signal.aborted ? 130 : 1
    }
    throw err
  } finally {
    await session.close()
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    log(`bench:idle: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`)
    process.exitCode = 1
  },
)
