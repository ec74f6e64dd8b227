/**
 * A worker process: one event loop serving the listeners of the config the supervisor sends it. It
 * holds a whole data plane (pools, balancers, upstream connections), has no admin API of its own, and
 * answers the supervisor's scrape and status requests. It drains and exits on `stop`, on SIGTERM or
 * SIGINT, and when the supervisor goes away (IPC disconnect).
 */
import { isSwitchyardError } from '../core/errors.js'
import { createLogger, type Logger } from '../core/logger.js'
import type { FromWorker, ToWorker } from './ipc.js'
import { LoadBalancer } from './load-balancer.js'

export function runWorker(): void {
  let lb: LoadBalancer | undefined
  let logger: Logger | undefined
  let stopping = false
  const send = (msg: FromWorker): void => {
    if (process.connected) process.send?.(msg)
  }

  const stop = (gracePeriodMs?: number): void => {
    if (stopping) return
    stopping = true
    const closed = lb ? lb.close(gracePeriodMs === undefined ? {} : { gracePeriodMs }) : Promise.resolve()
    closed
      .catch((err: unknown) => logger?.error({ err }, 'worker shutdown failed'))
      .finally(() => {
        if (logger) logger.flush(() => process.exit(0))
        else process.exit(0)
      })
  }

  const onMessage = async (msg: ToWorker): Promise<void> => {
    switch (msg.t) {
      case 'start': {
        logger = createLogger({ level: msg.level }).child({ worker: process.pid })
        // Health checks run once for the instance, in the supervisor, which sends their states.
        lb = new LoadBalancer({ ...msg.config, admin: undefined }, { logger, externalHealth: true })
        try {
          await lb.start()
          send({ t: 'ready', addresses: lb.addresses() })
        } catch (err) {
          const code = isSwitchyardError(err) ? err.code : 'SWY_INTERNAL'
          send({ t: 'failed', code, message: (err as Error).message })
          logger.flush(() => process.exit(1))
        }
        return
      }
      case 'reload':
        try {
          if (!lb) throw new Error('worker not started')
          await lb.reload({ ...msg.config, admin: undefined }, { validated: true })
          send({ t: 'reply', id: msg.id, ok: true, value: null })
        } catch (err) {
          send({ t: 'reply', id: msg.id, ok: false, message: (err as Error).message })
        }
        return
      case 'scrape':
        send({ t: 'reply', id: msg.id, ok: true, value: lb ? await lb.metrics.registry.getMetricsAsJSON() : [] })
        return
      case 'status':
        if (lb) send({ t: 'reply', id: msg.id, ok: true, value: lb.status() })
        else send({ t: 'reply', id: msg.id, ok: false, message: 'worker not started' })
        return
      case 'health':
        lb?.applyHealth(msg.pool, msg.down)
        return
      case 'stop':
        return stop(msg.gracePeriodMs)
      default: {
        const unknown: never = msg
        throw new Error(`unknown message ${JSON.stringify(unknown)}`)
      }
    }
  }

  process.on('message', (msg: ToWorker) => void onMessage(msg))
  send({ t: 'booted' })
  process.on('disconnect', () => stop())
  process.on('SIGTERM', () => stop())
  process.on('SIGINT', () => stop())
  // The supervisor reloads; a hang-up sent to the whole process group must not kill a worker.
  process.on('SIGHUP', () => {})
}
