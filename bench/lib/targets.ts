// Starting a case's candidates: checking what each needs is installed, handing out a port and a
// private directory, writing its files, starting it, waiting for its port and checking that the
// socket listening there belongs to the child we started. A peer that is missing or fails to start
// is skipped with a reason; Switchyard failing to start is an error.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Engine } from '../../src/config/schema.js'
import {
  baseProblem,
  type Candidate,
  type Family,
  type LaunchContext,
  type Requirement,
  type Scheme,
} from '../candidates.js'
import type { Child, Children } from './children.js'
import type { Entry } from './expand.js'
import { streamSupport } from './nginx.js'
import { type PortOwner, portOwner } from './system.js'
import { findBinary, packageVersion, type Tool } from './tools.js'

/** How long a child gets to start accepting connections. */
const START_TIMEOUT_MS = 15_000

/** A candidate up and listening. */
export interface Target {
  /** Its name in this run (`NAME@nodeNN` in a run with several Nodes). */
  readonly name: string
  /** The candidate's name in bench/candidates.ts. */
  readonly candidate: string
  /** The label of the Node it runs under (`node24`); undefined for candidates that are not Node programs. */
  readonly node: string | undefined
  /** Switchyard's HTTP/1.1 engine, for the candidates the engine table compares. */
  readonly engine: Engine | undefined
  readonly family: Family
  readonly port: number
  /** How the load tool reaches it: `direct` is always plain HTTP (the backends speak nothing else). */
  readonly scheme: Scheme
  /** The process whose CPU time is measured; undefined for `direct`. */
  readonly child: Child | undefined
  /** Its private directory, removed once the case is over; undefined for `direct`. */
  readonly workDir: string | undefined
  /** The file its stdout (Switchyard's access log) goes to, when not /dev/null. */
  readonly stdoutFile: string | undefined
}

export type StartOutcome =
  | { readonly kind: 'started'; readonly target: Target; readonly note: string | undefined }
  | { readonly kind: 'skipped'; readonly reason: string }

/** Why `req` is not met under `rootDir` (and `baseDir`, from `--base`), or undefined when it is. */
export function missing(rootDir: string, baseDir: string | undefined, req: Requirement): string | undefined {
  switch (req.kind) {
    case 'binary':
      return findBinary(req.name) === undefined ? `${req.name} is not installed` : undefined
    case 'package':
      return packageVersion(rootDir, req.name) === undefined ? `npm package ${req.name} is not installed` : undefined
    case 'nginx-stream': {
      const nginx = findBinary('nginx')
      // Without nginx at all, its `binary` requirement says so; one reason is enough.
      if (nginx === undefined) return undefined
      const support = streamSupport(nginx)
      return support.kind === 'missing' ? support.reason : undefined
    }
    case 'base-build':
      return baseProblem(baseDir)
    default: {
      const unreachable: never = req
      throw new Error(`unknown requirement ${JSON.stringify(unreachable)}`)
    }
  }
}

export interface StartContext {
  readonly children: Children
  readonly rootDir: string
  /** The built checkout `switchyard-base` runs (`--base DIR`); undefined without `--base`. */
  readonly baseDir: string | undefined
  /** Where each candidate gets its private directory. */
  readonly tmpDir: string
  readonly backendPorts: readonly number[]
  /** The process serving the backends, for checking who listens on `direct`'s port. */
  readonly backendChild: Child
  readonly signal: AbortSignal
}

export async function startCandidate(entry: Entry, port: number, sc: StartContext): Promise<StartOutcome> {
  const c = entry.candidate
  switch (c.kind) {
    case 'direct': {
      const backendPort = sc.backendPorts[0]!
      return {
        kind: 'started',
        target: {
          name: entry.name,
          candidate: c.name,
          node: undefined,
          engine: undefined,
          family: c.family,
          port: backendPort,
          scheme: 'http',
          child: undefined,
          workDir: undefined,
          stdoutFile: undefined,
        },
        note: ownerNote(entry.name, portOwner(sc.backendChild.pid, backendPort), backendPort),
      }
    }
    case 'process':
      return startProcess(entry, c, port, sc)
    default: {
      const unreachable: never = c
      throw new Error(`unknown candidate ${JSON.stringify(unreachable)}`)
    }
  }
}

async function startProcess(
  entry: Entry,
  c: Extract<Candidate, { kind: 'process' }>,
  port: number,
  sc: StartContext,
): Promise<StartOutcome> {
  const name = entry.name
  const gaps = c.requires.flatMap((req) => missing(sc.rootDir, sc.baseDir, req) ?? [])
  if (gaps.length > 0) return { kind: 'skipped', reason: gaps.join('; ') }
  const workDir = mkdtempSync(path.join(sc.tmpDir, `${name.replace(/[^\w.-]/g, '_')}-`))
  const ctx: LaunchContext = {
    port,
    backendPorts: sc.backendPorts,
    rootDir: sc.rootDir,
    baseDir: sc.baseDir,
    workDir,
    node: entry.node?.file ?? process.execPath,
    binary: (tool: Tool) => {
      const file = findBinary(tool)
      if (file === undefined) throw new Error(`${name} needs ${tool}, which is not installed`)
      return file
    },
  }
  const cmd = c.launch(ctx)
  for (const dir of cmd.dirs ?? []) mkdirSync(path.join(workDir, dir), { recursive: true })
  for (const [name, content] of Object.entries(cmd.files ?? {})) writeFileSync(path.join(workDir, name), content)
  const stdoutFile = cmd.stdoutFile === undefined ? undefined : path.join(workDir, cmd.stdoutFile)
  const child = sc.children.start(name, cmd.file, cmd.args, {
    ...(cmd.env === undefined ? {} : { env: cmd.env }),
    ...(stdoutFile === undefined ? {} : { stdout: { file: stdoutFile } }),
  })
  let owner: PortOwner
  try {
    await sc.children.waitForPort(child, port, START_TIMEOUT_MS, sc.signal)
    owner = portOwner(child.pid, port)
    if (owner.kind === 'not-ours') throw new Error(`another process, not ${name}, is listening on ${port}`)
  } catch (err) {
    await sc.children.stop(child)
    sc.signal.throwIfAborted()
    if (c.family === 'switchyard') throw err
    return {
      kind: 'skipped',
      reason: `failed to start: ${(err as Error).message.trim().split('\n').slice(0, 4).join(' / ')}`,
    }
  }
  return {
    kind: 'started',
    target: {
      name,
      candidate: c.name,
      node: entry.node?.label,
      engine: entry.engine,
      family: c.family,
      port,
      scheme: c.scheme ?? 'http',
      child,
      workDir,
      stdoutFile,
    },
    note: joinNotes(cmd.note === undefined ? undefined : `${name}: ${cmd.note}`, ownerNote(name, owner, port)),
  }
}

/** The notes that are there, as one line; undefined when neither is. */
function joinNotes(a: string | undefined, b: string | undefined): string | undefined {
  return a === undefined ? b : b === undefined ? a : `${a}; ${b}`
}

/** A note when we could not confirm that the candidate's own process holds the socket on `port`. */
function ownerNote(name: string, owner: PortOwner, port: number): string | undefined {
  switch (owner.kind) {
    case 'ours':
      return undefined
    case 'not-ours':
      return `${name}: port ${port} is held by a process outside the bench's tree`
    case 'unknown':
      return `${name}: could not confirm who listens on port ${port} (${owner.reason})`
    default: {
      const unreachable: never = owner
      throw new Error(`unknown owner ${JSON.stringify(unreachable)}`)
    }
  }
}
