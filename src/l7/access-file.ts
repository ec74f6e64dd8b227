/**
 * A file of the access log's own (`logging.accessLog.file`), opened for appending (O_APPEND). Every
 * write lands at the end of the file whoever else appends to it, and each batch of the access log is
 * one write of whole lines, so the workers of a multi-process instance share one file, each with its
 * own descriptor, without mixing their lines (local file systems serialise appends; NFS does not).
 * Writes are synchronous, as for stdout to a file (core/logger.ts): a file never waits on a reader.
 *
 * `reopen()` (SIGUSR1, after logrotate renamed the file) opens the path afresh and only then closes
 * the old descriptor; the caller flushes what is batched first, so those lines land in the renamed
 * file and the next ones in the new file. A write that fails (disk full, file system gone) reports
 * the state change once, through `onTrouble`, and once more when writes succeed again.
 */
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs'
import type { AccessSink } from './access-log.js'

/** The largest single write: as for stdout to a file (core/logger.ts). */
const FILE_WRITE_BYTES = 16 * 1024

export class AccessFile implements AccessSink {
  /** Absolute path. */
  readonly path: string
  readonly maxWrite = FILE_WRITE_BYTES
  #fd: number | undefined
  #failing = false
  readonly #onTrouble: (err: Error | undefined) => void

  /** Opens (creates) `path` for appending; throws when it cannot. */
  constructor(path: string, onTrouble: (err: Error | undefined) => void) {
    this.path = path
    this.#onTrouble = onTrouble
    this.#fd = openSync(path, 'a', 0o644)
  }

  /** The open descriptor; undefined once closed (writes then open the file for each batch). */
  get fd(): number | undefined {
    return this.#fd
  }

  /** A batch the access log could not write to the descriptor itself, or one written after `close()`. */
  write(text: string): void {
    try {
      if (this.#fd === undefined) appendFileSync(this.path, text)
      else writeSync(this.#fd, text)
      this.written()
    } catch (err) {
      if (!this.#failing) {
        this.#failing = true
        this.#onTrouble(err as Error)
      }
    }
  }

  /** A batch was written whole: a failure reported before is over. */
  written(): void {
    if (this.#failing) {
      this.#failing = false
      this.#onTrouble(undefined)
    }
  }

  /** Opens the path again (a new file if it was renamed) and closes the old descriptor. Throws when the path cannot be opened; the old descriptor stays in use then. */
  reopen(): void {
    const fd = openSync(this.path, 'a', 0o644)
    const old = this.#fd
    this.#fd = fd
    if (old !== undefined) closeSync(old)
  }

  close(): void {
    const fd = this.#fd
    this.#fd = undefined
    if (fd !== undefined) closeSync(fd)
  }
}
