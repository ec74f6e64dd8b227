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
  formatDocsMd,
  formatText,
  layerRows,
  median,
  pairedRatios,
  type RunReport,
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

const runs = (
  name: string,
  family: CandidateRuns['family'],
  reqPerS: number,
  cpuS?: number,
  node: string | undefined = family === 'switchyard' || family === 'node' ? 'node20' : undefined,
): CandidateRuns => ({
  name,
  candidate: name.replace(/@.*$/, ''),
  family,
  node,
  engine: undefined,
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
    const rs = caseRatios(scaled, ['switchyard-2w'], { 'switchyard-2w': 'switchyard' })
    assert.equal(rs.find((r) => r.roles.includes('one-worker'))?.reqPerS, 1.5)
  })
})

describe('references under several Nodes', () => {
  const summaries = [
    runs('direct', 'direct', 100_000),
    runs('switchyard@node20', 'switchyard', 20_000, 2, 'node20'),
    runs('switchyard@node24', 'switchyard', 22_000, 2, 'node24'),
    runs('nginx', 'nginx', 80_000, 1.6),
    runs('undici-dispatch@node20', 'node', 25_000, 2, 'node20'),
    runs('undici-dispatch@node24', 'node', 20_000, 2, 'node24'),
    runs('http-proxy@node24', 'node', 30_000, 2, 'node24'),
  ].map(summarize)

  it("take the Node peers under the subject's Node only, and the C servers for both", () => {
    const rs = caseRatios(summaries, ['switchyard@node20', 'switchyard@node24'])
    const of = (subject: string) => rs.filter((r) => r.subject === subject).map((r) => [r.referenceName, r.roles])
    assert.deepEqual(of('switchyard@node20'), [
      ['direct', ['direct']],
      ['nginx', ['nginx']],
      ['undici-dispatch@node20', ['best-node', 'bare']],
    ])
    assert.deepEqual(of('switchyard@node24'), [
      ['direct', ['direct']],
      ['nginx', ['nginx']],
      ['http-proxy@node24', ['best-node']],
      ['undici-dispatch@node24', ['bare']],
    ])
    const bare24 = rs.find((r) => r.subject === 'switchyard@node24' && r.roles.includes('bare'))
    assert.equal(bare24?.reqPerS, 1.1)
    assert.equal(bare24?.referenceCandidate, 'undici-dispatch')
  })
  it('check goals by candidate name, for each Node', () => {
    const rs = caseRatios(summaries, ['switchyard@node20', 'switchyard@node24'])
    const goals = [{ against: 'undici-dispatch', minReqPerS: 1 }]
    assert.deepEqual(
      ['switchyard@node20', 'switchyard@node24'].map((s) => checkGoals(rs, s, goals)[0]?.reqPerS),
      [0.8, 1.1],
    )
  })
  it('build one layer table per Node', () => {
    const layered = [
      runs('undici-dispatch@node20', 'node', 25_000, 2, 'node20'),
      runs('switchyard-nolog@node20', 'switchyard', 20_000, 2, 'node20'),
      runs('switchyard@node20', 'switchyard', 16_000, 2, 'node20'),
      runs('undici-dispatch@node24', 'node', 20_000, 2, 'node24'),
    ].map(summarize)
    assert.deepEqual(
      layerRows(layered, 'node20')?.map((r) => r.name),
      ['undici-dispatch@node20', 'switchyard-nolog@node20', 'switchyard@node20'],
    )
    assert.equal(layerRows(layered, 'node24'), undefined)
  })
})

describe('the engine table in the report', () => {
  const engineRuns = (name: string, family: CandidateRuns['family'], reqPerS: number, engine?: 'native' | 'node') => {
    const node = /@(node\d+)$/.exec(name)?.[1]
    return { ...runs(name, family, reqPerS, 2, node), engine }
  }
  const report: RunReport = {
    date: '2026-12-02',
    command: 'npm run bench -- --engines',
    protocol: 'One run.',
    quick: false,
    machine: { cpus: 2, cpuModel: 'cpu', memoryGiB: 8, node: 'v20.20.2', kernel: 'Linux', tools: {} },
    backends: 'nginx',
    elapsedS: 1,
    plannedS: 1,
    defaultPlannedS: 1,
    enginesPlannedS: 1_200,
    defaultEngine: 'node',
    engineTwins: [{ name: 'switchyard-node', twin: 'switchyard' }],
    nodes: [
      { label: 'node20', version: 'v20.20.2', file: '/a/node', nativeParser: { ok: true } },
      { label: 'node24', version: 'v24.22.3', file: '/b/node', nativeParser: { ok: false, reason: 'no binding' } },
    ],
    candidates: [],
    cases: [
      {
        kind: 'measured',
        name: 'small-50',
        title: 'small',
        load: 'throughput',
        loadCommand: 'wrk',
        loadVariants: [],
        subjects: ['switchyard@node20', 'switchyard@node24', 'switchyard-native@node20', 'switchyard-native@node24'],
        oneWorker: {},
        layers: false,
        runs: [
          engineRuns('switchyard@node20', 'switchyard', 20_000, 'node'),
          engineRuns('switchyard@node24', 'switchyard', 21_000, 'node'),
          engineRuns('switchyard-native@node20', 'switchyard', 39_000, 'native'),
          engineRuns('switchyard-native@node24', 'switchyard', 42_000, 'native'),
          engineRuns('nginx', 'nginx', 80_000),
          engineRuns('undici-dispatch@node20', 'node', 30_000),
          engineRuns('undici-dispatch@node24', 'node', 30_000),
        ],
        skipped: [],
        notes: [],
        rate: undefined,
        note: undefined,
        goals: [],
      },
    ],
  }
  it('puts both engines and both Nodes in one table, with the targets checked', () => {
    const md = formatDocsMd(report, 'bench/results/x.md', undefined)
    const table = md.split('### Engines and Node versions')[1]?.split('###')[0] ?? ''
    const rows = table.split('\n').filter((l) => l.startsWith('| small-50'))
    assert.deepEqual(
      rows.map((l) => l.split(' | ').slice(1, 3)),
      [
        ['native', 'node20'],
        ['native', 'node24'],
        ['node (default)', 'node20'],
        ['node (default)', 'node24'],
      ],
    )
    assert.match(table, /switchyard-node is not run: its engine, node, is the default/)
    assert.match(table, /under node24 \(v24\.22\.3\) the native engine's parser fails its self-test \(no binding\)/)
    assert.match(md, /### Targets \(issue 12\)/)
    assert.match(
      md,
      /\| small body, 50 connections, 1 worker: ≥ 1\.3× bare undici dispatch \(stretch 1\.6×\) \| node24 \| 1\.400×: met \| 0\.700×: missed \|/,
    )
    assert.match(md, /about 20 minutes/)
  })
  it('prints the same table and targets on stdout', () => {
    const text = formatText(report)
    assert.match(text, /== engines and Nodes \(node20 = v20\.20\.2, node24 = v24\.22\.3\)/)
    assert.match(text, /== targets \(issue 12\)/)
  })
  it('leaves the engine sections out of a run without engines', () => {
    const plain: RunReport = { ...report, cases: [] }
    assert.doesNotMatch(formatDocsMd(plain, 'x', undefined), /Engines and Node versions/)
  })
  it('carries the hand-written engine notes over, or says they are missing', () => {
    const notes = '<!-- engine-notes begin -->\nThe parser: the binding.\n<!-- engine-notes end -->'
    const md = formatDocsMd(report, 'x', undefined, undefined, undefined, notes)
    assert.match(md, /## The HTTP\/1\.1 engines: notes\n\n<!-- engine-notes begin -->\nThe parser: the binding\./)
    assert.match(formatDocsMd(report, 'x', undefined), /<!-- engine-notes begin -->\nNot written yet/)
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
    candidate: name,
    family: 'switchyard',
    node: 'node20',
    engine: undefined,
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
