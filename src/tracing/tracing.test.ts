// W3C trace context: what a traceparent must look like to be taken, what is made, and what the
// forwarded head keeps (tracer.ts).
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { scanRequestHead } from '../l7/headers.js'
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from './context.js'
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
    const ids = new Set<string>()
    for (let i = 0; i < 2000; i++) {
      const t = newTraceId()
      const s = newSpanId()
      assert.match(t, /^[0-9a-f]{32}$/)
      assert.match(s, /^[0-9a-f]{16}$/)
      ids.add(t)
      const v = formatTraceparent(t, s, i % 2 === 0)
      assert.deepEqual(parseTraceparent(v), { traceId: t, parentId: s, sampled: i % 2 === 0 })
    }
    assert.equal(ids.size, 2000)
  })
})

/** A forwarded head of raw headers, as strict llhttp read them (all checked). */
function head(raw: string[]) {
  return scanRequestHead(['Host', 'a.example', ...raw], 'x-request-id', true)
}

const settings = (sampleRatio = 1) => ({ sampleRatio, serviceName: 'switchyard', otlp: undefined })

describe('Tracing.begin', () => {
  it('joins a valid trace: same trace id, a new span, the sampled flag kept, tracestate left in', () => {
    for (const flags of ['01', '00']) {
      const h = head(['TraceParent', `00-${TRACE}-${PARENT}-${flags}`, 'tracestate', 'k=v', 'accept', '*/*'])
      const t = new Tracing(settings(), undefined).begin(h, performance.now())
      assert.equal(t.traceId, TRACE)
      assert.notEqual(t.spanId, PARENT)
      assert.equal(t.sampled, flags === '01')
      assert.equal(t.header, `00-${TRACE}-${t.spanId}-${flags}`)
      assert.deepEqual(h.headers, ['tracestate', 'k=v', 'accept', '*/*'])
      assert.equal(h.checked, 0, 'the entries after the removed one moved: no longer counted as checked')
    }
  })

  it('starts a trace when there is none, or an invalid one, and drops the tracestate of a broken trace', () => {
    const cases: string[][] = [
      [],
      ['traceparent', 'nonsense', 'tracestate', 'k=v'],
      ['traceparent', VALID, 'traceparent', VALID], // more than one is invalid
      ['tracestate', 'orphan=1'],
    ]
    for (const raw of cases) {
      const h = head([...raw, 'accept', '*/*'])
      const t = new Tracing(settings(), undefined).begin(h, performance.now())
      assert.notEqual(t.traceId, TRACE)
      assert.deepEqual(parseTraceparent(t.header), { traceId: t.traceId, parentId: t.spanId, sampled: true })
      assert.deepEqual(h.headers, ['accept', '*/*'], JSON.stringify(raw))
    }
  })

  it('keeps the checked count when nothing before the checked entries moved', () => {
    const h = head(['accept', '*/*'])
    const checked = h.checked
    new Tracing(settings(), undefined).begin(h, performance.now())
    assert.equal(h.checked, checked)
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
