// From case candidates to what a run starts: engine twins left out, Node-based candidates once per
// Node, subjects and one-worker pairs under the same Node. Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { expandCase, runName } from './expand.js'
import type { NodeRuntime } from './nodes.js'

const node = (major: number): NodeRuntime => ({
  file: `/opt/node${major}/bin/node`,
  version: `v${major}.0.0`,
  major,
  label: `node${major}`,
})
const N20 = node(20)
const N24 = node(24)

const SMALL = ['direct', 'switchyard', 'switchyard-native', 'switchyard-node', 'nginx', 'undici-dispatch']
const SUBJECTS = ['switchyard', 'switchyard-native', 'switchyard-node']

describe('expandCase', () => {
  it('leaves out the explicit engine that is the default, which switchyard runs', () => {
    const x = expandCase(SMALL, SUBJECTS, [N20], 'node')
    assert.deepEqual(
      x.entries.map((e) => [e.name, e.engine, e.node?.label]),
      [
        ['direct', undefined, undefined],
        ['switchyard', 'node', 'node20'],
        ['switchyard-native', 'native', 'node20'],
        ['nginx', undefined, undefined],
        ['undici-dispatch', undefined, 'node20'],
      ],
    )
    assert.deepEqual(x.subjects, ['switchyard', 'switchyard-native'])
    assert.deepEqual(x.twins, [{ name: 'switchyard-node', twin: 'switchyard' }])
  })
  it('follows the default engine when it changes', () => {
    const x = expandCase(SMALL, SUBJECTS, [N20], 'native')
    assert.deepEqual(
      x.entries.filter((e) => e.candidate.family === 'switchyard').map((e) => [e.name, e.engine]),
      [
        ['switchyard', 'native'],
        ['switchyard-node', 'node'],
      ],
    )
    assert.deepEqual(x.twins, [{ name: 'switchyard-native', twin: 'switchyard' }])
  })
  it('keeps an explicit engine whose twin is not in the case', () => {
    const x = expandCase(['switchyard-node', 'nginx'], ['switchyard-node'], [N20], 'node')
    assert.deepEqual(
      x.entries.map((e) => e.name),
      ['switchyard-node', 'nginx'],
    )
    assert.deepEqual(x.subjects, ['switchyard-node'])
  })
  it('runs each Node-based candidate once per Node, side by side, and the others once', () => {
    const x = expandCase(SMALL, SUBJECTS, [N20, N24], 'node')
    assert.deepEqual(
      x.entries.map((e) => e.name),
      [
        'direct',
        'switchyard@node20',
        'switchyard@node24',
        'switchyard-native@node20',
        'switchyard-native@node24',
        'nginx',
        'undici-dispatch@node20',
        'undici-dispatch@node24',
      ],
    )
    assert.deepEqual(x.subjects, [
      'switchyard@node20',
      'switchyard@node24',
      'switchyard-native@node20',
      'switchyard-native@node24',
    ])
  })
  it('pairs each multi-worker subject with its one-worker counterpart under the same Node', () => {
    const names = ['switchyard', 'switchyard-native', 'switchyard-2w', 'switchyard-native-2w', 'switchyard-node-2w']
    const subjects = ['switchyard-2w', 'switchyard-native-2w', 'switchyard-node-2w']
    const x = expandCase(names, subjects, [N20, N24], 'node')
    assert.deepEqual(x.oneWorker, {
      'switchyard-2w@node20': 'switchyard@node20',
      'switchyard-2w@node24': 'switchyard@node24',
      'switchyard-native-2w@node20': 'switchyard-native@node20',
      'switchyard-native-2w@node24': 'switchyard-native@node24',
    })
    assert.ok(!x.entries.some((e) => e.candidate.name === 'switchyard-node-2w'))
  })
  it('pairs with the twin when the counterpart is the one left out', () => {
    const x = expandCase(
      ['switchyard', 'switchyard-node', 'switchyard-node-2w'],
      ['switchyard-node-2w'],
      [N20],
      'native',
    )
    assert.deepEqual(x.oneWorker, { 'switchyard-node-2w': 'switchyard-node' })
    const y = expandCase(
      ['switchyard', 'switchyard-native', 'switchyard-native-2w'],
      ['switchyard-native-2w'],
      [N20],
      'native',
    )
    assert.deepEqual(y.oneWorker, { 'switchyard-native-2w': 'switchyard' })
  })
})

describe('runName', () => {
  it('suffixes Node-based candidates in a run over several Nodes only', () => {
    assert.equal(runName('switchyard', N24, [N20, N24]), 'switchyard@node24')
    assert.equal(runName('nginx', N24, [N20, N24]), 'nginx')
    assert.equal(runName('switchyard', N20, [N20]), 'switchyard')
  })
})
