/**
 * Reading Prometheus text exposition in tests: every sample with its labels, sums over label subsets,
 * histograms, and checks of the whole scrape against the METRICS table.
 */
import assert from 'node:assert/strict'
import { METRICS } from '../../src/metrics/index.js'

export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Scrape {
  readonly samples: readonly Sample[]
  /** `# TYPE` of each family. */
  readonly types: ReadonlyMap<string, string>
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

/** Parses a scrape; throws on a line it cannot read. */
export function parseMetrics(text: string): Scrape {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line === '') continue
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ')
      assert.ok(name !== undefined && type !== undefined, line)
      assert.ok(!types.has(name), `family ${name} declared twice`)
      types.set(name, type)
      continue
    }
    if (line.startsWith('#')) continue
    const m = LINE.exec(line)
    assert.ok(m, `unreadable line: ${line}`)
    const labels: Record<string, string> = {}
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = (l[2] as string).replace(/\\(.)/g, '$1')
    samples.push({ name: m[1] as string, labels, value: Number(m[3]) })
  }
  return { samples, types }
}

function matches(s: Sample, name: string, where: Readonly<Record<string, string>>): boolean {
  if (s.name !== name) return false
  for (const [k, v] of Object.entries(where)) if (s.labels[k] !== v) return false
  return true
}

/** The sum of the samples of `name` whose labels include `where` (0 when there is none). */
export function sum(scrape: Scrape, name: string, where: Readonly<Record<string, string>> = {}): number {
  let total = 0
  for (const s of scrape.samples) if (matches(s, name, where)) total += s.value
  return total
}

/** The samples of `name` whose labels include `where`. */
export function series(scrape: Scrape, name: string, where: Readonly<Record<string, string>> = {}): Sample[] {
  return scrape.samples.filter((s) => matches(s, name, where))
}

export interface HistogramReading {
  /** Cumulative counts by upper bound, `+Inf` last. */
  readonly buckets: readonly (readonly [le: number, count: number])[]
  readonly sum: number
  readonly count: number
}

/** A histogram family summed over the series whose labels include `where`. */
export function histogram(
  scrape: Scrape,
  name: string,
  where: Readonly<Record<string, string>> = {},
): HistogramReading {
  const byLe = new Map<number, number>()
  for (const s of series(scrape, `${name}_bucket`, where)) {
    const le = s.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(s.labels.le)
    byLe.set(le, (byLe.get(le) ?? 0) + s.value)
  }
  const buckets = [...byLe].sort((a, b) => a[0] - b[0])
  return { buckets, sum: sum(scrape, `${name}_sum`, where), count: sum(scrape, `${name}_count`, where) }
}

/**
 * A histogram holds exactly the observations `bounds` describe, each known to lie in [low, high]: its
 * count is their number, each cumulative bucket holds at least those sure to be under its bound and at
 * most those that may be, and its sum lies between the sums of the bounds.
 */
export function assertHistogramHolds(
  h: HistogramReading,
  bounds: readonly { readonly low: number; readonly high: number }[],
  what: string,
): void {
  assert.equal(h.count, bounds.length, `${what}: count`)
  for (const [le, count] of h.buckets) {
    const sure = bounds.filter((b) => b.high <= le).length
    const maybe = bounds.filter((b) => b.low <= le).length
    assert.ok(count >= sure && count <= maybe, `${what}: bucket le=${le} holds ${count}, expected ${sure}..${maybe}`)
  }
  const low = bounds.reduce((n, b) => n + b.low, 0)
  const high = bounds.reduce((n, b) => n + b.high, 0)
  // A little slack for the rounding of a float sum.
  assert.ok(h.sum >= low - 1e-9 && h.sum <= high + 1e-9, `${what}: sum ${h.sum} outside ${low}..${high}`)
}

const TABLE = new Map<string, { type: string; labelNames: readonly string[] }>(
  Object.values(METRICS).map((m) => [m.name, m]),
)

/**
 * Every `switchyard_*` family of the scrape is in METRICS with its type, each of its samples has exactly
 * the table's labels (and `le` on buckets), and no series appears twice.
 */
export function assertMatchesTable(scrape: Scrape): void {
  const seen = new Set<string>()
  for (const [name, type] of scrape.types) {
    if (!name.startsWith('switchyard_')) continue
    assert.equal(TABLE.get(name)?.type, type, `${name}: not in METRICS as a ${type}`)
  }
  for (const s of scrape.samples) {
    const key = `${s.name}{${Object.entries(s.labels)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}}`
    assert.ok(!seen.has(key), `series twice: ${key}`)
    seen.add(key)
    if (!s.name.startsWith('switchyard_')) continue
    const family = s.name.replace(/_(bucket|sum|count)$/, '')
    const def = TABLE.get(s.name) ?? TABLE.get(family)
    assert.ok(def, `${s.name}: not in METRICS`)
    const expected = [...def.labelNames, ...(s.name.endsWith('_bucket') && def.type === 'histogram' ? ['le'] : [])]
    assert.deepEqual(Object.keys(s.labels).sort(), [...expected].sort(), `${s.name}: labels`)
  }
}
