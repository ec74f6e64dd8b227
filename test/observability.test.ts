// The access log and the Prometheus exposition, read back from a real load balancer in front of a
// real backend.
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, describe, it } from 'node:test'
import { pino } from 'pino'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { simpleConfig } from './helpers/lb.js'

describe('access log and metrics', () => {
  let backend: TestBackend
  let lb: LoadBalancer
  let url: string
  const lines: string[] = []

  before(async () => {
    backend = await startBackend('b1', (req, res) => {
      req.resume()
      const status = req.url === '/missing' ? 404 : 200
      res.writeHead(status, { 'content-type': 'text/plain' })
      res.end('0123456789')
    })
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString().split('\n').filter(Boolean))
        done()
      },
    })
    const logger = pino({ base: { name: 'switchyard' }, formatters: { level: (label) => ({ level: label }) } }, sink)
    lb = createLoadBalancer(simpleConfig([backend.url]), { logger })
    await lb.start()
    url = `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
  })

  after(async () => {
    await lb.close({ gracePeriodMs: 1000 })
    await backend.close()
  })

  it('writes one JSON line per request, escaped, with every phase, flushed at close', async () => {
    const id = 'quote"and\\backslash'
    assert.equal((await fetch(`${url}/a?x=1`, { headers: { 'x-request-id': id } })).status, 200)
    assert.equal((await fetch(`${url}/missing`)).status, 404)
    // Access lines are batched: they reach the destination at the latest when the balancer closes.
    await lb.close({ gracePeriodMs: 1000 })
    const access = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.type === 'access')
    assert.equal(access.length, 2)
    const [first, second] = access
    assert.equal(first!.level, 'info')
    assert.equal(first!.name, 'switchyard')
    assert.ok(!Number.isNaN(Date.parse(String(first!.time))))
    assert.equal(first!.requestId, id)
    assert.equal(first!.method, 'GET')
    assert.equal(first!.url, '/a?x=1')
    assert.equal(first!.status, 200)
    assert.equal(first!.listener, 'main')
    assert.equal(first!.pool, 'pool')
    assert.equal(first!.upstream, `127.0.0.1:${backend.port}`)
    assert.equal(first!.client, '127.0.0.1')
    assert.equal(first!.bytesOut, 10)
    assert.equal(typeof first!.ttfbMs, 'number')
    assert.ok((first!.durationMs as number) >= (first!.ttfbMs as number))
    assert.equal(second!.status, 404)
    assert.match(String(second!.requestId), /^[0-9a-f-]{36}$/)
  })

  it('exports request counts and a duration histogram whose buckets add up', async () => {
    const text = await lb.metrics.registry.metrics()
    assert.match(text, /switchyard_http_requests_total\{listener="main",pool="pool",class="2xx"\} 1\n/)
    assert.match(text, /switchyard_http_requests_total\{listener="main",pool="pool",class="4xx"\} 1\n/)
    assert.match(text, /switchyard_http_request_duration_seconds_bucket\{le="\+Inf",listener="main",pool="pool"\} 2\n/)
    assert.match(text, /switchyard_http_request_duration_seconds_count\{listener="main",pool="pool"\} 2\n/)
    assert.match(text, /# TYPE switchyard_http_request_duration_seconds histogram/)
    assert.match(text, /switchyard_upstream_requests_total\{pool="pool",server="127\.0\.0\.1:\d+"\} 2\n/)
    assert.match(text, /switchyard_http_requests_in_flight\{listener="main"\} 0\n/)
    const buckets = [...text.matchAll(/_bucket\{le="([^"]+)",listener="main",pool="pool"\} (\d+)/g)].map((m) =>
      Number(m[2]),
    )
    assert.equal(buckets.length, 15)
    for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i]! >= buckets[i - 1]!, 'cumulative buckets')
  })
})
