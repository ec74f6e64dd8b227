/**
 * The differential framing test at full size: the smuggling corpus and 10,000 mutated request heads,
 * each on a fresh connection to a listener of each engine (`native`, `node`), 16 at a time per engine,
 * in front of raw-socket backends that record what reaches them. Same checks as the quick suite's
 * sample (test/smuggling.test.ts): the engines decide alike, no request reaches a backend as two or
 * with a body other than the one the client framed, the client reads the answers in order, every
 * exchange ends. A failure names the mutant's seed and index (`mutant(seed, index)` remakes it) and
 * its bytes as a JSON string.
 *
 * SWITCHYARD_SMUGGLING_SEED picks another seed, SWITCHYARD_SMUGGLING_MUTANTS another count (at least
 * 10,000 unless set).
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CORPUS } from '../fixtures/smuggling/corpus.js'
import { firstOf, KNOWN_BUGS, Lanes, runDifferential, type Summary, summarize } from '../helpers/differential.js'
import { describeMutant, mutants } from '../helpers/mutate.js'

const SEED = Number(process.env.SWITCHYARD_SMUGGLING_SEED ?? 1_112)
const MUTANTS = Number(process.env.SWITCHYARD_SMUGGLING_MUTANTS ?? 10_000)
const LANES = 16

describe(`differential: the corpus and ${MUTANTS} mutated heads (seed ${SEED}) on both engines`, () => {
  let lanes: Lanes
  let summary: Summary
  let corpus: Summary
  let ms = 0

  before(async () => {
    lanes = await Lanes.start({ lanes: LANES })
    // Each probe twice, on a plain listener and on one with http2: true (Lanes.lanesFor).
    const probes = CORPUS.flatMap((p) =>
      [0, 1].map(() => ({ label: `corpus ${p.name}`, bytes: Buffer.from(p.text, 'latin1') })),
    )
    const sample = mutants(SEED, MUTANTS).map((m) => ({ label: describeMutant(m), bytes: m.bytes }))
    const report = await runDifferential(lanes, [...probes, ...sample])
    ms = report.ms
    corpus = summarize(report.results.slice(0, probes.length))
    summary = summarize(report.results.slice(probes.length))
  })
  after(() => lanes.close())

  it('the engines decide alike on every input', (t) => {
    t.diagnostic(`${CORPUS.length} probes (twice) and ${MUTANTS} mutants on 2 x ${LANES} lanes in ${ms} ms`)
    t.diagnostic(`node engine: ${summary.rejected} mutants refused, ${MUTANTS - summary.rejected} forwarded`)
    if (summary.unstable.length > 0)
      t.diagnostic(`${summary.unstable.length} unstable (not counted):\n${firstOf(summary.unstable, 5)}`)
    assert.equal(corpus.disagreements.length, 0, firstOf(corpus.disagreements))
    assert.equal(summary.disagreements.length, 0, `the engines disagree on:\n${firstOf(summary.disagreements)}`)
  })

  it('no request reaches a backend as two, or with a body other than the one sent; every exchange ends', (t) => {
    for (const [id, hits] of summary.known) t.diagnostic(`known bug ${id}: ${hits.length} mutants`)
    assert.equal(corpus.violations.length, 0, firstOf(corpus.violations))
    assert.equal(summary.violations.length, 0, `backend assertions broken:\n${firstOf(summary.violations)}`)
    assert.ok(summary.rejected > MUTANTS / 4 && summary.rejected < (MUTANTS * 3) / 4, `${summary.rejected} refused`)
  })

  for (const bug of KNOWN_BUGS)
    it(`known bug ${bug.id}: no mutant shows it`, { todo: bug.what }, () => {
      const hits = summary.known.get(bug.id) ?? []
      assert.equal(hits.length, 0, `${hits.length} mutants:\n${firstOf(hits, 5)}`)
    })
})
