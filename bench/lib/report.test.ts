// Unit tests for the bench's pure parts: medians and ratios, the layer table, hey's summary, the
// shared docs section. Run with `npm run bench:test`.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { extractSection, replaceSection } from './docs-section.js'
import { parseHey } from './hey.js'
import {
  type CandidateRuns,
  caseRatios,
  checkGoals,
  layerRows,
  median,
  pairedRatios,
  references,
  type Sample,
  summarize,
} from './report.js'

function sample(reqPerS: number, cpuS: number | undefined, round = 1): Sample {
  return {
    round,
    load: { requests: reqPerS * 2, reqPerS, p50Ms: 1, p99Ms: 2, socketErrors: 0, badStatuses: 0 },
    cpuS,
    wallS: 2,
    quiet: { kind: 'quiet', waitedS: 0 },
    outsideBusyPctOfCore: 0,
  }
}

const runs = (name: string, family: CandidateRuns['family'], reqPerS: number, cpuS?: number): CandidateRuns => ({
  name,
  family,
  samples: [sample(reqPerS, cpuS)],
})

describe('median', () => {
  it('takes the middle value, or the mean of the middle two', () => {
    assert.equal(median([3, 1, 2]), 2)
    assert.equal(median([4, 1, 3, 2]), 2.5)
  })
})

describe('summarize', () => {
  it('derives CPU per 1k requests, cores busy and req/s per core', () => {
    const s = summarize(runs('switchyard', 'switchyard', 10_000, 2))
    assert.equal(s.cpuSPer1k, 0.1) // 2 CPU-s over 20,000 requests
    assert.equal(s.coresBusy, 1) // 2 CPU-s over 2 s
    assert.equal(s.reqPerCore, 10_000)
  })
  it('leaves CPU figures out when there is no process', () => {
    const s = summarize(runs('direct', 'direct', 50_000))
    assert.equal(s.cpuSPer1k, undefined)
    assert.equal(s.reqPerCore, undefined)
  })
})

describe('references and ratios', () => {
  const summaries = [
    runs('direct', 'direct', 100_000),
    runs('switchyard', 'switchyard', 20_000, 2),
    runs('nginx', 'nginx', 80_000, 1.6),
    runs('http-proxy', 'node', 15_000, 2),
    runs('undici-dispatch', 'node', 25_000, 2),
  ].map(summarize)

  it('merges the best Node peer and the bare dispatch when they are the same candidate', () => {
    const refs = references(summaries, undefined)
    assert.deepEqual(
      refs.map((r) => r.roles),
      [['direct'], ['nginx'], ['best-node', 'bare']],
    )
  })
  it('divides the subject by each reference', () => {
    const rs = caseRatios(summaries, ['switchyard'], undefined)
    const nginx = rs.find((r) => r.referenceName === 'nginx')
    assert.equal(nginx?.reqPerS, 0.25)
    assert.equal(nginx?.reqPerCore, 10_000 / 50_000)
  })
  it('adds the one-worker baseline for a scaling case', () => {
    const scaled = [...summaries, summarize(runs('switchyard-2w', 'switchyard', 30_000, 3))]
    const rs = caseRatios(scaled, ['switchyard-2w'], 'switchyard')
    assert.equal(rs.find((r) => r.roles.includes('one-worker'))?.reqPerS, 1.5)
  })
})

describe('layer 4 references and goals', () => {
  const summaries = [
    runs('direct', 'direct', 100_000),
    runs('switchyard-tcp', 'switchyard', 45_000, 2),
    runs('tcp-pipe', 'node', 50_000, 2),
    runs('nginx-stream', 'nginx', 60_000, 1.6),
  ].map(summarize)

  it('takes the TCP pipe as the bare Node floor and the best Node peer', () => {
    const refs = references(summaries, undefined)
    assert.deepEqual(
      refs.map((r) => [r.label, r.roles]),
      [
        ['direct', ['direct']],
        ['nginx-stream', ['nginx']],
        ['tcp-pipe (bare Node TCP pipe, and the best Node peer)', ['best-node', 'bare']],
      ],
    )
  })
  it('checks each goal against its ratio, and flags a reference that did not run', () => {
    const rs = caseRatios(summaries, ['switchyard-tcp'], undefined)
    const goals = checkGoals(rs, 'switchyard-tcp', [
      { against: 'tcp-pipe', minReqPerS: 0.9 },
      { against: 'nginx-stream', minReqPerS: 0.8 },
      { against: 'haproxy-tcp', minReqPerS: 0.8 },
    ])
    assert.deepEqual(
      goals.map((g) => g.reqPerS),
      [0.9, 0.75, undefined],
    )
  })
})

describe('layerRows', () => {
  it('reports µs per request and throughput against the bare dispatch', () => {
    const rows = layerRows(
      [
        runs('undici-dispatch', 'node', 25_000, 2),
        runs('switchyard-nolog', 'switchyard', 20_000, 2),
        runs('switchyard', 'switchyard', 16_000, 2),
      ].map(summarize),
    )
    assert.ok(rows !== undefined)
    assert.deepEqual(
      rows.map((r) => Math.round(r.cpuUs ?? 0)),
      [40, 50, 63],
    )
    assert.equal(rows[2]?.pctOfBare, 64)
    assert.equal(Math.round(rows[2]?.changePct ?? 0), -20)
  })
  it('is undefined unless all three layers ran', () => {
    assert.equal(layerRows([summarize(runs('switchyard', 'switchyard', 1, 1))]), undefined)
  })
})

describe('pairedRatios', () => {
  const rounds = (name: string, perRound: readonly number[]): CandidateRuns => ({
    name,
    family: 'switchyard',
    samples: perRound.map((r, i) => sample(r, 2, i + 1)),
  })
  it('divides each round by the same round of the base, and spreads the ratios', () => {
    const p = pairedRatios(
      [rounds('switchyard', [9_900, 10_000, 10_500]), rounds('switchyard-base', [10_000, 10_000, 10_000])],
      'switchyard',
      'switchyard-base',
    )
    assert.ok(p !== undefined)
    assert.deepEqual(p.reqPerSByRound, [0.99, 1, 1.05])
    assert.deepEqual(p.reqPerS, { median: 1, min: 0.99, max: 1.05 })
    // The same CPU-seconds over more requests: less CPU per request.
    assert.ok(Math.abs((p.cpuPerReq?.min ?? 0) - 1 / 1.05) < 1e-9)
  })
  it('is undefined unless both ran', () => {
    assert.equal(pairedRatios([rounds('switchyard', [1])], 'switchyard', 'switchyard-base'), undefined)
  })
})

describe('parseHey', () => {
  const text = `
Summary:
  Total:	2.0102 secs
  Requests/sec:	101.9807

Latency distribution:
  10% in 0.0004 secs
  50% in 0.0006 secs
  99% in 0.0058 secs

Status code distribution:
  [200]	200 responses
  [502]	5 responses

Error distribution:
  [3]	Get http://127.0.0.1:1/: dial tcp: connection refused
`
  it('reads percentiles in ms, counts responses, bad statuses and errors', () => {
    const r = parseHey(text)
    assert.equal(r.requests, 205)
    assert.equal(r.badStatuses, 5)
    assert.equal(r.socketErrors, 3)
    assert.ok(Math.abs(r.p50Ms - 0.6) < 1e-9)
    assert.ok(Math.abs(r.p99Ms - 5.8) < 1e-9)
  })
  it('throws on output without a summary', () => {
    assert.throws(() => parseHey('nothing here'), /unexpected hey output/)
  })
})

describe('docs sections', () => {
  const doc = 'a\n<!-- b -->\nold\n<!-- e -->\nz\n'
  it('extracts and replaces the marked text, markers included', () => {
    assert.equal(extractSection(doc, '<!-- b -->', '<!-- e -->'), '<!-- b -->\nold\n<!-- e -->')
    const out = replaceSection(doc, '<!-- b -->', '<!-- e -->', '<!-- b -->new<!-- e -->', () => 'fallback')
    assert.equal(out, 'a\n<!-- b -->new<!-- e -->\nz\n')
  })
  it('falls back when the markers are missing', () => {
    assert.equal(extractSection('plain', '<!-- b -->', '<!-- e -->'), undefined)
    assert.equal(
      replaceSection('plain', '<!-- b -->', '<!-- e -->', 's', (t, s) => `${t}+${s}`),
      'plain+s',
    )
  })
})
