/**
 * A worker process: one event loop serving the listeners of the config the supervisor sends it. It
 * holds a whole data plane (pools, balancers, upstream connections), has no admin API of its own, and
 * answers the supervisor's scrape and status requests. It drains and exits on `stop`, on SIGTERM or
 * SIGINT, and when the supervisor goes away (IPC disconnect).
 *
 * A control message that fails never takes the worker down: a message with an `id` is answered with
 * `ok: false` and the error's message, and every failure is logged at `error` level.
 */
import { isSwitchyardError } from '../core/errors.js'
import { createLogger, type Logger } from '../core/logger.js'
import { type FromWorker, type ToWorker, WORKER_INDEX_ENV } from './ipc.js'
import { LoadBalancer } from './load-balancer.js'

export function runWorker(): void {
  /** The supervisor's slot number for this process (0, 1, ...): the `worker` field of every log line. */
  const index = Number(process.env[WORKER_INDEX_ENV] ?? 0)
  const bindings = { worker: index, pid: process.pid }
  let lb: LoadBalancer | undefined
  /** Replaced by one at the configured level on `start`; this one (synchronous) logs failures before it. */
  let logger: Logger = createLogger({ sync: true }).child(bindings)
  let stopping = false
  const send = (msg: FromWorker): void => {
    if (process.connected) process.send?.(msg)
  }

  const stop = (gracePeriodMs?: number): void => {
    if (stopping) return
    stopping = true
    const closed = lb ? lb.close(gracePeriodMs === undefined ? {} : { gracePeriodMs }) : Promise.resolve()
    closed
      .catch((err: unknown) => logger.error({ err }, 'worker shutdown failed'))
      .finally(() => logger.flush(() => process.exit(0)))
  }

  const onMessage = async (msg: ToWorker): Promise<void> => {
    switch (msg.t) {
      case 'start': {
        if (lb) throw new Error('worker already started')
        try {
          logger = createLogger({ level: msg.level }).child(bindings)
          // Health checks run once for the instance, in the supervisor, which sends their states.
          lb = new LoadBalancer(
            { ...msg.config, admin: undefined },
            { logger, externalHealth: true, externalTls: true },
          )
          await lb.start()
          // Ejections are per worker (each sees its own traffic): the supervisor's log hears of them.
          lb.events.subscribe((event) => {
            if (event.type === 'ejection') {
              const { id: _id, time: _time, ...body } = event
              send({ t: 'event', event: { ...body, worker: index } })
            }
          })
          send({ t: 'ready', addresses: lb.addresses() })
        } catch (err) {
          const code = isSwitchyardError(err) ? err.code : 'SWY_INTERNAL'
          send({ t: 'failed', code, message: (err as Error).message })
          logger.flush(() => process.exit(1))
        }
        return
      }
      case 'reload':
        if (!lb) throw new Error('worker not started')
        await lb.reload({ ...msg.config, admin: undefined }, { validated: true })
        send({ t: 'reply', id: msg.id, ok: true, value: null })
        return
      case 'scrape':
        // The process metrics carry the worker's slot: they are per process, not summed (metrics/process.ts).
        send({ t: 'reply', id: msg.id, ok: true, value: lb ? await lb.metrics.json({ worker: String(index) }) : [] })
        return
      case 'status':
        if (!lb) throw new Error('worker not started')
        send({ t: 'reply', id: msg.id, ok: true, value: lb.status() })
        return
      case 'pools':
        if (!lb) throw new Error('worker not started')
        send({ t: 'reply', id: msg.id, ok: true, value: lb.poolReports() })
        return
      case 'listeners':
        if (!lb) throw new Error('worker not started')
        send({ t: 'reply', id: msg.id, ok: true, value: lb.listenerReports() })
        return
      case 'health':
        lb?.applyHealth(msg.pool, msg.down)
        return
      case 'reopen':
        lb?.reopenLogs()
        return
      case 'stop':
        return stop(msg.gracePeriodMs)
      default: {
        const unknown: never = msg
        throw new Error(`unknown message type ${JSON.stringify((unknown as { t?: unknown }).t)}`)
      }
    }
  }

  /** Runs one message; a failure is answered (when the message expects an answer) and logged. */
  const handle = (msg: ToWorker): void => {
    onMessage(msg).catch((err: unknown) => {
      const message = err instanceof Error ? err.message : String(err)
      const id = (msg as { id?: unknown }).id
      if (typeof id === 'number') send({ t: 'reply', id, ok: false, message })
      logger.error({ err, control: (msg as { t?: unknown }).t }, `control message failed: ${message}`)
    })
  }

  process.on('message', handle)
  send({ t: 'booted' })
  process.on('disconnect', () => stop())
  process.on('SIGTERM', () => stop())
  process.on('SIGINT', () => stop())
  // The supervisor reloads; a hang-up sent to the whole process group must not kill a worker.
  process.on('SIGHUP', () => {})
  // Reopens the log files as the supervisor's `reopen` does (a SIGUSR1 sent to every process, say).
  // Without a handler, Node would start its inspector on SIGUSR1.
  process.on('SIGUSR1', () => lb?.reopenLogs())
}
