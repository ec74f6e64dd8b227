import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { removeHeaders } from './head-draft.js'
import {
  buildTrust,
  downstreamResponseHeaders,
  isValidHost,
  isValidRequestId,
  joinCookies,
  scanRequestHead,
  transferCodingProblem,
  upstreamRequestHeaders,
} from './headers.js'

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
}

/** The upstream headers for a client that sent `raw` (plus `Host: host` first, unless host is undefined). */
function upstream(
  raw: string[],
  p: ReturnType<typeof policy>,
  input: Partial<typeof base> = {},
  host: string | undefined = 'app.test',
): string[] {
  const head = scanRequestHead(host === undefined ? raw : ['Host', host, ...raw], 'x-request-id')
  return upstreamRequestHeaders(head, { ...base, ...input }, p).headers
}

describe('removeHeaders', () => {
  it('removes every pair of the name, in any case, and tells where the first was (entries before it stayed)', () => {
    const flat = ['a', '1', 'X-Gone', '2', 'b', '3', 'x-gone', '4', 'c', '5']
    assert.equal(removeHeaders(flat, 'x-GONE'), 2)
    assert.deepEqual(flat, ['a', '1', 'b', '3', 'c', '5'])
    assert.equal(removeHeaders(flat, 'absent'), -1)
  })
})

describe('upstream request headers', () => {
  it('counts the entries the engine need not check: all when strict llhttp read the client and nothing came between', () => {
    const raw = ['Host', 'app.test', 'Accept', '*/*', 'X-Forwarded-For', '203.0.113.9']
    const strict = scanRequestHead(raw, 'x-request-id', true)
    assert.equal(strict.checked, 2, 'the client entries forwarded as they are')
    const all = upstreamRequestHeaders(strict, base, policy())
    assert.equal(
      all.checked,
      all.headers.length,
      'Host, the request id and the forwarding headers are made of checked values',
    )
    // Another parser read the client: nothing is counted.
    const lax = upstreamRequestHeaders(scanRequestHead(raw, 'x-request-id'), base, policy())
    assert.equal(lax.checked, 0)
    // A filter's header in between, or a Host a filter set: only the client's entries count.
    const filtered = scanRequestHead(raw, 'x-request-id', true)
    filtered.headers.push('x-from-filter', 'v')
    assert.equal(upstreamRequestHeaders(filtered, base, policy()).checked, 2)
    const hosted = scanRequestHead(raw, 'x-request-id', true)
    assert.equal(upstreamRequestHeaders(hosted, { ...base, upstreamHost: 'filter.example' }, policy()).checked, 2)
    const ours = scanRequestHead(raw, 'x-request-id', true)
    const server = upstreamRequestHeaders(
      ours,
      { ...base, upstreamHost: '10.0.0.1:80', upstreamHostChecked: true },
      policy(),
    )
    assert.equal(server.checked, server.headers.length, "the server's own address is Switchyard's value")
  })

  it('removes hop-by-hop headers, Proxy-*, Expect and every header named in Connection', () => {
    const raw = [
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
    const out = pairs(upstream(raw, policy([], false, false)))
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
    const out = Object.fromEntries(pairs(upstream(raw, policy())))
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
    const out = Object.fromEntries(pairs(upstream(raw, policy(['192.0.2.0/24']))))
    assert.equal(out['x-forwarded-for'], '203.0.113.1, 10.1.1.1, 192.0.2.7')
    assert.equal(out['x-forwarded-proto'], 'https')
    assert.equal(out['x-forwarded-host'], 'app.test')
    assert.equal(out.forwarded, 'for=203.0.113.1;proto=https, for=192.0.2.7;proto=http;host=app.test')
  })

  it('quotes IPv6 nodes and hosts with a port in Forwarded (RFC 7239)', () => {
    const out = Object.fromEntries(pairs(upstream([], policy(), { clientIp: '::1' }, 'app.test:8080')))
    assert.equal(out.forwarded, 'for="[::1]";proto=http;host="app.test:8080"')
  })

  it('replaces the incoming request id header with the chosen id', () => {
    const out = pairs(upstream(['X-Request-Id', 'client-id'], policy([], false, false)))
    assert.deepEqual(out, [
      ['host', 'app.test'],
      ['x-request-id', 'rid-1'],
    ])
  })
})

describe('request head scan', () => {
  it('tells header names apart in any case, without confusing names of equal length', () => {
    const head = scanRequestHead(
      [
        'HOST',
        'a.test',
        'Accept', // the length of Expect
        'x',
        'CONTENT-length',
        '5',
        'User-Agent', // the length of Connection and Keep-Alive
        'ua',
        'x-FORWARDED-for',
        '10.0.0.1',
        'X-Forwarded-Fox', // one letter off
        'f',
        'PROXY-Foo',
        'p',
        'Proxy', // too short to be Proxy-*
        'q',
        'X-REQUEST-ID',
        'client-id',
      ],
      'x-request-id',
    )
    assert.equal(head.host, 'a.test')
    assert.equal(head.hasBody, true)
    assert.equal(head.requestId, 'client-id')
    assert.equal(head.xff, '10.0.0.1')
    assert.deepEqual(pairs(head.headers), [
      ['Accept', 'x'],
      ['CONTENT-length', '5'],
      ['User-Agent', 'ua'],
      ['X-Forwarded-Fox', 'f'],
      ['Proxy', 'q'],
    ])
  })

  it('sees a body in chunked requests and in non-zero Content-Length only', () => {
    assert.equal(scanRequestHead(['Transfer-Encoding', 'chunked'], 'x-request-id').hasBody, true)
    assert.equal(scanRequestHead(['Content-Length', '0'], 'x-request-id').hasBody, false)
    assert.equal(scanRequestHead(['Host', 'a'], 'x-request-id').hasBody, false)
  })

  it('reads an HTTP/2 head: :authority is the host (before a Host field), other pseudo-headers are dropped', () => {
    const head = scanRequestHead(
      [':path', '/x', ':method', 'GET', ':authority', 'h2.test', ':scheme', 'https', 'host', 'other', 'accept', '*/*'],
      'x-request-id',
    )
    assert.equal(head.host, 'h2.test')
    assert.deepEqual(pairs(head.headers), [['accept', '*/*']])
  })

  it('joins the Cookie fields of an HTTP/2 request into one (RFC 9113 §8.2.3)', () => {
    const flat = ['cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2', 'cookie', 'c=3']
    joinCookies(flat)
    assert.deepEqual(pairs(flat), [
      ['cookie', 'a=1; b=2; c=3'],
      ['accept', '*/*'],
    ])
    const single = ['cookie', 'a=1']
    joinCookies(single)
    assert.deepEqual(single, ['cookie', 'a=1'])
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
    ]
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

describe('the head checks both HTTP/1.1 engines share', () => {
  it('counts Host fields and joins Transfer-Encoding fields in order', () => {
    const head = scanRequestHead(
      ['Host', 'a.test', 'Transfer-Encoding', 'gzip', 'host', 'b.test', 'transfer-encoding', 'chunked'],
      'x-request-id',
    )
    assert.equal(head.host, 'a.test')
    assert.equal(head.hosts, 2)
    assert.equal(head.transferEncoding, 'gzip,chunked')
    assert.equal(scanRequestHead(['Host', 'a'], 'x-request-id').transferEncoding, undefined)
  })

  it('accepts a Host that is host[:port] (RFC 9112 §3.2, RFC 3986) and nothing else', () => {
    for (const ok of [
      'a.test',
      'A.Test.',
      'a.test:8080',
      'a.test:',
      '192.0.2.1:80',
      '[::1]',
      '[2001:db8::1]:443',
      'x%41y',
      '',
    ])
      assert.ok(isValidHost(ok), ok)
    for (const bad of [
      'evil.test@a.test',
      'a.test, b.test',
      'a b',
      'a.test/path',
      'a.test:80x',
      'a.test:123456',
      'a.test:80:81',
      '[::1',
      '[::1]x',
      '[v1.fe]',
      '[fe80::1%eth0]',
      '[a.test]',
      'x%4',
      'a\\b',
    ])
      assert.ok(!isValidHost(bad), bad)
  })

  it('passes only chunked alone as a request Transfer-Encoding, refusing the rest with 400 or 501', () => {
    const answer = (value: string, http10 = false, length = false) => {
      const p = transferCodingProblem(value, http10, length)
      return p === undefined ? 'ok' : `${p.code}: ${p.message}`
    }
    assert.equal(answer('chunked'), 'ok')
    assert.equal(answer('CHUNKED'), 'ok')
    assert.equal(answer(' chunked\t'), 'ok', 'OWS around the one coding')
    assert.match(answer('chunked', true), /^SWY_BAD_REQUEST: .*HTTP\/1\.0/)
    assert.match(answer('chunked', false, true), /^SWY_BAD_REQUEST: both/)
    assert.match(answer(''), /^SWY_BAD_REQUEST: an empty/)
    assert.match(answer(', chunked'), /^SWY_BAD_REQUEST: an empty/)
    assert.match(answer('chunked, gzip'), /^SWY_BAD_REQUEST: chunked is not the final/)
    assert.match(answer('xchunked'), /^SWY_BAD_REQUEST: chunked is not the final/)
    assert.match(answer('chunked;x=1'), /^SWY_BAD_REQUEST: chunked is not the final/)
    assert.match(answer('chunked,chunked'), /^SWY_BAD_REQUEST: chunked applied more than once/)
    assert.match(answer(';x, chunked'), /^SWY_BAD_REQUEST: a transfer coding that is not a token/)
    assert.match(answer('a b c, chunked'), /^SWY_BAD_REQUEST: a transfer coding that is not a token/)
    assert.equal(answer('gzip, chunked'), 'SWY_NOT_IMPLEMENTED: transfer coding gzip is not implemented')
    assert.equal(
      answer('Identity,gzip;q=1 ,chunked'),
      'SWY_NOT_IMPLEMENTED: transfer coding identity, gzip;q=1 is not implemented',
    )
  })
})
