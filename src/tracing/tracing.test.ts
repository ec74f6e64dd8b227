// W3C trace context: what a traceparent must look like to be taken, what is made, and what the
// forwarded head keeps (tracer.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scanRequestHead } from '../l7/headers.js'
import { formatTraceparent, newTraceparent, parseTraceparent } from './context.js'
import { Tracing } from './tracer.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const VALID = `00-${TRACE}-${PARENT}-01`

describe('traceparent', () => {
  it('reads a valid version 00 value, sampled or not', () => {
    assert.deepEqual(parseTraceparent(VALID), { traceId: TRACE, parentId: PARENT, sampled: true })
    assert.deepEqual(parseTraceparent(`00-${TRACE}-${PARENT}-00`), { traceId: TRACE, parentId: PARENT, sampled: false })
    // Flags other than sampled are ignored, not refused.
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-03`)?.sampled, true)
    assert.equal(parseTraceparent(`00-${TRACE}-${PARENT}-02`)?.sampled, false)
  })

  it('reads a later version by its version 00 fields, and what follows a dash', () => {
    assert.equal(parseTraceparent(`01-${TRACE}-${PARENT}-01`)?.traceId, TRACE)
    assert.equal(parseTraceparent(`cc-${TRACE}-${PARENT}-01-what-comes-next`)?.parentId, PARENT)
    assert.equal(parseTraceparent(`cc-${TRACE}-${PARENT}-01x`), undefined)
  })

  it('refuses every invalid form (the trace is restarted)', () => {
    const invalid = [
      '',
      'garbage',
      `ff-${TRACE}-${PARENT}-01`, // version ff is invalid
      `0g-${TRACE}-${PARENT}-01`,
      `00-${TRACE}-${PARENT}-01-extra`, // version 00 is exactly 55 characters
      `00-${TRACE}-${PARENT}-1`,
      `00-${TRACE.toUpperCase()}-${PARENT}-01`, // upper-case hex
      `00-${'0'.repeat(32)}-${PARENT}-01`, // all-zero trace id
      `00-${TRACE}-${'0'.repeat(16)}-01`, // all-zero parent id
      `00_${TRACE}-${PARENT}-01`,
      `00-${TRACE}_${PARENT}-01`,
      `00-${TRACE}-${PARENT}_01`,
      `00-${TRACE}-${PARENT}-0x`,
      ` 00-${TRACE}-${PARENT}-0`,
      `00-${TRACE.slice(1)}z-${PARENT}-01`,
    ]
    for (const v of invalid) assert.equal(parseTraceparent(v), undefined, JSON.stringify(v))
  })

  it('makes version 00 values with random, non-zero ids that read back', () => {
    const traces = new Set<string>()
    const spans = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const sampled = i % 2 === 0
      const fresh = parseTraceparent(newTraceparent(undefined, sampled))
      assert.ok(fresh)
      assert.equal(fresh.sampled, sampled)
      traces.add(fresh.traceId)
      spans.add(fresh.parentId)
      const child = parseTraceparent(newTraceparent(fresh.traceId, !sampled))
      assert.equal(child?.traceId, fresh.traceId, 'a child keeps the trace id')
      assert.equal(child?.sampled, !sampled)
      assert.notEqual(child?.parentId, fresh.parentId)
      spans.add(child?.parentId ?? '')
    }
    assert.equal(traces.size, 2000)
    assert.equal(spans.size, 4000)
    assert.equal(formatTraceparent(TRACE, PARENT, false), `00-${TRACE}-${PARENT}-00`)
  })
})

/** A forwarded head of raw headers, as strict llhttp read them (all checked). */
function head(raw: string[]) {
  return scanRequestHead(['Host', 'a.example', ...raw], 'x-request-id', true)
}

const settings = (sampleRatio = 1) => ({ sampleRatio, serviceName: 'switchyard', otlp: undefined })

describe('Tracing.begin', () => {
  it("joins a valid trace: same trace id, a new span in place of the caller's, flags and tracestate kept", () => {
    for (const flags of ['01', '00']) {
      const h = head(['TraceParent', `00-${TRACE}-${PARENT}-${flags}`, 'tracestate', 'k=v', 'accept', '*/*'])
      const t = new Tracing(settings(), undefined).begin(h, performance.now())
      assert.equal(t.traceId, TRACE)
      assert.notEqual(t.spanId, PARENT)
      assert.equal(t.sampled, flags === '01')
      assert.equal(t.header, `00-${TRACE}-${t.spanId}-${flags}`)
      assert.deepEqual(h.headers, ['TraceParent', t.header, 'tracestate', 'k=v', 'accept', '*/*'])
      assert.equal(h.checked, 6, 'a valid value in place of a valid value: all still checked')
    }
  })

  it('starts a trace when there is none, or an invalid one, and drops the tracestate of a broken trace', () => {
    const cases: [raw: string[], checked: number][] = [
      [[], 4],
      [['traceparent', 'nonsense', 'tracestate', 'k=v'], 0],
      [['traceparent', VALID, 'traceparent', VALID], 0], // more than one is invalid
      [['tracestate', 'orphan=1'], 0],
    ]
    for (const [raw, checked] of cases) {
      const h = head([...raw, 'accept', '*/*'])
      const t = new Tracing(settings(), undefined).begin(h, performance.now())
      assert.notEqual(t.traceId, TRACE)
      assert.deepEqual(parseTraceparent(t.header), { traceId: t.traceId, parentId: t.spanId, sampled: true })
      assert.deepEqual(h.headers, ['accept', '*/*', 'traceparent', t.header], JSON.stringify(raw))
      // Entries moved by a removal are no longer counted as checked; an addition after checked ones is.
      assert.equal(h.checked, checked, JSON.stringify(raw))
    }
  })

  it('adds its traceparent unchecked after entries that are not known valid', () => {
    const h = scanRequestHead(['Host', 'a', 'accept', '*/*'], 'x-request-id', false)
    const t = new Tracing(settings(), undefined).begin(h, performance.now())
    assert.deepEqual(h.headers, ['accept', '*/*', 'traceparent', t.header])
    assert.equal(h.checked, 0)
  })

  it('marks new traces sampled by sampleRatio', () => {
    const never = new Tracing(settings(0), undefined)
    const half = new Tracing(settings(0.5), undefined)
    let sampled = 0
    for (let i = 0; i < 1000; i++) {
      assert.equal(never.begin(head([]), 0).sampled, false)
      if (half.begin(head([]), 0).sampled) sampled++
    }
    // Binomial(1000, 0.5): outside 350..650 with a probability below 1e-20.
    assert.ok(sampled > 350 && sampled < 650, `${sampled} of 1000 sampled`)
    // A parent's decision wins over the ratio.
    assert.equal(never.begin(head(['traceparent', VALID]), 0).sampled, true)
  })
})
