/**
 * The `switchyard` command: argv → config → a running load balancer, plus `validate`, `test`, `demo` and
 * `ctl` (ctl.ts).
 * Exit codes: 0 ok (including a graceful stop), 1 runtime failure (e.g. port in use) or a failing test
 * case, 2 bad usage or an invalid config (or cases file).
 */
import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { parseArgs } from 'node:util'
import type { Counter } from 'prom-client'
import { ALGORITHMS } from './balancer/index.js'
import { type ConfigIssue, formatIssue, loadConfigFile, type RuntimeConfig, validateConfig } from './config/index.js'
import { formatAddress } from './core/address.js'
import { isSwitchyardError, type SwitchyardError } from './core/errors.js'
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from './core/logger.js'
import { ctlCommand } from './ctl.js'
import { startSampleBackends } from './demo/backends.js'
import type { EventLog } from './server/events.js'
import { addressText, LoadBalancer } from './server/load-balancer.js'
import { Supervisor } from './server/supervisor.js'
import { watchConfigFile } from './server/watch.js'
import { runCasesFiles } from './testkit/index.js'
import { VERSION } from './version.js'

const USAGE = `switchyard ${VERSION}: a load balancer and reverse proxy

Usage:
  switchyard --listen ADDR --to URL [--to URL ...] [--balance ALG] [--admin ADDR] [--workers N]
  switchyard --config FILE [--watch]  (-c FILE)
  switchyard validate FILE
  switchyard test FILE [FILE ...]   (routing test cases: docs/testing-configs.md)
  switchyard demo [--listen ADDR] [--admin ADDR]
  switchyard ctl COMMAND ...        (steer a running instance: switchyard ctl --help)

Options:
  --listen ADDR      address to accept traffic on, e.g. 127.0.0.1:8080
  --to URL           an upstream server, e.g. http://127.0.0.1:3001 (repeat for more)
  --balance ALG      ${ALGORITHMS.join(' | ')} (default: round-robin)
  --admin ADDR       serve the admin API (status, metrics) on ADDR
  --workers N|auto   worker processes (default 1; auto: one per CPU core)
  -c, --config FILE  run from a YAML or JSON config file
  --watch            reload the config file whenever its content changes (as SIGHUP does)
  --log-level LEVEL  ${LOG_LEVELS.join(' | ')} (default: info)
  -h, --help         show this help
  -v, --version      print the version

Signals: SIGTERM/SIGINT drain and exit 0; SIGHUP reloads the config file (as --watch does on a change);
SIGUSR1 reopens the access log file (logging.accessLog.file), for logrotate.
Docs: docs/README.md, configuration reference: docs/configuration.md
`

interface Io {
  out(text: string): void
  err(text: string): void
}

const stdio: Io = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
}

/** Runs the CLI. Resolves with an exit code for commands that end; a server resolves when it stops. */
export async function main(argv: readonly string[], io: Io = stdio): Promise<number> {
  if (argv[0] === 'ctl') return ctlCommand(argv.slice(1), io)
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    io.err(`switchyard: ${(err as Error).message}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.out(USAGE)
    return 0
  }
  if (values.version) {
    io.out(VERSION)
    return 0
  }
  const level = values['log-level']
  if (level !== undefined && !LOG_LEVELS.includes(level as LogLevel)) {
    io.err(`switchyard: --log-level: expected one of ${LOG_LEVELS.join(', ')}, found "${level}"`)
    return 2
  }
  const command = positionals[0]
  if (command === 'validate') {
    const file = positionals[1]
    if (file === undefined || positionals.length !== 2) return usageError(io, 'validate takes exactly one FILE')
    return validateCommand(file, io)
  }
  if (command === 'test') {
    if (positionals.length < 2) return usageError(io, 'test takes at least one cases FILE')
    return runCasesFiles(positionals.slice(1), io)
  }
  if (command === 'demo') return demoCommand(values, io)
  if (command !== undefined) return usageError(io, `unknown command "${command}"`)

  if (values.config !== undefined) {
    if (values.to || values.balance || values.workers)
      return usageError(io, '--config cannot be combined with --to, --balance or --workers')
    const result = await loadConfigFile(values.config)
    if (!result.ok) return printIssues(result.issues, io)
    return serve(result.config, { kind: 'file', file: values.config }, level as LogLevel | undefined, io, {
      watch: values.watch === true,
    })
  }
  if (values.watch) return usageError(io, '--watch needs --config FILE')
  if (values.to === undefined || values.listen === undefined)
    return usageError(io, 'give --config FILE, or --listen ADDR with at least one --to URL')
  const quick = validateConfig({
    ...(values.admin !== undefined ? { admin: { listen: values.admin } } : {}),
    ...(values.workers !== undefined ? { workers: values.workers === 'auto' ? 'auto' : Number(values.workers) } : {}),
    listeners: [{ name: 'default', listen: values.listen, routes: [{ pool: 'default' }] }],
    pools: [{ name: 'default', balance: values.balance ?? 'round-robin', servers: values.to }],
  })
  if (!quick.ok) {
    for (const i of quick.issues) {
      const flag = flagFor(i.path)
      // A flag names an algorithm; the config's "or a mapping" (algorithm options) cannot be given here.
      const message =
        flag === '--balance'
          ? `expected ${ALGORITHMS.map((a) => JSON.stringify(a)).join(' or ')}, found ${JSON.stringify(values.balance)}`
          : i.message
      io.err(`switchyard: ${flag}: ${message}`)
    }
    return 2
  }
  return serve(quick.config, { kind: 'flags', defaults: [] }, level as LogLevel | undefined, io)
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: 'string', short: 'c' },
      listen: { type: 'string' },
      to: { type: 'string', multiple: true },
      balance: { type: 'string' },
      admin: { type: 'string' },
      workers: { type: 'string' },
      'log-level': { type: 'string' },
      watch: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
  })
}

function usageError(io: Io, message: string): number {
  io.err(`switchyard: ${message}\nRun "switchyard --help" for usage.`)
  return 2
}

/** Maps a quick-mode config path back to the flag that produced it. */
function flagFor(path: string): string {
  if (path.startsWith('listeners[0].listen')) return '--listen'
  if (path.startsWith('admin.listen')) return '--admin'
  if (path.startsWith('pools[0].balance')) return '--balance'
  if (path.startsWith('workers')) return '--workers'
  const to = /^pools\[0\]\.servers\[(\d+)\]/.exec(path)
  if (to) return `--to #${Number(to[1]) + 1}`
  return path
}

function printIssues(issues: readonly ConfigIssue[], io: Io): number {
  for (const i of issues) io.err(formatIssue(i))
  io.err(`${issues.length} problem${issues.length === 1 ? '' : 's'} found`)
  return 2
}

async function validateCommand(file: string, io: Io): Promise<number> {
  const result = await loadConfigFile(file)
  if (!result.ok) return printIssues(result.issues, io)
  const c = result.config
  const servers = c.pools.reduce((n, p) => n + p.backends.length, 0)
  const routes = c.listeners.reduce((n, l) => n + l.routes.length, 0)
  io.out(
    `${file}: ok (${plural(c.listeners.length, 'listener')}, ${plural(routes, 'route')}, ${plural(c.pools.length, 'pool')}, ${plural(servers, 'server')})`,
  )
  return 0
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

async function demoCommand(values: ReturnType<typeof parse>['values'], io: Io): Promise<number> {
  const listen = values.listen ?? '127.0.0.1:8080'
  const admin = values.admin ?? '127.0.0.1:9901'
  const backends = await startSampleBackends(3)
  // The admin API is guarded even on loopback: the token comes from the environment, or is made here
  // and printed in the banner.
  const token = process.env.SWITCHYARD_ADMIN_TOKEN ?? randomBytes(18).toString('base64url')
  const result = validateConfig({
    admin: { listen: admin, token },
    listeners: [{ name: 'demo', listen, routes: [{ pool: 'samples' }] }],
    pools: [{ name: 'samples', balance: 'round-robin', servers: backends.map((b) => ({ url: b.url, name: b.name })) }],
  })
  if (!result.ok) {
    for (const i of result.issues) io.err(`switchyard demo: ${flagFor(i.path)}: ${i.message}`)
    await Promise.all(backends.map((b) => b.close()))
    return 2
  }
  // Printed once serving, with the bound addresses (a port given as 0 shows the port the OS chose).
  const banner = (service: Service): string => {
    const at = addressText(service.addresses().demo) || listen
    const adminAt = addressText(service.adminAddress()) || admin
    return [
      '',
      'Switchyard demo',
      `  load balancer  http://${at}   round-robin over ${backends.map((b) => `${b.name} (${b.url})`).join(', ')}`,
      `  admin          http://${adminAt}   dashboard (open it in a browser), /api/v1, /metrics`,
      `  admin token    ${token}   (Authorization: Bearer; the page asks for it once)`,
      `  pid            ${process.pid}   Switchyard's own (not npm's): Ctrl-C or kill -TERM ${process.pid} stops it`,
      '',
      'Try:',
      `  for i in 1 2 3 4 5 6; do curl -s http://${at}/; done`,
      `  curl -s http://${at}/slow?ms=500        # a slow answer`,
      `  curl -s -H 'authorization: Bearer ${token}' http://${adminAt}/api/v1/pools`,
      `  SWITCHYARD_ADMIN_TOKEN=${token} npx switchyard ctl --admin ${adminAt} drain samples/${backends[1]?.name ?? 'sample-2'}`,
      '',
      'Each request is logged below as one JSON line. Press Ctrl-C to stop.',
      '',
    ].join('\n')
  }
  const defaults = [
    ...(values.listen === undefined ? ['--listen'] : []),
    ...(values.admin === undefined ? ['--admin'] : []),
  ]
  const level = values['log-level'] as LogLevel | undefined
  const code = await serve(result.config, { kind: 'flags', defaults }, level, io, { banner })
  await Promise.all(backends.map((b) => b.close()))
  return code
}

/** What `serve` runs: one load balancer in this process, or a supervisor of worker processes. */
interface Service {
  start(): Promise<void>
  close(): Promise<void>
  reload(config: RuntimeConfig): Promise<void>
  /** Reopens the access log's file (every worker's). */
  reopenLogs(): void
  addresses(): Record<string, AddressInfo>
  adminAddress(): AddressInfo | undefined
  readonly metrics: { readonly reloads: Counter }
  /** The admin API's event log: a reload whose file does not validate is told there too. */
  readonly events: EventLog
  /** The generation that serves now. */
  generation(): number
}

/**
 * Where the config came from, so that errors name what the user wrote: a file, or flags (quick mode and
 * the demo; `defaults` lists the address flags that were left at the demo's defaults).
 */
type Origin =
  | { readonly kind: 'file'; readonly file: string }
  | { readonly kind: 'flags'; readonly defaults: readonly string[] }

/** Starts the load balancer (or its workers) and resolves with the exit code once it has stopped. */
async function serve(
  config: RuntimeConfig,
  origin: Origin,
  level: LogLevel | undefined,
  io: Io,
  { banner, watch = false }: { banner?: (service: Service) => string; watch?: boolean } = {},
): Promise<number> {
  const file = origin.kind === 'file' ? origin.file : undefined
  const logLevel = level ?? config.logging.level
  const logger = createLogger({ level: logLevel })
  const service: Service =
    config.workers > 1
      ? adaptSupervisor(new Supervisor(config, { logger, level: logLevel, configFile: file }))
      : adaptLoadBalancer(new LoadBalancer(config, { logger, configFile: file }))
  // Installed first: until a SIGUSR1 handler exists, Node takes SIGUSR1 as the signal to start its
  // inspector (a debugger port), which a logrotate `postrotate` must never do.
  const reopen = () => {
    logger.info('SIGUSR1 received: reopening log files')
    service.reopenLogs()
  }
  process.on('SIGUSR1', reopen)
  try {
    await service.start()
  } catch (err) {
    if (isSwitchyardError(err) && err.source === 'config') {
      io.err(`switchyard: ${describeListenError(err, config, origin)}`)
      await flush(logger)
      return 1
    }
    throw err
  }
  // Log the pid to signal: under `npm start` or `npx`, the pid of the npm process is not this one.
  const pid = process.pid
  logger.info(
    { pid, version: VERSION, workers: config.workers },
    `switchyard ${VERSION} running as pid ${pid}${config.workers > 1 ? ' (the supervisor)' : ''}: ${file === undefined ? '' : `kill -HUP ${pid} reloads ${file}, `}kill -TERM ${pid} drains and stops`,
  )
  if (banner) io.out(banner(service))
  return new Promise<number>((resolve) => {
    let stopping = false
    let stopWatching = () => {}
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn(`${signal} again: exiting without waiting`)
        return void flush(logger).then(() => resolve(1))
      }
      stopping = true
      stopWatching()
      logger.info(`${signal} received: draining`)
      service.close().then(
        () => flush(logger).then(() => resolve(0)),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed')
          void flush(logger).then(() => resolve(1))
        },
      )
    }
    // One reload at a time (SIGHUP and --watch may ask at once). Asks that arrive while one runs are
    // folded into one more reload after it, which reads the file as it is then.
    let reloading = false
    let again: string | undefined
    const reload = (reason: string) => {
      if (reloading) {
        again = reason
        return
      }
      reloading = true
      void (async () => {
        for (let next: string | undefined = reason; next !== undefined && !stopping; ) {
          await reloadFromFile(service, origin, logger, next)
          next = again
          again = undefined
        }
        reloading = false
      })()
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
    process.on('SIGHUP', () => reload('SIGHUP received'))
    if (watch && file !== undefined)
      void watchConfigFile(file, () => reload('config file changed')).then(
        (unwatch) => {
          logger.info({ file }, 'watching the config file for changes')
          stopWatching = unwatch
        },
        (err: unknown) => logger.error({ err, file }, 'cannot watch the config file'),
      )
  })
}

function adaptLoadBalancer(lb: LoadBalancer): Service {
  return {
    start: () => lb.start(),
    close: () => lb.close(),
    reload: (config) => lb.reload(config, { validated: true, source: 'file' }),
    reopenLogs: () => lb.reopenLogs(),
    addresses: () => lb.addresses(),
    adminAddress: () => lb.adminAddress(),
    metrics: lb.metrics,
    events: lb.events,
    generation: () => lb.steering.generation,
  }
}

function adaptSupervisor(supervisor: Supervisor): Service {
  return {
    start: () => supervisor.start(),
    close: () => supervisor.close(),
    reload: (config) => supervisor.reload(config, 'file'),
    reopenLogs: () => supervisor.reopenLogs(),
    addresses: () => supervisor.addresses(),
    adminAddress: () => supervisor.adminAddress(),
    metrics: supervisor.metrics,
    events: supervisor.events,
    generation: () => supervisor.steering.generation,
  }
}

async function reloadFromFile(service: Service, origin: Origin, logger: Logger, reason: string): Promise<void> {
  if (origin.kind !== 'file') {
    logger.warn(`${reason}, but there is no config file to reload (quick mode)`)
    return
  }
  const file = origin.file
  logger.info({ file }, `${reason}: reloading configuration`)
  const result = await loadConfigFile(file)
  if (!result.ok) {
    service.metrics.reloads.labels('rejected').inc()
    service.events.emit({
      type: 'reload',
      result: 'rejected',
      source: 'file',
      generation: service.generation(),
      message: `reload rejected: ${result.issues.map(formatIssue).join('; ')}`,
    })
    logger.error(
      { file, issues: result.issues.map(formatIssue) },
      `reload rejected, keeping the running configuration: ${result.issues.map(formatIssue).join('; ')}`,
    )
    return
  }
  try {
    await service.reload(result.config)
  } catch (err) {
    const why = isSwitchyardError(err) ? describeListenError(err, result.config, origin) : (err as Error).message
    logger.error({ err, file }, `reload failed, keeping the running configuration: ${why}`)
  }
}

/**
 * A listen failure (`cannot listen on 127.0.0.1:8080: address already in use`) told in the user's terms:
 * `--listen 127.0.0.1:8080: address already in use` for flags, `FILE: listener "web" (listen:
 * 127.0.0.1:8080): …` or `FILE: admin.listen 127.0.0.1:9901: …` for a file. Other errors keep their message.
 */
function describeListenError(err: SwitchyardError, config: RuntimeConfig, origin: Origin): string {
  if (err.code !== 'SWY_LISTEN_IN_USE' && err.code !== 'SWY_LISTEN_FAILED') return err.message
  const flags = origin.kind === 'flags'
  const targets = [
    ...config.listeners.map((l) => ({
      prefix: `cannot listen on ${formatAddress(l.host, l.port)}: `,
      flag: '--listen',
      what: flags ? `--listen ${l.listen}` : `listener "${l.name}" (listen: ${l.listen})`,
    })),
    ...(config.admin
      ? [
          {
            prefix: `cannot listen on ${formatAddress(config.admin.host, config.admin.port)} (admin): `,
            flag: '--admin',
            what: flags ? `--admin ${config.admin.listen}` : `admin.listen ${config.admin.listen}`,
          },
        ]
      : []),
  ]
  const hit = targets.find((t) => err.message.startsWith(t.prefix))
  if (!hit) return err.message
  const reason = err.message.slice(hit.prefix.length)
  if (!flags) return `${origin.file}: ${hit.what}: ${reason}`
  const fallback = origin.defaults.includes(hit.flag)
    ? ` (the demo's default; choose another with ${hit.flag} ADDR)`
    : ''
  return `${hit.what}: ${reason}${fallback}`
}

function flush(logger: Logger): Promise<void> {
  return new Promise((resolve) => logger.flush(() => resolve()))
}
