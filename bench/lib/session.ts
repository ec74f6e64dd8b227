// The frame an end-to-end bench script (bench/run.ts, bench/idle.ts) runs in: one abort signal that
// SIGINT and SIGTERM fire, one `Children` set (killed at exit should the script die before it stops
// them), a temporary directory, and the backends (bench/lib/backends.ts) on free ports. `close()` undoes
// all of it, once.
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { type BackendKind, type Backends, checkBodies, startBackends } from './backends.js'
import { Children, freePorts } from './children.js'

export class BenchSession {
  /** Every child the script starts; all stopped by `close()`. */
  readonly children: Children
  /** Under the OS temp dir, world-readable: nginx's workers drop root privileges and must still reach their files here. */
  readonly tmpDir: string
  readonly #rootDir: string
  readonly #aborter = new AbortController()
  readonly #onSignal = (): void => this.#aborter.abort(new Error('interrupted'))
  readonly #killOnExit = (): void => this.children.killAllNow()
  #closed = false

  /** Children run in `rootDir`; the temporary directory's name starts with `tmpPrefix`. */
  constructor(rootDir: string, tmpPrefix: string) {
    this.#rootDir = rootDir
    process.on('SIGINT', this.#onSignal)
    process.on('SIGTERM', this.#onSignal)
    this.children = new Children(rootDir)
    process.on('exit', this.#killOnExit)
    this.tmpDir = mkdtempSync(path.join(os.tmpdir(), tmpPrefix))
    chmodSync(this.tmpDir, 0o755)
  }

  /** Aborted (reason: `interrupted`) on SIGINT or SIGTERM. */
  get signal(): AbortSignal {
    return this.#aborter.signal
  }

  /**
   * Starts `count` backends on free ports under `tmpDir/backends` (nginx or Node, as `prefer` says) and
   * resolves once each answers every body in bench/lib/bodies.ts; throws otherwise.
   */
  async startBackends(count: number, prefer: BackendKind | 'auto'): Promise<Backends> {
    const ports = await freePorts(count)
    const backends = await startBackends(
      this.children,
      this.#rootDir,
      path.join(this.tmpDir, 'backends'),
      ports,
      prefer,
      this.signal,
    )
    await checkBodies(ports, this.signal)
    return backends
  }

  /** Stops every child, removes the temporary directory and the process handlers. Later calls do nothing. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.children.stopAll()
    rmSync(this.tmpDir, { recursive: true, force: true })
    process.off('exit', this.#killOnExit)
    process.off('SIGINT', this.#onSignal)
    process.off('SIGTERM', this.#onSignal)
  }
}
