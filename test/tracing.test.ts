/**
 * W3C trace context through a real load balancer to real backends, and span export over OTLP/HTTP to
 * a real receiver (a node:http server taking POST /v1/traces, as a collector does): the upstream's
 * `traceparent`, the access log's ids and the exported span must tell the same story.
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { connect } from 'node:http2'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { deadPort, listenLocal, startBackend, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736'
const PARENT = '00f067aa0ba902b7'
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/

/** What the backend saw of the trace headers, per request path. */
interface Seen {
  readonly traceparent: string | string[] | undefined
  readonly tracestate: string | string[] | undefined
}

interface OtlpValue {
  stringValue?: string
  intValue?: number | string
  boolValue?: boolean
}
interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  traceState?: string
  attributes: { key: string; value: OtlpValue }[]
  status?: { code?: number; message?: string }
  startTimeUnixNano: string
  endTimeUnixNano: string
}

/** An OTLP/HTTP receiver: collects the spans of every JSON export it is sent. */
async function startReceiver() {
  const spans: OtlpSpan[] = []
  const resources: Record<string, unknown>[] = []
  const contentTypes: string[] = []
  const server: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end()
        return
      }
      contentTypes.push(String(req.headers['content-type']))
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans: {
          resource: { attributes: { key: string; value: OtlpValue }[] }
          scopeSpans: { spans: OtlpSpan[] }[]
        }[]
      }
      for (const rs of body.resourceSpans) {
        resources.push(Object.fromEntries(rs.resource.attributes.map((a) => [a.key, otlpValue(a.value)])))
        for (const ss of rs.scopeSpans) spans.push(...ss.spans)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  const port = await listenLocal(server)
  return {
    spans,
    resources,
    contentTypes,
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

function otlpValue(v: OtlpValue): unknown {
  if (v.stringValue !== undefined) return v.stringValue
  if (v.intValue !== undefined) return Number(v.intValue)
  return v.boolValue
}

const attrs = (s: OtlpSpan) => Object.fromEntries(s.attributes.map((a) => [a.key, otlpValue(a.value)]))

describe('W3C trace context', () => {
  let backend: TestBackend
  const seen = new Map<string, Seen>()
  before(async () => {
    backend = await startBackend('b1', (req, res) => {
      seen.set(req.url ?? '', { traceparent: req.headers.traceparent, tracestate: req.headers.tracestate })
      req.resume()
      res.end('ok')
    })
  })
  after(() => backend.close())

  async function start(tracing: Record<string, unknown> | undefined) {
    const mem = memoryLogger('info')
    const lb = createLoadBalancer(
      {
        ...(tracing === undefined ? {} : { tracing }),
        listeners: [{ name: 'main', listen: '127.0.0.1:0', http2: true, routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [backend.url] }],
      },
      { logger: mem.logger },
    )
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    const get = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${url}${path}`, { headers })
      assert.equal(r.status, 200)
      await r.text()
    }
    const access = async () => {
      await lb.close({ gracePeriodMs: 500 })
      return new Map(mem.lines.filter((l) => l.type === 'access').map((l) => [String(l.url), l] as const))
    }
    /** A GET over HTTP/2 (prior knowledge), with lower-case header names as HTTP/2 has them. */
    const getH2 = (path: string, headers: Record<string, string>) =>
      new Promise<void>((resolve, reject) => {
        const session = connect(url)
        session.on('error', reject)
        const stream = session.request({ ':path': path, ...headers })
        stream.on('response', (h) => assert.equal(h[':status'], 200))
        stream.resume()
        stream.on('end', () => session.close(() => resolve()))
        stream.on('error', reject)
      })
    return { lb, get, getH2, access }
  }

  it('passes traceparent and tracestate through untouched when tracing is off, even an invalid one', async () => {
    const { get, access } = await start(undefined)
    await get('/off/valid', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'a=1,b=2' })
    await get('/off/invalid', { traceparent: 'not-a-traceparent', tracestate: 'x=y' })
    await get('/off/none')
    assert.deepEqual(seen.get('/off/valid'), { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'a=1,b=2' })
    assert.deepEqual(seen.get('/off/invalid'), { traceparent: 'not-a-traceparent', tracestate: 'x=y' })
    assert.deepEqual(seen.get('/off/none'), { traceparent: undefined, tracestate: undefined })
    const lines = await access()
    assert.equal('traceId' in lines.get('/off/valid')!, false)
  })

  it('joins a valid trace as a child span, with the ids in the access log', async () => {
    const { get, getH2, access } = await start({ enabled: true })
    await get('/on/sampled', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=opaque' })
    await get('/on/unsampled', { traceparent: `00-${TRACE}-${PARENT}-00` })
    await getH2('/on/h2', { traceparent: `00-${TRACE}-${PARENT}-01` })
    const lines = await access()
    assert.equal(lines.get('/on/h2')?.protocol, 'h2')
    for (const [path, flags] of [
      ['/on/sampled', '01'],
      ['/on/unsampled', '00'],
      ['/on/h2', '01'],
    ] as const) {
      const m = TRACEPARENT.exec(String(seen.get(path)?.traceparent))
      assert.ok(m, `${path}: ${seen.get(path)?.traceparent}`)
      assert.equal(m[1], TRACE, 'the same trace')
      assert.notEqual(m[2], PARENT, "the caller's span is not the upstream's parent")
      assert.equal(m[3], flags, 'the caller decided sampling')
      assert.equal(lines.get(path)?.traceId, TRACE)
      assert.equal(lines.get(path)?.spanId, m[2], "the access log names Switchyard's span, the upstream's parent")
    }
    assert.equal(seen.get('/on/sampled')?.tracestate, 'vendor=opaque', 'tracestate passes untouched')
  })

  it('starts a trace when there is none or it is invalid, sampled by sampleRatio, dropping a stray tracestate', async () => {
    const all = await start({ enabled: true })
    await all.get('/start/none')
    await all.get('/start/invalid', { traceparent: `00-${TRACE.toUpperCase()}-${PARENT}-01`, tracestate: 'x=y' })
    const lines = await all.access()
    const ids = new Set<string>()
    for (const path of ['/start/none', '/start/invalid']) {
      const m = TRACEPARENT.exec(String(seen.get(path)?.traceparent))
      assert.ok(m, `${path}: ${seen.get(path)?.traceparent}`)
      assert.notEqual(m[1], TRACE.toLowerCase())
      assert.equal(m[3], '01')
      assert.equal(lines.get(path)?.traceId, m[1])
      assert.equal(lines.get(path)?.spanId, m[2])
      ids.add(m[1]!)
    }
    assert.equal(ids.size, 2, 'a new trace each time')
    assert.equal(seen.get('/start/invalid')?.tracestate, undefined, 'the state of a broken trace is dropped')

    const none = await start({ enabled: true, sampleRatio: 0 })
    await none.get('/start/unsampled')
    await none.access()
    assert.match(String(seen.get('/start/unsampled')?.traceparent), /-00$/)
  })
})

describe('OTLP span export', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>
  let backend: TestBackend
  const seen = new Map<string, string | undefined>()
  before(async () => {
    receiver = await startReceiver()
    backend = await startBackend('b1', (req, res) => {
      seen.set(req.url ?? '', req.headers.traceparent as string | undefined)
      req.resume()
      res.writeHead(req.url?.includes('fail') ? 503 : 200).end('ok')
    })
  })
  after(async () => {
    await receiver.close()
    await backend.close()
  })

  it('exports one span per request, matching the upstream traceparent and the access log', async () => {
    const dead = await deadPort()
    const mem = memoryLogger('info')
    const lb: LoadBalancer = createLoadBalancer(
      {
        tracing: { enabled: true, serviceName: 'edge', otlp: { endpoint: receiver.endpoint, delay: '60s' } },
        listeners: [
          {
            name: 'main',
            listen: '127.0.0.1:0',
            routes: [
              { name: 'api', match: { pathPrefix: '/api/' }, pool: 'web' },
              { match: { pathPrefix: '/retry/' }, pool: 'flaky' },
            ],
          },
        ],
        pools: [
          { name: 'web', servers: [{ url: backend.url, name: 'b1' }] },
          {
            name: 'flaky',
            balance: 'round-robin',
            // The dead server first: round-robin starts there, and the retry goes to b1.
            servers: [
              { url: `http://127.0.0.1:${dead}`, name: 'dead' },
              { url: backend.url, name: 'b1' },
            ],
            retries: { attempts: 1 },
          },
        ],
      },
      { logger: mem.logger },
    )
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    const call = async (path: string, headers: Record<string, string> = {}) => {
      const r = await fetch(`${url}${path}`, { headers: { 'user-agent': 'tracing-test', ...headers } })
      await r.text()
      return r.status
    }
    assert.equal(
      await call('/api/joined?secret=1', { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'k=v' }),
      200,
    )
    assert.equal(await call('/retry/x'), 200)
    assert.equal(await call('/api/fail'), 503)
    assert.equal(await call('/nowhere'), 404)
    assert.equal(await call('/api/unsampled', { traceparent: `00-${TRACE}-${PARENT}-00` }), 200)
    // The batch waits for `delay` (60 s): only the shutdown's flush sends it.
    assert.equal(receiver.spans.length, 0)
    await lb.close({ gracePeriodMs: 500 })
    assert.equal(receiver.spans.length, 4, 'sampled requests only')
    assert.match(receiver.contentTypes[0]!, /^application\/json/)
    assert.equal(receiver.resources[0]?.['service.name'], 'edge')

    const access = new Map(mem.lines.filter((l) => l.type === 'access').map((l) => [String(l.url), l] as const))
    const spanOf = (path: string) => {
      const line = access.get(path)
      assert.ok(line, `an access line for ${path}`)
      const span = receiver.spans.find((s) => s.spanId === line.spanId)
      assert.ok(span, `an exported span for ${path}`)
      assert.equal(span.traceId, line.traceId)
      return span
    }

    const joined = spanOf('/api/joined?secret=1')
    const up = TRACEPARENT.exec(String(seen.get('/api/joined?secret=1')))
    assert.ok(up)
    assert.equal(joined.traceId, TRACE, "the caller's trace")
    assert.equal(up[1], TRACE, 'the upstream saw the same trace')
    assert.equal(up[2], joined.spanId, "the upstream's parent is the exported span")
    assert.equal(joined.parentSpanId, PARENT, "the span's parent is the caller's span")
    assert.equal(joined.traceState, 'k=v')
    assert.equal(joined.name, 'GET api')
    assert.equal(joined.kind, 2, 'SPAN_KIND_SERVER')
    const a = attrs(joined)
    assert.equal(a['http.request.method'], 'GET')
    assert.equal(a['url.path'], '/api/joined', 'the path without its query')
    assert.equal(a['url.scheme'], 'http')
    assert.equal(a['http.response.status_code'], 200)
    assert.equal(a['network.protocol.version'], '1.1')
    assert.equal(a['client.address'], '127.0.0.1')
    assert.equal(a['server.address'], '127.0.0.1')
    assert.equal(a['user_agent.original'], 'tracing-test')
    assert.equal(a['switchyard.route'], 'api')
    assert.equal(a['switchyard.pool'], 'web')
    assert.equal(a['switchyard.upstream.server'], 'b1')
    assert.equal(a['switchyard.upstream.address'], `127.0.0.1:${backend.port}`)
    assert.equal(a['switchyard.request_id'], access.get('/api/joined?secret=1')?.requestId)
    assert.equal('http.request.resend_count' in a, false)
    assert.ok(BigInt(joined.endTimeUnixNano) >= BigInt(joined.startTimeUnixNano))

    const retried = spanOf('/retry/x')
    assert.equal(retried.parentSpanId ?? '', '', 'a trace started here: a root span')
    assert.equal(retried.name, 'GET', 'an unnamed route')
    assert.equal(attrs(retried)['http.request.resend_count'], 1)
    assert.equal(attrs(retried)['switchyard.route'], '#1')
    assert.equal(attrs(retried)['switchyard.upstream.server'], 'b1')
    assert.equal(TRACEPARENT.exec(String(seen.get('/retry/x')))?.[2], retried.spanId)

    const failed = spanOf('/api/fail')
    assert.equal(failed.status?.code, 2, 'STATUS_CODE_ERROR for a 5xx')
    assert.equal(attrs(failed)['error.type'], '503')

    const unrouted = spanOf('/nowhere')
    assert.equal(attrs(unrouted)['switchyard.code'], 'SWY_NO_ROUTE')
    assert.equal(attrs(unrouted)['error.type'], 'SWY_NO_ROUTE')
    assert.equal(unrouted.status?.code ?? 0, 0, 'a 4xx is not the span of a server in error')
    assert.equal('switchyard.route' in attrs(unrouted), false)
  })

  it('flushes on reload, and moves to the endpoint a reload names', async () => {
    const second = await startReceiver()
    const config = (endpoint: string) => ({
      tracing: { enabled: true, otlp: { endpoint, delay: '60s' } },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [backend.url] }],
    })
    const before = receiver.spans.length
    const lb = createLoadBalancer(config(receiver.endpoint))
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    try {
      await (await fetch(`${url}/gen1`)).text()
      await lb.reload(config(second.endpoint))
      // The old export is flushed at the reload (its delay is 60 s).
      await waitFor(() => receiver.spans.length === before + 1, 'the first span at the first receiver')
      await (await fetch(`${url}/gen2`)).text()
      await lb.reload(config(second.endpoint))
      // Same settings: the same export, flushed at the reload.
      await waitFor(() => second.spans.length === 1, 'the second span at the second receiver')
      assert.equal(attrs(second.spans[0]!)['url.path'], '/gen2')
    } finally {
      await lb.close({ gracePeriodMs: 500 })
      await second.close()
    }
    assert.equal(receiver.spans.length, before + 1)
  })

  it('logs once when exports fail, and keeps serving', async () => {
    const dead = await deadPort()
    const mem = memoryLogger('info')
    const lb = createLoadBalancer(
      {
        tracing: {
          enabled: true,
          otlp: { endpoint: `http://127.0.0.1:${dead}/v1/traces`, delay: '20ms', timeout: '2s' },
        },
        listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [backend.url] }],
      },
      { logger: mem.logger },
    )
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    const failures = () => mem.lines.filter((l) => String(l.msg).startsWith('OTLP span export'))
    try {
      await (await fetch(`${url}/a`)).text()
      await waitFor(() => failures().length > 0, 'the export failure logged')
      const r = await fetch(`${url}/b`)
      assert.equal(r.status, 200)
      await r.text()
    } finally {
      await lb.close({ gracePeriodMs: 500 })
    }
    assert.equal(failures().length, 1, 'one line for the change of state, not one per export')
    assert.equal(failures()[0]?.level, 40)
  })
})
