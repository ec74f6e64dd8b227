// The cell-backed prom-client metrics against prom-client's own: a histogram filled from a cell (through
// prom-client's internal state, see collected.ts) must read exactly as one fed the same values through
// the public `observe()`. This is the contract that pins prom-client's version: if an upgrade changes
// the internal shape, this fails.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { describe, it } from 'node:test'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { DURATION_BUCKETS_S, DurationCell } from './cells.js'
import { collectedCounter, collectedGauge, collectedHistogram } from './collected.js'
import type { MetricDef } from './table.js'

const def = (type: MetricDef['type'], labelNames: string[] = ['pool', 'server']): MetricDef => ({
  name: `test_${type}`,
  type,
  help: `A test ${type}.`,
  labelNames,
})

/** Values on and around every bucket bound, 0, and past the last one (+Inf). */
const VALUES = [0, 0.0004, ...DURATION_BUCKETS_S.flatMap((b) => [b, b * 1.001]), 31, 120]

describe('cell-backed prom-client metrics', () => {
  it('pins the prom-client version whose Histogram internals collected.ts fills', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { dependencies: Record<string, string> }
    const installed = (createRequire(import.meta.url)('prom-client/package.json') as { version: string }).version
    assert.match(pkg.dependencies['prom-client'] ?? '', /^\d+\.\d+\.\d+$/, 'an exact version, no range')
    assert.equal(installed, pkg.dependencies['prom-client'])
  })

  it('a histogram filled from cells reads exactly as one fed the same values through observe()', async () => {
    const cells = [new DurationCell(), new DurationCell()]
    const ours = new Registry()
    collectedHistogram(ours, def('histogram'), (add) => {
      add({ pool: 'p', server: 'a' }, cells[0] as DurationCell)
      add({ pool: 'p', server: 'b' }, cells[1] as DurationCell)
    })
    const theirs = new Registry()
    const reference = new Histogram({ ...def('histogram'), buckets: DURATION_BUCKETS_S, registers: [theirs] })
    // The same series order as the cells': prom-client lists series as they were first seen.
    reference.zero({ pool: 'p', server: 'a' })
    reference.zero({ pool: 'p', server: 'b' })
    for (const [i, v] of VALUES.entries()) {
      const server = i % 3 === 0 ? 'b' : 'a'
      ;(cells[server === 'a' ? 0 : 1] as DurationCell).observe(v)
      reference.observe({ pool: 'p', server }, v)
    }
    assert.equal(await ours.metrics(), await theirs.metrics())
    assert.deepEqual(await ours.getMetricsAsJSON(), await theirs.getMetricsAsJSON())
    // Read again after more observations: every scrape starts afresh from the cells.
    ;(cells[0] as DurationCell).observe(0.003)
    reference.observe({ pool: 'p', server: 'a' }, 0.003)
    assert.equal(await ours.metrics(), await theirs.metrics())
  })

  it('a histogram with no cells has no series, and one with an empty cell has zeros', async () => {
    let cell: DurationCell | undefined
    const registry = new Registry()
    collectedHistogram(registry, def('histogram', ['pool']), (add) => {
      if (cell !== undefined) add({ pool: 'p' }, cell)
    })
    assert.deepEqual((await registry.getMetricsAsJSON())[0]?.values, [])
    cell = new DurationCell()
    const values = (await registry.getMetricsAsJSON())[0]?.values ?? []
    assert.equal(values.length, DURATION_BUCKETS_S.length + 3)
    assert.ok(values.every((v) => v.value === 0))
  })

  it('counters and gauges read from cells match prom-client fed directly, and drop series that went', async () => {
    const counts = new Map([
      ['a', 3],
      ['b', 0],
    ])
    const ours = new Registry()
    collectedCounter(ours, def('counter'), (add) => {
      for (const [server, n] of counts) add({ pool: 'p', server }, n)
    })
    collectedGauge(ours, def('gauge'), (add) => {
      for (const [server, n] of counts) add({ pool: 'p', server }, -n)
    })
    const theirs = new Registry()
    const c = new Counter({ ...def('counter'), registers: [theirs] })
    const g = new Gauge({ ...def('gauge'), registers: [theirs] })
    c.inc({ pool: 'p', server: 'a' }, 3)
    c.inc({ pool: 'p', server: 'b' }, 0)
    g.set({ pool: 'p', server: 'a' }, -3)
    g.set({ pool: 'p', server: 'b' }, 0)
    assert.equal(await ours.metrics(), await theirs.metrics())
    counts.delete('a')
    const text = await ours.metrics()
    assert.doesNotMatch(text, /server="a"/)
    assert.match(text, /test_counter\{pool="p",server="b"\} 0\n/)
  })
})
