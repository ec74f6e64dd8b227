/**
 * Runs the real `switchyard` CLI as a child process (from source, through tsx), captures its output,
 * and waits for log lines. Used where the test needs signals or the process's own memory figures.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

/**
 * A temporary directory for config files, made before the calling file's tests run (call this at the
 * top level of a test file), and the function that writes a file into it and returns its path.
 */
export function configFiles(prefix: string): (name: string, text: string) => Promise<string> {
  let dir: string | undefined
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), prefix))
  })
  return async (name, text) => {
    if (dir === undefined) throw new Error('configFiles: used before its directory was made')
    const p = join(dir, name)
    await writeFile(p, text)
    return p
  }
}

const ENTRY = fileURLToPath(new URL('./cli-entry.ts', import.meta.url))
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

export interface CliProcess {
  readonly child: ChildProcess
  readonly pid: number
  stdout(): string
  stderr(): string
  /** Resolves with the first parsed JSON log line that satisfies `pred`. */
  waitForLog(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>
  /** Resolves with the exit code once the process ends. */
  exited(): Promise<number | null>
  kill(signal?: NodeJS.Signals): void
}

export function runCli(args: readonly string[], env: NodeJS.ProcessEnv = {}): CliProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  const waiters: { pred: (l: Record<string, unknown>) => boolean; resolve: (l: Record<string, unknown>) => void }[] = []
  const seen: Record<string, unknown>[] = []
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk
    partial += chunk
    const lines = partial.split('\n')
    partial = lines.pop() ?? ''
    for (const text of lines) {
      if (!text.startsWith('{')) continue
      let line: Record<string, unknown>
      try {
        line = JSON.parse(text) as Record<string, unknown>
      } catch {
        continue
      }
      seen.push(line)
      for (const w of [...waiters]) {
        if (w.pred(line)) {
          waiters.splice(waiters.indexOf(w), 1)
          w.resolve(line)
        }
      }
    }
  })
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    err += chunk
  })
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return {
    child,
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    waitForLog(pred, timeoutMs = 15_000) {
      const hit = seen.find(pred)
      if (hit) return Promise.resolve(hit)
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no matching log line within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`)),
          timeoutMs,
        )
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer)
            resolve(l)
          },
        })
        void exit.then(() => {
          clearTimeout(timer)
          reject(new Error(`process exited before the log line appeared\nstdout:\n${out}\nstderr:\n${err}`))
        })
      })
    },
    exited: () => exit,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
  }
}

/** Runs the CLI to completion and returns its code and output. */
export async function runCliToEnd(args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const p = runCli(args, env)
  const code = await p.exited()
  return { code, stdout: p.stdout(), stderr: p.stderr() }
}

/** Resident set size of a process in bytes, from /proc. */
export async function rssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  if (!m) throw new Error('no VmRSS')
  return Number(m[1]) * 1024
}

/** POSTs 5000 bytes with `Expect: 100-continue` through curl; stderr holds curl's verbose trace. */
export function curlExpectContinue(url: string) {
  return promisify(execFile)('curl', [
    '-sS',
    '-v',
    '--max-time',
    '10',
    '-H',
    'Expect: 100-continue',
    '--data-binary',
    'x'.repeat(5000),
    url,
  ])
}
