import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatIssue, parseConfigText, validateConfig } from './index.js'

const VALID = `
admin: { listen: 127.0.0.1:9901 }
listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - match: { host: api.example.com, pathPrefix: /v1/ }
        pool: api
      - pool: web
pools:
  - name: web
    balance: round-robin
    servers:
      - http://127.0.0.1:3001
      - { url: http://127.0.0.1:3002, weight: 3 }
  - name: api
    balance: { algorithm: weighted-round-robin }
    servers: [http://127.0.0.1:4001]
    timeouts: { connect: 2s, responseHeaders: 1500ms }
`

function problems(text: string, env: NodeJS.ProcessEnv = {}): string[] {
  const r = parseConfigText(text, 'sy.yaml', env)
  assert.equal(r.ok, false, 'expected the config to be rejected')
  return r.ok ? [] : r.issues.map(formatIssue)
}

describe('config loading', () => {
  it('accepts the documented example and normalizes it', () => {
    const r = parseConfigText(VALID, 'sy.yaml', {})
    assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
    const c = r.config
    assert.equal(c.admin?.port, 9901)
    assert.equal(c.listeners[0]!.port, 8080)
    assert.deepEqual(c.listeners[0]!.routes[0]!.match.hosts, ['api.example.com'])
    assert.equal(c.listeners[0]!.timeouts.requestHeadersMs, 10_000)
    const [web, api] = c.pools
    assert.deepEqual(web!.balance, { algorithm: 'round-robin' })
    assert.deepEqual(
      web!.backends.map((b) => [b.id, b.origin, b.weight]),
      [
        ['127.0.0.1:3001', 'http://127.0.0.1:3001', 1],
        ['127.0.0.1:3002', 'http://127.0.0.1:3002', 3],
      ],
    )
    assert.equal(api!.timeouts.connectMs, 2000)
    assert.equal(api!.timeouts.responseHeadersMs, 1500)
    assert.ok(Object.isFrozen(c) && Object.isFrozen(c.pools[0]!.backends[0]), 'runtime config is deep-frozen')
  })

  it('reads JSON as well as YAML', () => {
    const json = JSON.stringify({
      listeners: [{ name: 'l', listen: ':0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: ['http://[::1]:3000'] }],
    })
    const r = parseConfigText(json, 'sy.json', {})
    assert.ok(r.ok)
    assert.equal(r.config.listeners[0]!.host, '0.0.0.0')
    assert.equal(r.config.pools[0]!.backends[0]!.origin, 'http://[::1]:3000')
  })

  const ENV_TEXT = `listeners:
  - name: public
    listen: \${LISTEN:-127.0.0.1:8080}
    routes: [{ pool: web }]
pools:
  - name: web
    servers:
      - url: http://\${HOST}:3001
        weight: \${W}
      - url: "http://127.0.0.1:\${PORT:-3002}"
        name: "\${W}"
`

  // biome-ignore lint/suspicious/noTemplateCurlyInString: the test is about literal ${...} in config text
  it('interpolates ${VAR} and ${VAR:-default}; a lone unquoted reference is typed, a quoted one stays a string', () => {
    const r = parseConfigText(ENV_TEXT, 'sy.yaml', { HOST: '127.0.0.9', W: '7' })
    assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
    const [a, b] = r.config.pools[0]!.backends
    assert.equal(r.config.listeners[0]!.listen, '127.0.0.1:8080')
    assert.deepEqual([a!.host, a!.weight], ['127.0.0.9', 7])
    assert.deepEqual([b!.port, b!.id], [3002, '7'])
  })

  it('reports an unset environment variable at its position', () => {
    assert.deepEqual(problems(ENV_TEXT, { W: '1' }), [
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the message quotes config syntax
      'sy.yaml:8:14: pools[0].servers[0].url: expected environment variable HOST to be set, found it unset (use ${HOST:-default} for a default)',
    ])
  })

  it('positions every kind of problem at file:line:col with the key path and expected/found', () => {
    const bad = `listeners:
  - name: public
    listen: 127.0.0.1:99999
    protocl: http
    routes:
      - pool: apii
      - pool: web
pools:
  - name: web
    balance: fastest
    servers:
      - { url: http://127.0.0.1:3002, weight: three }
      - ftp://127.0.0.1
  - name: web
    servers: [http://127.0.0.1:3003]
    timeouts: { connect: 5 s }
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:3:13: listeners[0].listen: expected an address host:port such as 127.0.0.1:8080, found "127.0.0.1:99999"',
      'sy.yaml:4:5: listeners[0].protocl: unknown key, expected one of name, listen, protocol, engine, tls, http2, routes, access, rateLimit, redirect, respond, headers, securityHeaders, compress, timeouts, limits, paths, slowClients, maxRequestsPerConnection, forwarded, requestId, explain, proxyProtocol',
      'sy.yaml:6:15: listeners[0].routes[0].pool: expected the name of a pool (web), found "apii"',
      'sy.yaml:7:9: listeners[0].routes[1]: expected no route after the catch-all route 0, found one that can never match',
      'sy.yaml:10:14: pools[0].balance: expected "round-robin" or "weighted-round-robin" or "least-connections" or "least-request" or "peak-ewma" or "random" or "ip-hash" or "ring-hash" or "maglev" or a mapping, found "fastest"',
      'sy.yaml:12:47: pools[0].servers[0].weight: expected a number, found "three"',
      'sy.yaml:13:9: pools[0].servers[1]: expected an http://, https:// (or tcp://) URL, found "ftp://127.0.0.1"',
      'sy.yaml:14:11: pools[1].name: expected a unique pool name, found "web" again (first at pools[0].name)',
      'sy.yaml:16:26: pools[1].timeouts.connect: expected a duration such as 500ms, 5s, 2m or 1h, found "5 s"',
    ])
  })

  it('reports missing required keys and an unknown algorithm', () => {
    const bad = `listeners:
  - name: l
    routes: [{ pool: p }]
pools:
  - name: p
    balance: { algorithm: fastest }
    servers: []
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:2:5: listeners[0].listen: expected a string, found nothing (the key is required)',
      'sy.yaml:6:27: pools[0].balance.algorithm: expected one of round-robin, weighted-round-robin, least-connections, least-request, peak-ewma, random, ip-hash, ring-hash, maglev, found "fastest"',
      'sy.yaml:7:14: pools[0].servers: expected at least 1 item, found 0',
    ])
  })

  it('reports YAML syntax errors and duplicate keys with positions', () => {
    const [syntax] = problems('listeners: [\n  - name: x\n')
    assert.match(syntax!, /^sy\.yaml:\d+:\d+: \(syntax\): /)
    const [dup] = problems('pools: []\npools: []\nlisteners: []\n')
    assert.match(dup!, /^sy\.yaml:2:1: \(syntax\): Map keys must be unique/)
  })

  it('rejects duplicate listen addresses and bad trusted proxy ranges', () => {
    const bad = `admin: { listen: 127.0.0.1:9901 }
listeners:
  - name: a
    listen: 127.0.0.1:9901
    forwarded: { trustedProxies: [10.0.0.0/8, 10.0.0.0/33, nonsense] }
    routes: [{ pool: p }]
pools: [{ name: p, servers: [http://127.0.0.1:1] }]
`
    assert.deepEqual(problems(bad), [
      'sy.yaml:4:13: listeners[0].listen: expected a unique address, found "127.0.0.1:9901" again (first at admin.listen)',
      'sy.yaml:5:47: listeners[0].forwarded.trustedProxies[1]: expected an IP address or CIDR range such as 10.0.0.0/8, found "10.0.0.0/33"',
      'sy.yaml:5:60: listeners[0].forwarded.trustedProxies[2]: expected an IP address or CIDR range such as 10.0.0.0/8, found "nonsense"',
    ])
  })

  it('validates plain objects (library API) with paths but no positions', () => {
    const r = validateConfig({ listeners: [], pools: [{ name: 'p', servers: ['http://127.0.0.1:1'], extra: 1 }] })
    assert.equal(r.ok, false)
    if (r.ok) return
    assert.deepEqual(r.issues.map(formatIssue), [
      'listeners: expected at least 1 item, found 0',
      'pools[0].extra: unknown key, expected one of name, balance, engine, protocol, servers, sendProxyProtocol, tls, sticky, healthCheck, outlierDetection, retries, ejectOnConnectFailure, panicThreshold, slowStart, preserveHost, timeouts, connections, queue',
    ])
  })
})
