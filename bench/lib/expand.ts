// From a case's candidate names to what a run starts: each Node-based candidate once per Node (as
// `NAME@nodeNN` when the run has several), the others once; each Switchyard engine once (an explicit
// `switchyard-native`/`switchyard-node` whose engine is the default is the same process as its `default`
// twin, `switchyard`, and is left out while the twin runs). Pure: the Nodes and the default engine are
// given.
import type { Engine } from '../../src/config/schema.js'
import { type Candidate, candidate } from '../candidates.js'
import { type NodeRuntime, variantName } from './nodes.js'

/** One candidate as a run starts it. */
export interface Entry {
  /** Its name in this run: the candidate's, with `@nodeNN` in a run with several Nodes. */
  readonly name: string
  readonly candidate: Candidate
  /** The Node it runs under; undefined for candidates that are not Node programs. */
  readonly node: NodeRuntime | undefined
  /** Switchyard's HTTP/1.1 engine, resolved; undefined for candidates the engine table does not compare. */
  readonly engine: Engine | undefined
}

export interface Expanded {
  readonly entries: readonly Entry[]
  /** The case's subjects, by their names in this run, in the case's order (each across the Nodes). */
  readonly subjects: readonly string[]
  /** A multi-worker subject's name → its one-worker counterpart's, under the same Node, when both run. */
  readonly oneWorker: Readonly<Record<string, string>>
  /** Candidates left out because their default-engine twin runs: name → twin. */
  readonly twins: readonly { readonly name: string; readonly twin: string }[]
}

/** The engine `c` runs when `fallback` is the default one; undefined for candidates without an engine. */
export function engineOf(c: Candidate, fallback: Engine): Engine | undefined {
  if (c.kind !== 'process' || c.engine === undefined) return undefined
  return c.engine === 'default' ? fallback : c.engine
}

/** The name of candidate `name` under `node` in a run over `nodes` (unchanged for non-Node candidates). */
export function runName(name: string, node: NodeRuntime | undefined, nodes: readonly NodeRuntime[]): string {
  const c = candidate(name)
  return c.kind === 'process' && c.node === true ? variantName(name, node, nodes.length) : name
}

export function expandCase(
  names: readonly string[],
  subjects: readonly string[],
  nodes: readonly NodeRuntime[],
  defaultEngine: Engine,
): Expanded {
  if (nodes.length === 0) throw new Error('a run needs at least one Node')
  const twins = names.flatMap((name) => {
    const c = candidate(name)
    if (c.kind !== 'process' || c.engine !== defaultEngine || c.twin === undefined || !names.includes(c.twin)) return []
    return [{ name, twin: c.twin }]
  })
  const alias = (name: string): string => twins.find((t) => t.name === name)?.twin ?? name
  const kept = names.filter((n) => alias(n) === n)
  const entries = kept.flatMap((name): Entry[] => {
    const c = candidate(name)
    const engine = engineOf(c, defaultEngine)
    if (c.kind !== 'process' || c.node !== true) return [{ name, candidate: c, node: undefined, engine }]
    return nodes.map((node) => ({ name: variantName(name, node, nodes.length), candidate: c, node, engine }))
  })
  const subjectNames = [...new Set(subjects.map(alias))].filter((n) => kept.includes(n))
  const subjectEntries = subjectNames.flatMap((n) => entries.filter((e) => e.candidate.name === n))
  const oneWorker: Record<string, string> = {}
  for (const e of subjectEntries) {
    const base = e.candidate.kind === 'process' ? e.candidate.oneWorker : undefined
    if (base === undefined || !kept.includes(alias(base))) continue
    oneWorker[e.name] = runName(alias(base), e.node, nodes)
  }
  return { entries, subjects: subjectEntries.map((e) => e.name), oneWorker, twins }
}
