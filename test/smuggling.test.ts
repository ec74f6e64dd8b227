/**
 * HTTP/1.1 framing as security code: the smuggling corpus (test/fixtures/smuggling/corpus.ts) and a
 * deterministic sample of mutated request heads (test/helpers/mutate.ts), each sent on a fresh
 * connection to a listener of each engine, `engine: native` and `engine: node`, in front of raw-socket
 * backends that record exactly what reaches them (test/helpers/differential.ts). For every input:
 * - the engines decide alike: both refuse it, or both forward the same requests (method, target,
 *   the client's headers, body);
 * - no request reaches a backend as two, or with a body other than the one the client framed, as the
 *   strict reader of test/helpers/framing.ts reads the client's bytes; the client reads the backend's
 *   answers in order; every exchange ends;
 * - corpus probes with an engine-independent answer (`expect`, and the refusal's `status`) get it.
 * A bare node:http server is the anchor: a listener forwards nothing it refuses.
 *
 * The 10,000-mutant run is in test/slow/smuggling.test.ts. A known bug of both engines would be a
 * TODO test (KNOWN_BUGS, a probe's `bug`) saying what it is; there are none today.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { CORPUS, type Probe } from './fixtures/smuggling/corpus.js'
import {
  bounded,
  ENGINES,
  firstOf,
  type InputResult,
  KNOWN_BUGS,
  Lanes,
  NodeHttpAnchor,
  type Observation,
  runDifferential,
  type Seen,
  summarize,
} from './helpers/differential.js'
import { originForm, readMessage, readRequests } from './helpers/framing.js'
import { describeMutant, mutant, mutants } from './helpers/mutate.js'

/** The seed of the quick suite's mutants (the slow suite uses its own). */
const SEED = 20_261_202
const MUTANTS = 500

const bytes = (text: string) => Buffer.from(text, 'latin1')

describe('the strict framing reader the backends and the assertions use', () => {
  it('splits pipelined requests and reads Content-Length and chunked bodies with their trailers', () => {
    const r = readRequests(
      bytes(
        'POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc' +
          'PUT /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\ndef\r\n0\r\nT: 1\r\n\r\n' +
          'GET /c HTTP/1.1\r\nHost: x\r\n\r\n',
      ),
    )
    assert.equal(r.tail.kind, 'clean')
    assert.deepEqual(
      r.messages.map((m) => [m.method, m.target, m.body.toString(), m.framing, m.trailers]),
      [
        ['POST', '/a', 'abc', 'length', []],
        ['PUT', '/b', 'def', 'chunked', [['T', '1']]],
        ['GET', '/c', '', 'none', []],
      ],
    )
  })

  it('refuses what two parsers could read differently', () => {
    const refused = (head: string, body = '') => {
      const r = readMessage(bytes(`POST / HTTP/1.1\r\nHost: x\r\n${head}\r\n${body}`))
      return r.kind === 'error' ? r.reason : `not refused: ${r.kind}`
    }
    assert.match(refused('Content-Length: 1\r\nTransfer-Encoding: chunked\r\n'), /both/)
    assert.match(refused('Content-Length: 1\r\nContent-Length: 2\r\n'), /differing/)
    assert.match(refused('Content-Length: +1\r\n'), /not digits/)
    assert.match(refused('Transfer-Encoding: chunked, identity\r\n'), /final/)
    assert.match(refused('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n'), /twice/)
    assert.match(refused('Transfer-Encoding : chunked\r\n'), /not a token/)
    assert.match(refused('X: a\r\n b\r\n'), /obs-fold/)
    assert.match(refused('X: a\nY: b\r\n'), /bare LF/)
    assert.match(refused('X: a\rY: b\r\n'), /bare CR/)
    assert.match(refused('X: a\x00b\r\n'), /NUL/)
    assert.match(refused('Transfer-Encoding: chunked\r\n', '5 \r\nhello\r\n0\r\n\r\n'), /chunk extension/)
    assert.match(refused('Transfer-Encoding: chunked\r\n', '3\r\nhello\r\n0\r\n\r\n'), /CRLF/)
    assert.match(readMessage(bytes('GET /\r\nHost: x\r\n\r\n')).kind === 'error' ? 'error' : 'accepted', /error/)
  })

  it('tells a message cut short from one that is whole, and keeps what came of it', () => {
    const r = readRequests(
      bytes('GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\nabc'),
    )
    assert.equal(r.messages.length, 1)
    assert.equal(r.tail.kind, 'incomplete')
    if (r.tail.kind === 'incomplete') {
      assert.equal(r.tail.head?.target, '/p')
      assert.equal(r.tail.bodySoFar.toString(), 'abc')
    }
    assert.equal(readRequests(bytes('GET / HTTP/1.0\r\n\r\nGET / HTTP/1.1\r\n\r\n')).tail.kind, 'closed')
  })

  it('reads responses: none of a body after HEAD, 204 and 304; to the close without framing', () => {
    const head = readMessage(bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n'), 0, 'response', 'HEAD')
    assert.equal(head.kind === 'message' && head.message.body.length, 0)
    const toClose = readMessage(bytes('HTTP/1.1 200 OK\r\n\r\nall of it'), 0, 'response', 'GET', true)
    assert.equal(toClose.kind === 'message' && toClose.message.body.toString(), 'all of it')
    assert.equal(originForm('http://a.test/x/../y?q'), '/y?q')
  })
})

describe('mutated request heads', () => {
  it('are the same bytes for the same seed and index, and varied', () => {
    assert.deepEqual(mutant(SEED, 123).bytes, mutant(SEED, 123).bytes)
    assert.notDeepEqual(mutant(SEED, 123).bytes, mutant(SEED + 1, 123).bytes)
    const sample = mutants(SEED, 2000)
    const distinct = new Set(sample.map((m) => m.bytes.toString('latin1'))).size
    assert.ok(distinct > 1600, `${distinct} distinct of 2000`)
    const bases = new Set(sample.map((m) => m.base)).size
    assert.ok(bases >= 10, `${bases} bases`)
    assert.match(describeMutant(sample[0]!), new RegExp(`^seed ${SEED} index 0 `))
  })
})

/** What `probe.expect` and `probe.status` ask of one engine's observation: undefined when met. */
function unmet(probe: Probe, o: Observation): string | undefined {
  const n = o.received.messages.length
  const last = o.statuses.filter((s) => s >= 200).at(-1)
  if (probe.status !== undefined && last !== probe.status)
    return `${o.engine}: the client read ${JSON.stringify(o.statuses)}, not a last ${probe.status}`
  if (probe.expect === 'reject') return n === 0 ? undefined : `${o.engine}: ${n} requests reached the backend`
  if (probe.expect === undefined) return undefined
  if (n !== probe.expect) return `${o.engine}: ${n} requests reached the backend, not ${probe.expect}`
  const answered = o.statuses.filter((s) => s === 200).length
  if (answered < probe.expect) return `${o.engine}: the client read ${JSON.stringify(o.statuses)}`
  return undefined
}

function expectation(probe: Probe): string {
  const answer = probe.status === undefined ? '' : `, answered ${probe.status}`
  if (probe.expect === 'reject') return `refused by both engines${answer}`
  return `${String(probe.expect)} request(s) forwarded as sent${answer}`
}

describe('differential: the smuggling corpus and 500 mutated heads on both engines', () => {
  let lanes: Lanes
  let results: readonly InputResult[] = []
  /** Each probe's results: on a plain listener, and on one with http2: true. */
  const byProbe = new Map<string, [InputResult, InputResult]>()
  const anchored = new Map<string, Seen[]>()
  let ms = 0

  before(async () => {
    lanes = await Lanes.start({ lanes: 16 })
    // Each probe twice, side by side: on a plain listener and on one with http2: true (lanesFor).
    const corpus = CORPUS.flatMap((p) => [0, 1].map(() => ({ label: `corpus ${p.name}`, bytes: bytes(p.text) })))
    const sample = mutants(SEED, MUTANTS).map((m) => ({ label: describeMutant(m), bytes: m.bytes }))
    const report = await runDifferential(lanes, [...corpus, ...sample])
    ms = report.ms
    results = report.results
    for (const [i, p] of CORPUS.entries()) byProbe.set(p.name, [results[2 * i]!, results[2 * i + 1]!])
    const anchor = new NodeHttpAnchor()
    await anchor.listen()
    try {
      await bounded(CORPUS.length, 8, async (i) => {
        const p = CORPUS[i]!
        anchored.set(p.name, await anchor.run(bytes(p.text)))
      })
    } finally {
      await anchor.close()
    }
  })
  after(() => lanes.close())

  for (const probe of CORPUS) {
    it(`${probe.name}: ${probe.probes}`, () => {
      for (const r of byProbe.get(probe.name)!) {
        const where = r.http2 ? ' (listener with http2: true)' : ''
        assert.equal(r.disagreement, undefined, `the engines disagree${where}:\n  ${r.disagreement}`)
        assert.deepEqual(r.violations, [], where)
        if (probe.bug !== undefined || (r.http2 && probe.name.startsWith('h2-'))) continue
        for (const e of ENGINES) assert.equal(unmet(probe, r.observations[e]), undefined, expectation(probe) + where)
      }
    })
    if (probe.bug !== undefined)
      it(`${probe.name}: ${expectation(probe)} (known bug)`, { todo: probe.bug }, () => {
        const observed = byProbe.get(probe.name)!.flatMap((r) => ENGINES.map((e) => r.observations[e]))
        assert.deepEqual(
          observed.map((o) => unmet(probe, o)).filter((u) => u !== undefined),
          [],
        )
      })
  }

  it(`${MUTANTS} mutated heads (seed ${SEED}): decided alike; none reaches a backend as two or with another body`, (t) => {
    const s = summarize(results.slice(2 * CORPUS.length))
    t.diagnostic(`${MUTANTS} mutants and ${CORPUS.length} probes (twice) on 2 x 16 lanes in ${ms} ms`)
    t.diagnostic(`node engine: ${s.rejected} refused, ${MUTANTS - s.rejected} forwarded`)
    for (const [id, hits] of s.known) t.diagnostic(`known bug ${id}: ${hits.length} mutants`)
    if (s.unstable.length > 0) t.diagnostic(`unstable (not counted): ${firstOf(s.unstable, 5)}`)
    assert.equal(s.disagreements.length, 0, `the engines disagree on:\n${firstOf(s.disagreements)}`)
    assert.equal(s.violations.length, 0, `backend assertions broken:\n${firstOf(s.violations)}`)
    // Most mutants must be refused, and many must get through: a generator that only made garbage (or
    // only valid requests) would test nothing.
    assert.ok(s.rejected > MUTANTS / 4 && s.rejected < (MUTANTS * 3) / 4, `${s.rejected} of ${MUTANTS} refused`)
  })

  for (const bug of KNOWN_BUGS)
    it(`known bug ${bug.id}: no input shows it`, { todo: bug.what }, () => {
      const hits = summarize(results).known.get(bug.id) ?? []
      assert.equal(hits.length, 0, `${hits.length} inputs:\n${firstOf(hits, 5)}`)
    })

  it('the anchor: a listener forwards nothing that a bare node:http server refuses', (t) => {
    const key = (method: string, target: string, body: Buffer) =>
      JSON.stringify([method, target, body.toString('latin1')])
    const problems: string[] = []
    const stricter: string[] = []
    for (const probe of CORPUS) {
      const seen = (anchored.get(probe.name) ?? []).map((s) => key(s.method, originForm(s.url), s.body))
      // Both engines, on both kinds of listener (an HTTP/2 preface is HTTP/2 on the second).
      const results = byProbe.get(probe.name)!.filter((r) => !(r.http2 && probe.name.startsWith('h2-')))
      for (const r of results)
        for (const e of ENGINES) {
          const forwarded = r.observations[e].received.messages
          const left = [...seen]
          for (const m of forwarded) {
            const i = left.indexOf(key(m.method, m.target, m.body))
            if (i < 0)
              problems.push(
                `${probe.name} (${e}${r.http2 ? ', http2: true' : ''}): forwarded ${key(m.method, m.target, m.body)}; node:http saw ${JSON.stringify(seen)}`,
              )
            else left.splice(i, 1)
          }
          if (e === 'node' && !r.http2 && forwarded.length < seen.length) stricter.push(probe.name)
        }
    }
    t.diagnostic(`stricter than bare node:http (the request path's own checks): ${stricter.join(', ')}`)
    assert.deepEqual(problems, [])
    // The anchor itself works: it saw the plain requests.
    assert.equal(anchored.get('pipelined-two')?.length, 2)
  })
})

describe('the raw-socket backends', () => {
  it('see each client request at most once: pools have no retries', async () => {
    const lanes = await Lanes.start({ lanes: 1 })
    try {
      const o = await lanes.run('node', 0, bytes(`GET /once HTTP/1.1\r\nHost: a.test\r\n\r\n`))
      assert.deepEqual(
        o.received.messages.map((m) => m.target),
        ['/once'],
      )
      assert.deepEqual(o.statuses, [200])
      assert.equal(readRequests(bytes('')).messages.length, 0)
    } finally {
      await lanes.close()
    }
  })
})
