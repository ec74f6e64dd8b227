// Memory per idle client connection: starts Switchyard (one process, from dist/, default log level)
// in front of the bench's backends, reads its RSS, opens 20,000 keep-alive client connections that
// each make one request and then stay open and silent, waits for the RSS to settle, and reports the
// growth in total and per connection. Then closes everything. The whole run is bounded (60 s by
// default), well inside Switchyard's 60 s idle timeout for client connections.
// Writes bench/results/YYYY-MM-DD-idle.md and the idle section of docs/benchmarks.md (between the
// markers in bench/lib/report.ts; `npm run bench` carries that section over when it rewrites the file).
// Usage: npm run bench:idle [-- --connections N] [-- --backends auto|nginx|node]
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { type BackendKind, checkBodies, startBackends } from './lib/backends.js'
import { ensureBuilt, localDate } from './lib/build.js'
import { type Child, Children, freePorts } from './lib/children.js'
import { replaceSection } from './lib/docs-section.js'
import { IDLE_BEGIN, IDLE_END } from './lib/report.js'
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
/** The whole run, start to stop: after it the bench aborts and stops everything. */
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
  -h, --help         show this help`

interface IdleResult {
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
): Child {
  const script = 'ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"; exec "$0" "$@"'
  return children.start(name, 'bash', ['-c', script, file, ...args], { stdout })
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

async function measure(
  children: Children,
  connections: number,
  backendsKind: BackendKind | 'auto',
  signal: AbortSignal,
) {
  const tmpDir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-idle-'))
  chmodSync(tmpDir, 0o755)
  try {
    const [proxyPort, ...backendPorts] = await freePorts(4)
    const backends = await startBackends(
      children,
      ROOT,
      path.join(tmpDir, 'backends'),
      backendPorts,
      backendsKind,
      signal,
    )
    await checkBodies(backendPorts, signal)
    const proxy = startWithFileLimit(
      children,
      'switchyard',
      process.execPath,
      [
        path.join(ROOT, 'bin', 'switchyard.js'),
        '--listen',
        `127.0.0.1:${proxyPort}`,
        ...backendPorts.flatMap((p) => ['--to', `http://127.0.0.1:${p}`]),
      ],
      'ignore',
    )
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
    log(`baseline: RSS ${baseline.kb} KB, ${baselineFds ?? '?'} open files`)

    const clientCount = Math.ceil(count / PER_CLIENT)
    let closed = 0
    const lifetimeS = String(Math.ceil(DEADLINE_MS / 1_000) + 10)
    const clients = Array.from({ length: clientCount }, (_, i) => {
      const share = Math.floor(count / clientCount) + (i < count % clientCount ? 1 : 0)
      return startWithFileLimit(
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
      )
    })
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
    log(`${open} idle connections open (${failed} failed); waiting for RSS to settle`)
    const failNotes = clients.flatMap((c) => c.stderrTail().match(/^failures: .*$/m) ?? [])
    const loaded = await settledRssKb(proxy.pid, signal)
    const loadedFds = openFdCount(proxy.pid)
    const result: IdleResult = {
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
    for (const c of clients) await children.stop(c)
    await children.stop(proxy)
    await children.stop(backends.child)
    return { result, backends: backends.description }
  } finally {
    rmSync(tmpDir, { recursive: true, force: true })
  }
}

const kbToMb = (kb: number): string => (kb / 1_024).toFixed(1)

function perConnectionKb(r: IdleResult): number | undefined {
  return r.open > 0 ? (r.loadedKb - r.baselineKb) / r.open : undefined
}

/** The section of docs/benchmarks.md, markers included. */
function docsSection(r: IdleResult, date: string, resultsPath: string): string {
  const per = perConnectionKb(r)
  return `${IDLE_BEGIN}
\`npm run bench:idle\` starts Switchyard (one process, from \`dist/\`, default log level) in front of the backends, reads its RSS (\`VmRSS\` in \`/proc/PID/status\`), opens ${r.asked.toLocaleString('en-US')} keep-alive client connections that each make one request and then stay open and silent, waits for the RSS to settle, and reads it again. The run is bounded to ${DEADLINE_MS / 1_000} s, inside Switchyard's 60 s idle timeout.

Latest (${date}): **${per === undefined ? '—' : per.toFixed(1)} KB per idle connection**: RSS ${kbToMb(r.baselineKb)} MB at rest, ${kbToMb(r.loadedKb)} MB with ${r.open.toLocaleString('en-US')} idle connections (+${kbToMb(r.loadedKb - r.baselineKb)} MB).${r.capNote === undefined ? '' : ` Note: ${r.capNote}.`} Details: [${resultsPath}](../${resultsPath}).
${IDLE_END}`
}

function resultsMd(r: IdleResult, date: string, backends: string): string {
  const per = perConnectionKb(r)
  return `# Idle connections, ${date}

Command: \`npm run bench:idle${r.asked === DEFAULT_CONNECTIONS ? '' : ` -- --connections ${r.asked}`}\`

Switchyard: one process from \`dist/\`, default \`--log-level info\`, round-robin over three backends. Backends: ${backends}. Node ${process.version}.

| figure | value |
|---|--:|
| connections asked | ${r.asked.toLocaleString('en-US')} |
| open when measured | ${r.open.toLocaleString('en-US')} |
| failed to open | ${r.failed}${r.failNotes.length === 0 ? '' : ` (${r.failNotes.join('; ')})`} |
| closed by the server before the measurement | ${r.closedBeforeMeasure} |
| RSS at rest (after 1 s of wrk, settled in ${r.settleBaselineS.toFixed(1)} s) | ${kbToMb(r.baselineKb)} MB |
| RSS with the idle connections (settled in ${r.settleLoadedS.toFixed(1)} s) | ${kbToMb(r.loadedKb)} MB |
| growth | ${kbToMb(r.loadedKb - r.baselineKb)} MB |
| **per connection** | **${per === undefined ? '—' : per.toFixed(1)} KB** |
| Switchyard's open files, at rest → loaded | ${r.baselineFds ?? '?'} → ${r.loadedFds ?? '?'} |

RSS "settles" when ${SETTLE_SAMPLES} samples ${SAMPLE_MS} ms apart differ by less than ${SETTLE_KB} KB (at most ${SETTLE_MAX_MS / 1_000} s). RSS includes whatever V8 has not collected yet, so the figure is an upper bound on what a connection keeps alive.
${r.capNote === undefined ? '' : `\nNote: ${r.capNote}.\n`}`
}

async function main(argv: readonly string[]): Promise<number> {
  let values: { connections?: string | undefined; backends?: string | undefined; help?: boolean | undefined }
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        connections: { type: 'string' },
        backends: { type: 'string', default: 'auto' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values
  } catch (err) {
    log(`bench:idle: ${(err as Error).message}\n${USAGE}`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  const connections = values.connections === undefined ? DEFAULT_CONNECTIONS : Number(values.connections)
  const backends = values.backends ?? 'auto'
  if (!Number.isInteger(connections) || connections <= 0 || !['auto', 'nginx', 'node'].includes(backends)) {
    log(`bench:idle: bad arguments\n${USAGE}`)
    return 2
  }
  if (probeTool('wrk') === undefined) {
    log('bench:idle: wrk is not on PATH. Install it first:\n\n  apt-get install -y wrk\n')
    return 1
  }
  ensureBuilt(ROOT, log)

  const aborter = new AbortController()
  const onSignal = (): void => aborter.abort(new Error('interrupted'))
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  const signal = AbortSignal.any([aborter.signal, AbortSignal.timeout(DEADLINE_MS)])
  const children = new Children(ROOT)
  const killOnExit = (): void => children.killAllNow()
  process.on('exit', killOnExit)
  const date = localDate(new Date())
  try {
    const { result, backends: backendsText } = await measure(
      children,
      connections,
      backends as BackendKind | 'auto',
      signal,
    )
    const resultsPath = `bench/results/${date}-idle.md`
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(path.join(ROOT, resultsPath), resultsMd(result, date, backendsText))
    const docsPath = path.join(ROOT, 'docs', 'benchmarks.md')
    const docs = existsSync(docsPath) ? readFileSync(docsPath, 'utf8') : '# Benchmarks\n'
    const section = docsSection(result, date, resultsPath)
    writeFileSync(
      docsPath,
      replaceSection(
        docs,
        IDLE_BEGIN,
        IDLE_END,
        section,
        (text, s) => `${text.trimEnd()}\n\n## Idle connections\n\n${s}\n`,
      ),
    )
    const per = perConnectionKb(result)
    process.stdout.write(
      `idle connections: ${result.open} open, RSS ${kbToMb(result.baselineKb)} MB → ${kbToMb(result.loadedKb)} MB, ${per === undefined ? '—' : per.toFixed(1)} KB per connection\nwrote ${resultsPath} and the idle section of docs/benchmarks.md\n`,
    )
    return 0
  } catch (err) {
    if (signal.aborted) {
      log(`bench:idle: ${aborter.signal.aborted ? 'interrupted' : `did not finish within ${DEADLINE_MS / 1_000} s`}`)
      return aborter.signal.aborted ? 130 : 1
    }
    throw err
  } finally {
    await children.stopAll()
    process.off('exit', killOnExit)
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
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
