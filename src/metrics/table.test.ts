// The METRICS table is the one list of metric names: consistent in itself, and docs/observability.md's
// table says the same (names, types, labels in order).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { METRICS, SUPERVISOR_METRICS } from './table.js'

const all = Object.values(METRICS)

describe('METRICS', () => {
  it('names each metric once, in the switchyard_ namespace, as Prometheus would have it', () => {
    assert.equal(new Set(all.map((m) => m.name)).size, all.length)
    for (const m of all) {
      assert.match(m.name, /^switchyard_[a-z0-9_]+$/, m.name)
      if (m.type === 'counter') assert.match(m.name, /_total$/, `${m.name}: a counter ends in _total`)
      else assert.doesNotMatch(m.name, /_total$/, `${m.name}: only counters end in _total`)
      if (m.type === 'histogram') assert.match(m.name, /_seconds$/, `${m.name}: histograms are of seconds`)
      assert.ok(!m.labelNames.includes('le' as never), `${m.name}: le is the buckets'`)
      assert.equal(new Set(m.labelNames).size, m.labelNames.length, `${m.name}: a label twice`)
      assert.ok(m.help.length > 10, `${m.name}: help`)
    }
    for (const name of SUPERVISOR_METRICS)
      assert.ok(
        all.some((m) => m.name === name),
        name,
      )
  })

  it("is docs/observability.md's metrics table, row for row", () => {
    const doc = readFileSync('docs/observability.md', 'utf8')
    const rows = doc
      .split('\n')
      .filter((l) => /^\| `switchyard_[a-z0-9_]+` +\|/.test(l))
      .map((l) => l.split('|').map((c) => c.trim()))
    const documented = rows.map(([, name, type, labels]) => ({
      name: (name ?? '').replaceAll('`', ''),
      type,
      labelNames: labels === '(none)' ? [] : [...(labels ?? '').matchAll(/`([a-z_]+)`/g)].map((m) => m[1]),
    }))
    const declared = all.map((m) => ({ name: m.name, type: m.type, labelNames: [...m.labelNames] }))
    const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name)
    assert.deepEqual(documented.sort(byName), declared.sort(byName))
  })
})
