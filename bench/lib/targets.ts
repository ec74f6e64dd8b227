// Starting a case's candidates: checking what each needs is installed, handing out a port and a
// private directory, writing its files, starting it, waiting for its port and checking that the
// socket listening there belongs to the child we started. A peer that is missing or fails to start
// is skipped with a reason; Switchyard failing to start is an error.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import {
  baseProblem,
  type Candidate,
  type Family,
  type LaunchContext,
  type Requirement,
  type Scheme,
} from '../candidates.js'
import type { Child, Children } from './children.js'
import { streamSupport } from './nginx.js'
import { type PortOwner, portOwner } from './system.js'
import { findBinary, packageVersion, type Tool } from './tools.js'

/** How long a child gets to start accepting connections. */
const START_TIMEOUT_MS = 15_000

/** A candidate up and listening. */
export interface Target {
  readonly name: string
  readonly family: Family
  readonly port: number
  /** How the load tool reaches it: `direct` is always plain HTTP (the backends speak nothing else). */
  readonly scheme: Scheme
  /** The process whose CPU time is measured; undefined for `direct`. */
  readonly child: Child | undefined
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

export async function startCandidate(c: Candidate, port: number, sc: StartContext): Promise<StartOutcome> {
  switch (c.kind) {
    case 'direct': {
      const backendPort = sc.backendPorts[0]!
      return {
        kind: 'started',
        target: { name: c.name, family: c.family, port: backendPort, scheme: 'http', child: undefined },
        note: ownerNote(c.name, portOwner(sc.backendChild.pid, backendPort), backendPort),
      }
    }
    case 'process':
      return startProcess(c, port, sc)
    default: {
      const unreachable: never = c
      throw new Error(`unknown candidate ${JSON.stringify(unreachable)}`)
    }
  }
}

async function startProcess(
  c: Extract<Candidate, { kind: 'process' }>,
  port: number,
  sc: StartContext,
): Promise<StartOutcome> {
  const gaps = c.requires.flatMap((req) => missing(sc.rootDir, sc.baseDir, req) ?? [])
  if (gaps.length > 0) return { kind: 'skipped', reason: gaps.join('; ') }
  const workDir = mkdtempSync(path.join(sc.tmpDir, `${c.name}-`))
  const ctx: LaunchContext = {
    port,
    backendPorts: sc.backendPorts,
    rootDir: sc.rootDir,
    baseDir: sc.baseDir,
    workDir,
    binary: (tool: Tool) => {
      const file = findBinary(tool)
      if (file === undefined) throw new Error(`${c.name} needs ${tool}, which is not installed`)
      return file
    },
  }
  const cmd = c.launch(ctx)
  for (const dir of cmd.dirs ?? []) mkdirSync(path.join(workDir, dir), { recursive: true })
  for (const [name, content] of Object.entries(cmd.files ?? {})) writeFileSync(path.join(workDir, name), content)
  const child = sc.children.start(c.name, cmd.file, cmd.args, cmd.env === undefined ? {} : { env: cmd.env })
  let owner: PortOwner
  try {
    await sc.children.waitForPort(child, port, START_TIMEOUT_MS, sc.signal)
    owner = portOwner(child.pid, port)
    if (owner.kind === 'not-ours') throw new Error(`another process, not ${c.name}, is listening on ${port}`)
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
    target: { name: c.name, family: c.family, port, scheme: c.scheme ?? 'http', child },
    note: joinNotes(cmd.note === undefined ? undefined : `${c.name}: ${cmd.note}`, ownerNote(c.name, owner, port)),
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
