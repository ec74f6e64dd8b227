// Every child process the bench starts goes through one `Children` set, so that one call can stop
// them all by PID, on success, error or Ctrl-C alike. Nothing here signals a process we did not start.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { closeSync, openSync } from 'node:fs'
import net from 'node:net'
import type { Readable } from 'node:stream'
import { procStartTime, treePids } from './system.js'

/** How long a child gets to exit after SIGTERM before SIGKILL. */
const STOP_GRACE_MS = 3_000
/** Bytes of stderr kept per child, for error messages. */
const STDERR_TAIL_BYTES = 4_096

export interface Child {
  readonly name: string
  readonly pid: number
  /** The child's stdout when started with `stdout: 'pipe'`; otherwise null (it goes to /dev/null). */
  readonly stdout: Readable | null
  /** The last few KiB the child wrote to stderr. */
  stderrTail(): string
}

export interface StartOptions {
  /** Added to this process's environment. */
  readonly env?: Readonly<Record<string, string>>
  /**
   * 'ignore' (default) sends stdout to /dev/null; 'pipe' hands it to the caller as `Child.stdout`; a
   * file appends it there (created if need be).
   */
  readonly stdout?: 'ignore' | 'pipe' | { readonly file: string }
}

export interface RunResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly stdout: string
  readonly stderr: string
}

export class Children {
  readonly #live = new Map<number, ChildProcess>()
  readonly #cwd: string

  constructor(cwd: string) {
    this.#cwd = cwd
  }

  /** PIDs of the children still running. */
  pids(): number[] {
    return [...this.#live.keys()]
  }

  /** Starts a long-running child, by default with stdout to /dev/null. Throws if it cannot be spawned. */
  start(name: string, file: string, args: readonly string[], options: StartOptions = {}): Child {
    const out = options.stdout ?? 'ignore'
    // The child gets its own descriptor of the file; ours is closed once it has been handed over.
    const fd = typeof out === 'object' ? openSync(out.file, 'a') : undefined
    let proc: ChildProcess
    try {
      proc = spawn(file, args, {
        cwd: this.#cwd,
        stdio: ['ignore', fd ?? (out as 'ignore' | 'pipe'), 'pipe'],
        env: options.env === undefined ? process.env : { ...process.env, ...options.env },
      })
    } finally {
      if (fd !== undefined) closeSync(fd)
    }
    const pid = this.#track(proc, name)
    let tail = ''
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      tail = (tail + chunk).slice(-STDERR_TAIL_BYTES)
    })
    return { name, pid, stdout: proc.stdout, stderrTail: () => tail }
  }

  /** True while `child` has not exited. */
  alive(child: Child): boolean {
    return this.#live.has(child.pid)
  }

  /** Runs a child to completion and collects its output. Aborting `signal` kills it (SIGTERM). */
  async run(file: string, args: readonly string[], signal: AbortSignal): Promise<RunResult> {
    const proc = spawn(file, args, { cwd: this.#cwd, stdio: ['ignore', 'pipe', 'pipe'], signal })
    this.#track(proc, file)
    let stdout = ''
    let stderr = ''
    proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk
    })
    proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
    })
    const [code, exitSignal] = (await once(proc, 'close')) as [number | null, NodeJS.Signals | null]
    signal.throwIfAborted()
    return { code, signal: exitSignal, stdout, stderr }
  }

  /** Resolves once `port` on 127.0.0.1 accepts a connection; rejects if `child` exits first or time runs out. */
  async waitForPort(child: Child, port: number, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      signal.throwIfAborted()
      if (!this.#live.has(child.pid)) {
        throw new Error(`${child.name} exited before listening on ${port}:\n${child.stderrTail()}`)
      }
      if (await canConnect(port)) return
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    throw new Error(`${child.name} did not listen on ${port} within ${timeoutMs} ms:\n${child.stderrTail()}`)
  }

  /** Stops one child by PID: SIGTERM, then SIGKILL after a grace period. No-op if it has exited. */
  async stop(child: Child): Promise<void> {
    const proc = this.#live.get(child.pid)
    if (proc !== undefined) await stopProc(proc)
  }

  /** Stops every live child by PID: SIGTERM, then SIGKILL after a grace period. Never throws. */
  async stopAll(): Promise<void> {
    await Promise.all([...this.#live.values()].map(stopProc))
  }

  /** Last resort from a synchronous 'exit' handler: SIGKILL whatever is still live. */
  killAllNow(): void {
    for (const proc of this.#live.values()) proc.kill('SIGKILL')
  }

  #track(proc: ChildProcess, name: string): number {
    // A failed spawn reports 'error' on the next tick; without a listener that would crash the run.
    proc.on('error', () => {})
    const pid = proc.pid
    if (pid === undefined) throw new Error(`could not start ${name} (${proc.spawnfile})`)
    this.#live.set(pid, proc)
    proc.once('exit', () => this.#live.delete(pid))
    return pid
  }
}

/**
 * SIGTERM, SIGKILL after the grace period; then SIGKILL any descendant that outlived it (a master
 * killed hard leaves its workers behind). Descendants are named by PID and start time, taken before
 * the first signal, so a reused PID is never hit.
 */
async function stopProc(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) return
  const descendants = treePids(proc.pid)
    .slice(1)
    .map((pid) => ({ pid, start: procStartTime(pid) }))
  const exited = once(proc, 'exit').catch(() => undefined)
  proc.kill('SIGTERM')
  const timer = setTimeout(() => proc.kill('SIGKILL'), STOP_GRACE_MS)
  await exited
  clearTimeout(timer)
  for (const d of descendants) {
    if (d.start === undefined || procStartTime(d.pid) !== d.start) continue
    try {
      process.kill(d.pid, 'SIGKILL')
    } catch {
      // Exited between the check and the signal.
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Ports the OS reports free on 127.0.0.1, all distinct: listen on port 0, read it back, close. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer())
  try {
    return await Promise.all(
      servers.map(async (server) => {
        server.listen(0, '127.0.0.1')
        await once(server, 'listening')
        return (server.address() as net.AddressInfo).port
      }),
    )
  } finally {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  }
}
