/**
 * Config unions own their fields: a tcp listener has no HTTP settings, a pool that only tcp listeners
 * use has none either, each sticky mode and health check type takes only its own keys, and a bad
 * union value is answered with that union's own options. Real YAML text, exact messages and positions.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatIssue, parseConfigText } from './index.js'

function problems(text: string): string[] {
  const r = parseConfigText(text, 'sy.yaml', {})
  assert.equal(r.ok, false, 'expected the config to be rejected')
  return r.ok ? [] : r.issues.map(formatIssue)
}

function accepted(text: string) {
  const r = parseConfigText(text, 'sy.yaml', {})
  assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
  return r.config
}

describe('tcp listeners own their fields', () => {
  it('rejects the HTTP settings forwarded, requestId, timeouts.total, timeouts.requestHeaders and http2', () => {
    const bad = `listeners:
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    forwarded: { xForwarded: false }
    requestId:
      header: x-trace
    timeouts: { idle: 30m, total: 5s, requestHeaders: 1s }
    http2: true
    routes: [{ pool: p }]
pools: [{ name: p, servers: [tcp://127.0.0.1:5432] }]
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:5:5: listeners[0].forwarded: expected no `forwarded` for protocol tcp (only protocol http or https has it)',
      'sy.yaml:6:5: listeners[0].requestId: expected no `requestId` for protocol tcp (only protocol http or https has it)',
      'sy.yaml:8:28: listeners[0].timeouts.total: expected no `timeouts.total` for protocol tcp (only protocol http or https has it)',
      'sy.yaml:8:39: listeners[0].timeouts.requestHeaders: expected no `timeouts.requestHeaders` for protocol tcp (only protocol http or https has it)',
      'sy.yaml:9:5: listeners[0].http2: expected no `http2` for protocol tcp (only protocol http or https has it)',
    ])
  })

  it('keeps the more specific cross-check message where there is one (tls, match)', () => {
    const bad = `listeners:
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    tls: { cert: "", key: "" }
    routes:
      - match: { pathPrefix: / }
        pool: p
pools: [{ name: p, servers: [tcp://127.0.0.1:5432] }]
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:5:10: listeners[0].tls: expected no `tls` section for protocol tcp (only https uses it)',
      // A tcp route matches by TLS server name only.
      'sy.yaml:7:16: listeners[0].routes[0].match.sni: expected a list, found nothing (the key is required)',
      'sy.yaml:7:18: listeners[0].routes[0].match.pathPrefix: expected no `routes.0.match.pathPrefix` for protocol tcp (only protocol http or https has it)',
    ])
  })

  it('normalizes a tcp listener to the one ListenerConfig shape, its HTTP settings at their defaults', () => {
    const c = accepted(`listeners:
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    timeouts: { idle: 30m }
    routes: [{ pool: p }]
pools: [{ name: p, servers: [tcp://127.0.0.1:5432] }]
`)
    const l = c.listeners[0]!
    assert.equal(l.protocol, 'tcp')
    assert.deepEqual(l.timeouts, {
      requestHeadersMs: 10_000,
      idleMs: 30 * 60_000,
      totalMs: 0,
      tunnelIdleMs: 3_600_000,
      tunnelMaxAgeMs: 0,
    })
    assert.equal(l.tls, undefined)
    assert.equal(l.http2, undefined)
    assert.deepEqual(l.forwarded, { xForwarded: true, forwarded: true, trustedProxies: [] })
    assert.deepEqual(l.requestId, { header: 'x-request-id', trustIncoming: true, echo: true })
    assert.equal(l.routes[0]!.pool, 'p')
    assert.equal(l.routes[0]!.match.anyHost, true)
  })

  it('still takes an HTTP listener without a protocol, and lists its own keys for an unknown one', () => {
    assert.deepEqual(
      problems(`listeners:
  - name: web
    listen: 127.0.0.1:0
    colour: blue
    routes: [{ pool: p }]
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    colour: blue
    routes: [{ pool: q }]
pools:
  - { name: p, servers: [http://127.0.0.1:1] }
  - { name: q, servers: [tcp://127.0.0.1:2] }
`),
      [
        'sy.yaml:4:5: listeners[0].colour: unknown key, expected one of name, listen, protocol, engine, tls, http2, routes, access, rateLimit, redirect, respond, headers, securityHeaders, compress, timeouts, limits, paths, slowClients, maxRequestsPerConnection, forwarded, requestId, explain, proxyProtocol',
        'sy.yaml:9:5: listeners[1].colour: unknown key, expected one of name, listen, protocol, routes, timeouts, limits, access, proxyProtocol',
      ],
    )
  })

  it('answers an unknown protocol with the protocols', () => {
    assert.deepEqual(
      problems(`listeners:
  - name: web
    listen: 127.0.0.1:0
    protocol: udp
    routes: [{ pool: p }]
pools: [{ name: p, servers: [http://127.0.0.1:1] }]
`),
      ['sy.yaml:4:15: listeners[0].protocol: expected one of http, https, tcp, found "udp"'],
    )
  })
})

describe('pools that only tcp listeners use', () => {
  it('reject the HTTP-only keys and HTTP sticky modes', () => {
    const bad = `listeners:
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    routes: [{ pool: replicas }]
pools:
  - name: replicas
    servers: [tcp://127.0.0.1:5432]
    sticky: { mode: cookie }
    retries: { attempts: 1 }
    queue: { size: 10 }
    preserveHost: false
    timeouts:
      connect: 2s
      responseHeaders: 5s
      idle: 1m
    connections: { maxPerServer: 10, keepAlive: 1s }
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:9:21: pools[0].sticky.mode: expected mode client-ip in a pool that only tcp listeners use (cookie, header: and app-cookie: need HTTP), found "cookie"',
      'sy.yaml:10:5: pools[0].retries: expected no `retries` in a pool that only tcp listeners use (a TCP connection is not retried)',
      'sy.yaml:11:5: pools[0].queue: expected no `queue` in a pool that only tcp listeners use (a TCP connection that finds every server full is reset, not queued)',
      'sy.yaml:12:5: pools[0].preserveHost: expected no `preserveHost` in a pool that only tcp listeners use (TCP has no Host header)',
      'sy.yaml:15:7: pools[0].timeouts.responseHeaders: expected no `timeouts.responseHeaders` in a pool that only tcp listeners use (TCP has no response head)',
      "sy.yaml:16:7: pools[0].timeouts.idle: expected no `timeouts.idle` in a pool that only tcp listeners use (the tcp listener's own `timeouts.idle` covers both directions)",
      'sy.yaml:17:38: pools[0].connections.keepAlive: expected no `connections.keepAlive` in a pool that only tcp listeners use (TCP connections are not reused)',
    ])
  })

  it('reject sticky header: and app-cookie: modes, and take client-ip', () => {
    const text = (mode: string) => `listeners:
  - name: db
    listen: 127.0.0.1:0
    protocol: tcp
    routes: [{ pool: p }]
pools:
  - name: p
    servers: [tcp://127.0.0.1:5432]
    sticky: { mode: "${mode}" }
`
    assert.deepEqual(problems(text('header:X-User')), [
      'sy.yaml:9:21: pools[0].sticky.mode: expected mode client-ip in a pool that only tcp listeners use (cookie, header: and app-cookie: need HTTP), found "header:X-User"',
    ])
    assert.equal(problems(text('app-cookie:SID')).length, 1)
    assert.deepEqual(accepted(text('client-ip')).pools[0]!.sticky, { mode: 'client-ip' })
  })

  it('a pool that HTTP and tcp listeners share keeps its HTTP settings (for its HTTP requests)', () => {
    const c = accepted(`listeners:
  - name: web
    listen: 127.0.0.1:0
    routes: [{ pool: shared }]
  - name: raw
    listen: 127.0.0.1:0
    protocol: tcp
    routes: [{ pool: shared }]
pools:
  - name: shared
    servers: [http://127.0.0.1:3001]
    sticky: { mode: cookie }
    retries: { attempts: 1 }
    preserveHost: false
    timeouts: { responseHeaders: 5s }
`)
    assert.equal(c.pools[0]!.retries.attempts, 1)
    assert.equal(c.pools[0]!.sticky?.mode, 'cookie')
  })
})

describe('sticky modes own their keys', () => {
  it('takes cookie and secret only with mode cookie, sessions only with app-cookie:NAME', () => {
    const bad = `listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: a }] }
pools:
  - name: a
    servers: [http://127.0.0.1:1]
    sticky:
      mode: client-ip
      secret: 0123456789abcdef0123
      cookie: { name: SID }
  - name: b
    servers: [http://127.0.0.1:1]
    sticky: { mode: "header:X-User", sessions: { ttl: 1m } }
  - name: c
    servers: [http://127.0.0.1:1]
    sticky: { mode: "app-cookie:JSESSIONID", cookie: { ttl: 1m }, sessions: { ttl: 1m } }
  - name: d
    servers: [http://127.0.0.1:1]
    sticky: { mode: cookie, sessions: { maxEntries: 10 } }
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:8:7: pools[0].sticky.secret: expected no `secret` for mode client-ip (only mode cookie has it)',
      'sy.yaml:9:7: pools[0].sticky.cookie: expected no `cookie` for mode client-ip (only mode cookie has it)',
      'sy.yaml:12:38: pools[1].sticky.sessions: expected no `sessions` for mode header:X-User (only mode app-cookie:NAME has it)',
      'sy.yaml:15:46: pools[2].sticky.cookie: expected no `cookie` for mode app-cookie:JSESSIONID (only mode cookie has it)',
      'sy.yaml:18:29: pools[3].sticky.sessions: expected no `sessions` for mode cookie (only mode app-cookie:NAME has it)',
    ])
  })

  it('says nothing about the other keys of a mode that is itself invalid', () => {
    assert.deepEqual(
      problems(`listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: a }] }
pools:
  - name: a
    servers: [http://127.0.0.1:1]
    sticky: { mode: session, secret: 0123456789abcdef0123 }
`),
      [
        'sy.yaml:6:21: pools[0].sticky.mode: expected cookie, client-ip, header:NAME or app-cookie:NAME, found "session"',
      ],
    )
  })
})

describe('health check types own their keys', () => {
  it('rejects the keys of the other type, naming the type that has them', () => {
    const bad = `listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: a }] }
pools:
  - name: a
    servers: [http://127.0.0.1:1]
    healthCheck:
      type: tcp
      path: /healthz
      expectStatus: [200]
      expect: "+PONG"
  - name: b
    servers: [http://127.0.0.1:1]
    healthCheck: { type: http, send: "PING\\r\\n", colour: blue }
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:8:7: pools[0].healthCheck.path: expected no `path` for type tcp (only type http has it)',
      'sy.yaml:9:7: pools[0].healthCheck.expectStatus: expected no `expectStatus` for type tcp (only type http has it)',
      'sy.yaml:13:32: pools[1].healthCheck.send: expected no `send` for type http (only type tcp has it)',
      'sy.yaml:13:50: pools[1].healthCheck.colour: unknown key, expected one of type, method, path, host, expectStatus, expectBody, interval, unhealthyInterval, timeout, rise, fall, jitter, port',
    ])
  })

  it('answers an unknown or missing type with the check types, not the balancing algorithms', () => {
    const bad = `listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: a }] }
pools:
  - name: a
    servers: [http://127.0.0.1:1]
    healthCheck: { type: thrift }
  - name: b
    servers: [http://127.0.0.1:1]
    healthCheck: { path: /healthz }
  - name: c
    servers: [http://127.0.0.1:1]
    balance: { algorithm: fastest }
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:6:26: pools[0].healthCheck.type: expected one of http, tcp, grpc, found "thrift"',
      'sy.yaml:9:18: pools[1].healthCheck.type: expected one of http, tcp, grpc, found nothing (the key is required)',
      'sy.yaml:12:27: pools[2].balance.algorithm: expected one of round-robin, weighted-round-robin, least-connections, least-request, peak-ewma, random, ip-hash, ring-hash, maglev, found "fastest"',
    ])
  })
})
