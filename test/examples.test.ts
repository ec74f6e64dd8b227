/**
 * Every example config stays valid, every example cases file (`*.cases.yaml`, not a config) passes
 * under `switchyard test`, the embedding example runs, and the Grafana dashboard queries only metrics
 * that exist, with their labels.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir, readFile } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { formatIssue, loadConfigFile, METRICS } from '../src/index.js'
import { processRegistry } from '../src/metrics/process.js'
import { runCasesFiles } from '../src/testkit/index.js'

const run = promisify(execFile)

describe('examples/', async () => {
  const yaml = (await readdir('examples')).filter((f) => f.endsWith('.yaml'))
  const files = yaml.filter((f) => !f.endsWith('.cases.yaml'))
  const cases = yaml.filter((f) => f.endsWith('.cases.yaml'))

  it('has example configs', () => assert.ok(files.length >= 4))

  for (const f of files) {
    it(`${f} is valid`, async () => {
      const r = await loadConfigFile(`examples/${f}`, { API_HOST: '127.0.0.1' })
      assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
    })
  }

  for (const f of cases) {
    it(`${f} passes (switchyard test)`, async () => {
      const lines: string[] = []
      const code = await runCasesFiles([`examples/${f}`], { out: (t) => lines.push(t), err: (t) => lines.push(t) })
      assert.equal(code, 0, lines.join('\n'))
    })
  }

  it('embed.ts runs: round-robin over two backends, then a reload to one', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/embed.ts'], { timeout: 20_000 })
    assert.equal(stdout, 'hello from one\nhello from two\nhello from one\nhello from two\nhello from two\n')
  })

  it('grafana/switchyard.json queries only metrics of METRICS and prom-client defaults, with their labels', async () => {
    const dashboard = JSON.parse(await readFile('examples/grafana/switchyard.json', 'utf8')) as Dashboard
    assert.ok(dashboard.schemaVersion >= 39)
    assert.deepEqual(
      dashboard.__inputs.map((i) => [i.name, i.pluginId]),
      [['DS_PROMETHEUS', 'prometheus']],
    )
    // Each family and its labels: Switchyard's from the table, the process's from prom-client's registry.
    const families = new Map<string, Set<string>>()
    for (const m of Object.values(METRICS)) families.set(m.name, new Set(m.labelNames))
    // (A metric keeps its config's labelNames: a series may not exist yet, as before the first GC.)
    for (const m of processRegistry().getMetricsAsArray() as unknown as { name: string; labelNames: string[] }[])
      families.set(m.name, new Set(m.labelNames))
    // Every series also has the scrape's labels, and the process's carry `worker` with workers.
    const everywhere = ['job', 'instance']
    const familyOf = (name: string): string | undefined =>
      [name, name.replace(/_(bucket|sum|count)$/, '')].find((n) => families.has(n))

    const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row')
    assert.ok(panels.length >= 20)
    const exprs = [
      ...panels.flatMap((p) => {
        assert.equal(p.datasource?.uid, DATASOURCE, p.title)
        assert.ok(p.targets.length > 0, p.title)
        return p.targets.map((t) => ({ where: p.title, expr: t.expr }))
      }),
      ...dashboard.templating.list.map((v) => ({ where: `variable ${v.name}`, expr: v.definition })),
    ]
    const used = new Set<string>()
    for (const { where, expr } of exprs) {
      // Metric names: every name before a selector or a range, and every name of our namespaces.
      const names = new Set<string>()
      for (const m of expr.matchAll(/\b([a-z_:][a-z0-9_:]*)\s*[{[]/g)) names.add(m[1] as string)
      for (const m of expr.matchAll(/\b((?:switchyard|nodejs|process)_[a-z0-9_]+)/g)) names.add(m[1] as string)
      assert.ok(names.size > 0, `${where}: no metric in ${expr}`)
      const labels = new Set<string>(everywhere)
      for (const name of names) {
        const family = familyOf(name)
        assert.ok(family, `${where}: ${name} is neither in METRICS nor a prom-client default metric`)
        used.add(family)
        for (const l of families.get(family) ?? []) labels.add(l)
        if (name.endsWith('_bucket')) labels.add('le')
        if (!family.startsWith('switchyard_')) labels.add('worker')
      }
      // Every label it filters, groups or names in a legend is one of those metrics'.
      const named = [
        ...[...expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)].flatMap((m) => (m[1] as string).split(',')),
        ...[...expr.matchAll(/([a-z_]+)\s*(?:=~|!~|!=|=)\s*"/g)].map((m) => m[1] as string),
        ...[...expr.matchAll(/label_values\([^,]+,\s*([a-z_]+)\)/g)].map((m) => m[1] as string),
      ]
      for (const l of named.map((n) => n.trim()).filter(Boolean))
        assert.ok(labels.has(l), `${where}: label ${l} is not a label of ${[...names].join(', ')}`)
    }
    // The dashboard shows every Switchyard metric.
    const unused = Object.values(METRICS)
      .map((m) => m.name)
      .filter((n) => !used.has(n))
    assert.deepEqual(unused, [], 'metrics with no panel')
  })
})

/** The data source input every panel uses: Grafana asks for it on import. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's placeholder for an input, not a template
const DATASOURCE = '${DS_PROMETHEUS}'

interface Dashboard {
  schemaVersion: number
  __inputs: { name: string; pluginId: string }[]
  templating: { list: { name: string; definition: string }[] }
  panels: Panel[]
}

interface Panel {
  type: string
  title: string
  datasource?: { uid: string }
  targets: { expr: string }[]
  panels?: Panel[]
}
