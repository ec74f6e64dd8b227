// The case table against the candidate table: every name exists, and every candidate of a case
// answers the HTTP version of the case's load tool (no wrk at an HTTP/2-only port, no h2load at an
// HTTP/1.1 one). Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { candidate, candidates, speaks } from '../candidates.js'
import { caseNames, cases, ENGINE_CASES, ENGINE_RUN_SKIPS, loadToolOf, misfits } from '../cases.js'
import { ENGINE_TARGETS } from './engines.js'

describe('bench cases', () => {
  it('have unique names, and subjects among their candidates', () => {
    assert.equal(new Set(cases.map((c) => c.name)).size, cases.length)
    assert.equal(new Set(candidates.map((c) => c.name)).size, candidates.length)
    for (const c of cases) for (const s of c.subjects) assert.ok(c.candidates.includes(s), `${c.name}: subject ${s}`)
  })
  it('name only candidates that answer their load tool', () => {
    for (const c of cases) assert.deepEqual(misfits(c), [], `${c.name} (${loadToolOf(c)})`)
  })
  it('keep wrk and hey away from the HTTP/2-only candidates', () => {
    for (const name of ['nginx-h2c', 'haproxy-h2c']) {
      assert.equal(speaks(candidate(name), 'http/1.1'), false, name)
      assert.equal(speaks(candidate(name), 'h2'), true, name)
    }
    assert.equal(speaks(candidate('direct'), 'h2'), false)
    assert.equal(speaks(candidate('switchyard'), 'h2'), false)
  })
  it('compare HTTP/2 candidates over one transport per case', () => {
    for (const c of cases.filter((x) => loadToolOf(x) === 'h2load')) {
      const schemes = new Set(
        c.candidates.map((n) => {
          const cand = candidate(n)
          return cand.kind === 'process' ? (cand.scheme ?? 'http') : 'http'
        }),
      )
      assert.equal(schemes.size, 1, `${c.name}: ${[...schemes].join(', ')}`)
    }
  })
  it('give each explicit engine a default-engine twin, and each multi-worker one a one-worker counterpart', () => {
    for (const c of candidates) {
      if (c.kind !== 'process') continue
      if (c.engine !== undefined && c.engine !== 'default') {
        assert.ok(c.twin !== undefined, `${c.name}: no twin`)
        const twin = candidate(c.twin)
        assert.equal(twin.kind === 'process' && twin.engine, 'default', `${c.name}: twin ${c.twin}`)
        assert.equal(twin.kind === 'process' && twin.oneWorker !== undefined, c.oneWorker !== undefined, c.name)
      }
      if (c.oneWorker !== undefined) assert.equal(candidate(c.oneWorker).family, 'switchyard', c.name)
    }
  })
  it('run both engines in the cases the engine targets are stated in', () => {
    assert.deepEqual(
      ENGINE_CASES.filter((n) => !caseNames().includes(n)),
      [],
    )
    for (const t of ENGINE_TARGETS) assert.ok((ENGINE_CASES as readonly string[]).includes(t.case), t.case)
    for (const name of ENGINE_CASES) {
      const c = cases.find((x) => x.name === name)!
      const engines = new Set(
        c.subjects.map((s) => {
          const cand = candidate(s)
          return cand.kind === 'process' ? cand.engine : undefined
        }),
      )
      assert.ok(engines.has('native') && engines.has('node') && engines.has('default'), name)
    }
    for (const n of ENGINE_RUN_SKIPS) candidate(n)
  })
})
