// The command-line pieces the end-to-end bench scripts (bench/run.ts, bench/idle.ts) share: their two
// kinds of error, the flags both take, and how `--backends` and `--node` are read.
import type { BackendKind } from './backends.js'
import { findNode, type NodeRuntime, nodesProblem, SELF } from './nodes.js'

/** The command line is off: the script prints the message and its usage text, and exits 2. */
export class UsageError extends Error {}

/** Something the run needs is missing (a `--node` binary): the message says how to get it, no usage text; exit 1. */
export class SetupError extends Error {}

/** For `parseArgs`: `--backends KIND` (default auto), `--node PATH ...`, `--no-docs`, `-h`/`--help`. */
export const SHARED_OPTIONS = {
  backends: { type: 'string', default: 'auto' },
  node: { type: 'string', multiple: true },
  'no-docs': { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const

/** `--backends`: auto, nginx or node; a usage error otherwise. */
export function backendsOption(raw: string): BackendKind | 'auto' {
  if (raw !== 'auto' && raw !== 'nginx' && raw !== 'node')
    throw new UsageError(`--backends wants auto, nginx or node, got ${raw}`)
  return raw
}

/**
 * The Nodes the `--node` values name (relative paths from the working directory; the bench's own
 * when there are none): a setup error when one is missing, a usage error when two share a major version.
 */
export function nodesOption(raws: readonly string[] | undefined): NodeRuntime[] {
  const nodes = (raws ?? [SELF]).map((raw) => {
    const found = findNode(raw, process.cwd())
    if (found.kind === 'missing') throw new SetupError(`--node ${raw}: ${found.reason}`)
    return found.node
  })
  const clash = nodesProblem(nodes)
  if (clash !== undefined) throw new UsageError(`--node: ${clash}`)
  return nodes
}
