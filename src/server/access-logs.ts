/**
 * Where a load balancer's access lines go, per config generation (`logging.accessLog`): the logger's
 * destination (stdout), or a file of the log's own. Files stay open across reloads that keep them, are
 * reopened together on `reopen()` (SIGUSR1, after logrotate), and closed once a committed generation
 * no longer names them; a line that an older generation's request writes after that is appended by
 * opening the file for it (access-file.ts). Never on the request path, except through the writers it
 * hands out.
 */

import type { AccessLogSettings } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { AccessFile } from '../l7/access-file.js'
import { type AccessFormat, AccessLog } from '../l7/access-log.js'

/** What a generation's snapshots write access lines with (listeners/snapshot.ts). */
export interface AccessOutput {
  /** The writer; undefined when nothing would be written (a logger that drops `warn` lines). */
  readonly log: AccessLog | undefined
  /** One line per request, not only for those that failed on the server side. */
  readonly info: boolean
  /** Share of successful requests logged. */
  readonly sample: number
}

interface FileEntry {
  readonly file: AccessFile
  readonly logs: Map<AccessFormat, AccessLog>
}

/**
 * The output for `settings` on `logger`'s destination alone (no file): the JSON or text lines the
 * process log carries. What snapshots use when no AccessLogs is given (the config test kit).
 */
export function processLogOutput(logger: Logger, settings: AccessLogSettings): AccessOutput {
  const format = settings.enabled ? settings.format : 'json'
  return {
    log: AccessLog.of(logger, format),
    info: settings.enabled && logger.isLevelEnabled('info'),
    sample: settings.sample,
  }
}

export class AccessLogs {
  readonly #logger: Logger
  readonly #files = new Map<string, FileEntry>()
  /** Writers of closed files: requests of an older generation may still end on them. */
  readonly #retired = new Set<AccessLog>()

  constructor(logger: Logger) {
    this.#logger = logger
  }

  /**
   * The output for a generation with `settings`, opening its file if no generation had it open. Throws
   * SWY_CONFIG_INVALID, naming the file and why, when it cannot be opened.
   */
  use(settings: AccessLogSettings): AccessOutput {
    const path = settings.file
    if (!settings.enabled || path === undefined) return processLogOutput(this.#logger, settings)
    let entry = this.#files.get(path)
    if (entry === undefined) {
      let file: AccessFile
      try {
        file = new AccessFile(path, (err) => this.#trouble(path, err))
      } catch (err) {
        throw new SwitchyardError(
          'SWY_CONFIG_INVALID',
          `logging.accessLog.file: cannot open ${path}: ${(err as Error).message}`,
          { cause: err },
        )
      }
      entry = { file, logs: new Map() }
      this.#files.set(path, entry)
    }
    let log = entry.logs.get(settings.format)
    if (log === undefined) {
      log = AccessLog.on(entry.file, this.#logger, settings.format)
      entry.logs.set(settings.format, log)
    }
    return { log, info: true, sample: settings.sample }
  }

  /** The generation with `settings` serves: files it does not name are flushed and closed. */
  retain(settings: AccessLogSettings): void {
    const keep = settings.enabled ? settings.file : undefined
    for (const [path, entry] of this.#files) {
      if (path === keep) continue
      for (const log of entry.logs.values()) {
        log.flush()
        this.#retired.add(log)
      }
      entry.file.close()
      this.#files.delete(path)
    }
  }

  /**
   * Reopens every file (SIGUSR1): what is batched goes to the file as it was, then the path is opened
   * afresh. Logs each file reopened, or why it could not be (its old descriptor stays in use).
   */
  reopen(): void {
    for (const [path, entry] of this.#files) {
      for (const log of entry.logs.values()) log.flush()
      try {
        entry.file.reopen()
        this.#logger.info({ file: path }, `access log ${path} reopened`)
      } catch (err) {
        this.#logger.error({ err, file: path }, `cannot reopen access log ${path}: ${(err as Error).message}`)
      }
    }
  }

  /** Hands every pending line over (to stdout, and to the files). */
  flush(): void {
    AccessLog.flushAll(this.#logger)
    for (const entry of this.#files.values()) for (const log of entry.logs.values()) log.flush()
    for (const log of this.#retired) log.flush()
  }

  /** Flushes everything and closes the files (the load balancer has stopped). */
  close(): void {
    this.flush()
    for (const entry of this.#files.values()) entry.file.close()
    this.#files.clear()
  }

  #trouble(path: string, err: Error | undefined): void {
    if (err === undefined) this.#logger.info({ file: path }, `access log ${path} is written again`)
    else this.#logger.error({ err, file: path }, `cannot write access log ${path}: ${err.message}; lines are lost`)
  }
}
