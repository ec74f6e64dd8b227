// The engine table and the issue 12 targets check: ratios within one case and one Node, row order,
// verdicts. Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { Engine } from '../../src/config/schema.js'
import type { Family } from '../candidates.js'
import {
  checkTargets,
  ENGINE_TARGETS,
  type EngineTarget,
  engineLabel,
  engineMatrix,
  type MatrixCase,
  matrixCells,
  targetCells,
  verdict,
} from './engines.js'
import type { Summary } from './report.js'

function summary(
  name: string,
  family: Family,
  reqPerS: number,
  extra: { node?: string; engine?: Engine; p99Ms?: number; reqPerCore?: number } = {},
): Summary {
  return {
    name,
    candidate: name.replace(/@.*$/, ''),
    family,
    node: extra.node,
    engine: extra.engine,
    reqPerS,
    p50Ms: 1,
    p99Ms: extra.p99Ms ?? 2,
    cpuSPer1k: undefined,
    coresBusy: undefined,
    reqPerCore: extra.reqPerCore,
  }
}

/** small-50 under two Nodes: node is the default engine, so switchyard runs it. */
const small50: MatrixCase = {
  name: 'small-50',
  subjects: ['switchyard@node20', 'switchyard@node24', 'switchyard-native@node20', 'switchyard-native@node24'],
  oneWorker: {},
  summaries: [
    summary('direct', 'direct', 140_000),
    summary('switchyard@node20', 'switchyard', 24_000, { node: 'node20', engine: 'node', reqPerCore: 24_000 }),
    summary('switchyard@node24', 'switchyard', 26_000, { node: 'node24', engine: 'node', reqPerCore: 26_000 }),
    summary('switchyard-native@node20', 'switchyard', 39_000, {
      node: 'node20',
      engine: 'native',
      reqPerCore: 40_000,
      p99Ms: 3,
    }),
    summary('switchyard-native@node24', 'switchyard', 48_000, { node: 'node24', engine: 'native', reqPerCore: 45_000 }),
    summary('nginx', 'nginx', 80_000, { reqPerCore: 100_000, p99Ms: 1 }),
    summary('http-proxy@node20', 'node', 17_000, { node: 'node20' }),
    summary('http-proxy@node24', 'node', 19_200, { node: 'node24' }),
    summary('undici-dispatch@node20', 'node', 30_000, { node: 'node20' }),
    summary('undici-dispatch@node24', 'node', 30_000, { node: 'node24' }),
    summary('llhttp-floor@node20', 'node', 52_000, { node: 'node20' }),
  ],
}

const cores50: MatrixCase = {
  name: 'cores-50',
  subjects: ['switchyard-2w', 'switchyard-native-2w'],
  oneWorker: { 'switchyard-2w': 'switchyard', 'switchyard-native-2w': 'switchyard-native' },
  summaries: [
    summary('switchyard', 'switchyard', 20_000, { node: 'node20', engine: 'node' }),
    summary('switchyard-native', 'switchyard', 30_000, { node: 'node20', engine: 'native' }),
    summary('switchyard-2w', 'switchyard', 29_000, { node: 'node20', engine: 'node' }),
    summary('switchyard-native-2w', 'switchyard', 48_000, { node: 'node20', engine: 'native' }),
    summary('nginx-2w', 'nginx', 90_000, { reqPerCore: 60_000 }),
  ],
}

describe('engineMatrix', () => {
  const rows = engineMatrix([small50], 'node')
  it('has one row per subject, native first, then by Node', () => {
    assert.deepEqual(
      rows.map((r) => [r.subject, engineLabel(r)]),
      [
        ['switchyard-native@node20', 'native'],
        ['switchyard-native@node24', 'native'],
        ['switchyard@node20', 'node (default)'],
        ['switchyard@node24', 'node (default)'],
      ],
    )
  })
  it('divides by the Node peers under the same Node, and by nginx', () => {
    const native24 = rows.find((r) => r.subject === 'switchyard-native@node24')
    assert.equal(native24?.vsBare, 1.6)
    assert.equal(native24?.vsHttpProxy, 2.5)
    assert.equal(native24?.vsNginxPerCore, 0.45)
    assert.equal(native24?.vsOneWorker, undefined)
    const native20 = rows.find((r) => r.subject === 'switchyard-native@node20')
    assert.equal(native20?.vsBare, 1.3)
    assert.equal(native20?.vsFloor, 0.75)
    assert.equal(native24?.vsFloor, undefined, 'the floor ran under Node 20 only')
    assert.equal(native20?.p99VsNginx, 3)
  })
  it('gives multi-worker subjects their scaling ratio and worker count', () => {
    const scaled = engineMatrix([cores50], 'node')
    assert.deepEqual(
      scaled.map((r) => [engineLabel(r), r.vsOneWorker, r.vsNginxPerCore]),
      [
        ['native, 2 workers', 1.6, undefined],
        ['node (default), 2 workers', 1.45, undefined],
      ],
    )
  })
  it('renders a cell per column, a dash where a reference did not run', () => {
    const cells = matrixCells(engineMatrix([cores50], 'node'))
    assert.deepEqual(cells[0], [
      'cores-50',
      'native, 2 workers',
      'node20',
      '48,000',
      '2.00',
      '—',
      '—',
      '—',
      '—',
      '1.00×',
      '1.60×',
    ])
  })
})

describe('checkTargets', () => {
  it('checks each target under each Node, for each engine', () => {
    const checks = checkTargets(engineMatrix([small50, cores50], 'node'))
    const bare = checks.filter((c) => c.target === ENGINE_TARGETS[0])
    assert.deepEqual(
      bare.map((c) => [c.node, c.byEngine.native.verdict, c.byEngine.node.verdict]),
      [
        ['node20', 'met', 'missed'],
        ['node24', 'met, stretch too', 'missed'],
      ],
    )
    const p99 = checks.find((c) => c.target.case === 'small-200')
    assert.equal(p99?.byEngine.native.verdict, 'not measured')
    const scaling = checks.filter((c) => c.target.case === 'cores-50')
    assert.deepEqual(
      scaling.map((c) => [c.node, c.byEngine.native.verdict, c.byEngine.node.verdict]),
      [
        ['node20', 'met', 'missed'],
        ['node24', 'not measured', 'not measured'],
      ],
    )
  })
  it('renders three decimals, so that a miss never rounds up to the target', () => {
    const [row] = targetCells(checkTargets(engineMatrix([small50], 'node'), [ENGINE_TARGETS[1]!]))
    assert.deepEqual(row, [ENGINE_TARGETS[1]!.text, 'node20', '2.294×: met', '1.412×: missed'])
  })
  it('lists each target once, unmeasured, when no case ran', () => {
    const checks = checkTargets([])
    assert.equal(checks.length, ENGINE_TARGETS.length)
    assert.ok(checks.every((c) => c.node === undefined && c.byEngine.native.verdict === 'not measured'))
  })
})

describe('verdict', () => {
  const atLeast: EngineTarget = {
    text: '',
    case: 'x',
    workers: 1,
    figure: 'vsBare',
    bound: 'at-least',
    value: 1.3,
    stretch: 1.6,
  }
  const atMost: EngineTarget = { ...atLeast, figure: 'p99VsNginx', bound: 'at-most', value: 2 }
  it('reads the bound and the stretch', () => {
    assert.equal(verdict(atLeast, 1.299), 'missed')
    assert.equal(verdict(atLeast, 1.3), 'met')
    assert.equal(verdict(atLeast, 1.6), 'met, stretch too')
    assert.equal(verdict(atMost, 2), 'met')
    assert.equal(verdict(atMost, 2.01), 'missed')
    assert.equal(verdict(atMost, undefined), 'not measured')
  })
})
