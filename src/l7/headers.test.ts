import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildTrust, downstreamResponseHeaders, isValidRequestId, upstreamRequestHeaders } from './headers.js'

const policy = (trusted: string[] = [], xForwarded = true, forwarded = true) => ({
  xForwarded,
  forwarded,
  ...buildTrust(trusted),
})

function pairs(flat: string[]): [string, string][] {
  const out: [string, string][] = []
  for (let i = 0; i < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!])
  return out
}

const base = {
  clientIp: '192.0.2.7',
  proto: 'http' as const,
  requestId: 'rid-1',
  requestIdHeader: 'x-request-id',
  host: 'app.test',
}

describe('upstream request headers', () => {
  it('removes hop-by-hop headers, Proxy-*, Expect and every header named in Connection', () => {
    const raw = [
      'Host',
      'app.test',
      'Connection',
      'keep-alive, X-Secret, Foo',
      'Keep-Alive',
      'timeout=5',
      'TE',
      'trailers',
      'Trailer',
      'X-T',
      'Transfer-Encoding',
      'chunked',
      'Upgrade',
      'websocket',
      'Proxy-Authorization',
      'Basic x',
      'Proxy-Connection',
      'keep-alive',
      'X-Secret',
      's',
      'foo',
      'f',
      'Expect',
      '100-continue',
      'Accept',
      '*/*',
      'Set-Cookie',
      'a',
      'Cookie',
      'c=1',
    ]
    const out = pairs(upstreamRequestHeaders({ ...base, rawHeaders: raw }, policy([], false, false)))
    assert.deepEqual(out, [
      ['Accept', '*/*'],
      ['Set-Cookie', 'a'],
      ['Cookie', 'c=1'],
      ['host', 'app.test'],
      ['x-request-id', 'rid-1'],
    ])
  })

  it('replaces forwarding headers from an untrusted client', () => {
    const raw = [
      'X-Forwarded-For',
      '6.6.6.6',
      'X-Forwarded-Proto',
      'https',
      'X-Forwarded-Host',
      'evil',
      'Forwarded',
      'for=6.6.6.6',
    ]
    const out = Object.fromEntries(pairs(upstreamRequestHeaders({ ...base, rawHeaders: raw }, policy())))
    assert.deepEqual(out, {
      host: 'app.test',
      'x-request-id': 'rid-1',
      'x-forwarded-for': '192.0.2.7',
      'x-forwarded-proto': 'http',
      'x-forwarded-host': 'app.test',
      forwarded: 'for=192.0.2.7;proto=http;host=app.test',
    })
  })

  it('appends to forwarding headers from a trusted proxy (CIDR), joining repeated ones', () => {
    const raw = [
      'X-Forwarded-For',
      '203.0.113.1',
      'x-forwarded-for',
      '10.1.1.1',
      'X-Forwarded-Proto',
      'https',
      'Forwarded',
      'for=203.0.113.1;proto=https',
    ]
    const out = Object.fromEntries(
      pairs(upstreamRequestHeaders({ ...base, rawHeaders: raw }, policy(['192.0.2.0/24']))),
    )
    assert.equal(out['x-forwarded-for'], '203.0.113.1, 10.1.1.1, 192.0.2.7')
    assert.equal(out['x-forwarded-proto'], 'https')
    assert.equal(out['x-forwarded-host'], 'app.test')
    assert.equal(out.forwarded, 'for=203.0.113.1;proto=https, for=192.0.2.7;proto=http;host=app.test')
  })

  it('quotes IPv6 nodes and hosts with a port in Forwarded (RFC 7239)', () => {
    const out = Object.fromEntries(
      pairs(upstreamRequestHeaders({ ...base, clientIp: '::1', host: 'app.test:8080', rawHeaders: [] }, policy())),
    )
    assert.equal(out.forwarded, 'for="[::1]";proto=http;host="app.test:8080"')
  })

  it('replaces the incoming request id header with the chosen id', () => {
    const out = pairs(
      upstreamRequestHeaders({ ...base, rawHeaders: ['X-Request-Id', 'client-id'] }, policy([], false, false)),
    )
    assert.deepEqual(out, [
      ['host', 'app.test'],
      ['x-request-id', 'rid-1'],
    ])
  })
})

describe('downstream response headers', () => {
  it('removes hop-by-hop headers and keeps repeated Set-Cookie', () => {
    const raw = [
      'Content-Type',
      'text/plain',
      'Connection',
      'close, X-Internal',
      'X-Internal',
      '1',
      'Keep-Alive',
      'timeout=4',
      'Transfer-Encoding',
      'chunked',
      'Set-Cookie',
      'a=1',
      'Set-Cookie',
      'b=2',
      'Proxy-Authenticate',
      'Basic',
    ].map((s) => Buffer.from(s))
    assert.deepEqual(pairs(downstreamResponseHeaders(raw, ['x-request-id', 'r'])), [
      ['Content-Type', 'text/plain'],
      ['Set-Cookie', 'a=1'],
      ['Set-Cookie', 'b=2'],
      ['x-request-id', 'r'],
    ])
  })
})

describe('request ids', () => {
  it('accepts 1-128 visible ASCII characters only', () => {
    assert.ok(isValidRequestId('abc-123_XYZ.~'))
    assert.ok(!isValidRequestId(''))
    assert.ok(!isValidRequestId('has space'))
    assert.ok(!isValidRequestId('x'.repeat(129)))
    assert.ok(!isValidRequestId('caf\u00e9'))
  })
})
