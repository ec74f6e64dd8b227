/**
 * Config validation of the request rules: what serves a route, rules that disagree with the route's
 * match, unsafe patterns, references to pools. Each case is a whole YAML file through parseConfigText,
 * asserting the one issue it gives: its path, line and exact message.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type ConfigIssue, parseConfigText } from '../config/index.js'

/** Two pools and one listener; `body` is the rest of the listener (its rules and routes), indented. */
function config(body: string): string {
  return `pools:
  - { name: api, servers: ["http://127.0.0.1:1"] }
  - { name: stable, servers: ["http://127.0.0.1:2"] }
listeners:
  - name: main
    listen: 127.0.0.1:0
${body}`
}

function issues(body: string): readonly ConfigIssue[] {
  const r = parseConfigText(config(body), 'rules.yaml')
  return r.ok ? [] : r.issues
}

/** The config gives exactly one issue, at `path` (line `line` of the file), with `message`. */
function rejects(body: string, path: string, line: number, message: string): void {
  const found = issues(body)
  assert.deepEqual(
    found.map((i) => ({ path: i.path, line: i.line, message: i.message })),
    [{ path, line, message }],
  )
}

describe('rules config: what serves a route', () => {
  it('a route with neither a pool nor a rule that serves it', () => {
    rejects(
      '    routes:\n      - match: { pathPrefix: /x/ }\n',
      'listeners[0].routes[0]',
      8,
      'expected what serves the route: `pool`, `pools`, `redirect`, `respond`, found none',
    )
  })

  it('a pool and a redirect together', () => {
    rejects(
      '    routes:\n      - pool: api\n        redirect: { scheme: https }\n',
      'listeners[0].routes[0].redirect',
      9,
      'expected one of `pool`, `pools`, `redirect`, `respond`, found `pool` and `redirect`',
    )
  })

  it('a pool and a split together', () => {
    rejects(
      '    routes:\n      - pool: api\n        pools: [{ pool: stable, weight: 1 }]\n',
      'listeners[0].routes[0].pools',
      9,
      'expected one of `pool`, `pools`, `redirect`, `respond`, found `pool` and `pools`',
    )
  })

  it('a listener with both redirect and respond', () => {
    rejects(
      '    redirect: { scheme: https }\n    respond: { status: 200 }\n    routes:\n      - pool: api\n',
      'listeners[0].respond',
      8,
      'expected at most one of `redirect`, `respond`, found both',
    )
  })

  it('a route with redirect or respond needs no pool', () => {
    assert.deepEqual(
      issues(
        '    routes:\n      - match: { pathPrefix: /old/ }\n        redirect: { prefix: /new/, status: 301 }\n      - respond: { body: hi }\n',
      ),
      [],
    )
  })
})

describe('rules config: rewrite', () => {
  it('stripPrefix that is not a prefix of match.pathPrefix', () => {
    rejects(
      '    routes:\n      - match: { pathPrefix: /v1/ }\n        pool: api\n        rewrite: { stripPrefix: /api }\n',
      'listeners[0].routes[0].rewrite',
      10,
      'expected the route\'s match.pathPrefix (or match.path) to start with "/api", found "/v1/": only requests that match can be rewritten this way',
    )
  })

  it('stripPrefix on a route that matches every path', () => {
    rejects(
      '    routes:\n      - pool: api\n        rewrite: { stripPrefix: /api }\n',
      'listeners[0].routes[0].rewrite',
      9,
      'expected the route\'s match.pathPrefix (or match.path) to start with "/api", found none: only requests that match can be rewritten this way',
    )
  })

  it('stripPrefix that agrees with match.pathPrefix or match.path', () => {
    const ok = (match: string) =>
      issues(`    routes:\n      - match: ${match}\n        pool: api\n        rewrite: { stripPrefix: /api }\n`)
    assert.deepEqual(ok('{ pathPrefix: /api/ }'), [])
    assert.deepEqual(ok('{ path: /api/health }'), [])
  })

  it('two path rules at once', () => {
    rejects(
      '    routes:\n      - match: { pathPrefix: /api/ }\n        pool: api\n        rewrite: { stripPrefix: /api, replacePrefix: { from: /api, to: /b } }\n',
      'listeners[0].routes[0].rewrite',
      10,
      'expected at most one of stripPrefix, replacePrefix and regex, found stripPrefix and replacePrefix',
    )
  })

  const regex = (pattern: string) =>
    `    routes:\n      - pool: api\n        rewrite: { regex: { pattern: ${JSON.stringify(pattern)}, replacement: /x } }\n`

  for (const [pattern, why] of [
    ['^/(a+)+$', 'a repeated group may not contain a quantifier or an alternation'],
    ['^/(a|aa)*$', 'a repeated group may not contain a quantifier or an alternation'],
    [
      '^/(.*)-(.*)x$',
      'two repeats in a row may not match the same characters (`.*.*`, `\\w+\\w+`, `(.*)/(.*)x`): put a character the first cannot match between them, as in `([^/]*)/(.*)`',
    ],
    [
      '\\w+\\w+x',
      'two repeats in a row may not match the same characters (`.*.*`, `\\w+\\w+`, `(.*)/(.*)x`): put a character the first cannot match between them, as in `([^/]*)/(.*)`',
    ],
    ['^/(\\w+)/\\1$', 'backreferences are not allowed'],
    ['^/(?=a)', 'lookaround is not allowed'],
  ] as const)
    it(`an unsafe regex: ${pattern}`, () => {
      rejects(
        regex(pattern),
        'listeners[0].routes[0].rewrite.regex.pattern',
        9,
        `expected a pattern without backtracking blow-ups: ${why}, found "${pattern}"`,
      )
    })

  for (const pattern of [
    '^/users/(\\d+)/profile$',
    '^/(?:v1|v2)/(.*)$',
    '^/(.*)/(.*)$',
    '^/api/([^/]*)/(.*)$',
    '^/(?<id>\\d+)$',
    '(?:ab)+',
    '\\.(css|js)$',
  ])
    it(`a safe regex: ${pattern}`, () => {
      assert.deepEqual(issues(regex(pattern)), [])
    })

  it('a regex that does not compile', () => {
    rejects(
      regex('^/(unclosed'),
      'listeners[0].routes[0].rewrite.regex.pattern',
      9,
      'expected a valid regular expression, found "^/(unclosed"',
    )
  })
})

describe('rules config: redirect', () => {
  it('prefix on a route without match.pathPrefix', () => {
    rejects(
      '    routes:\n      - match: { path: /old }\n        redirect: { prefix: /new/ }\n',
      'listeners[0].routes[0].redirect',
      9,
      'expected the route to have match.pathPrefix for `prefix` to replace, found none',
    )
  })

  it('prefix on a listener', () => {
    rejects(
      '    redirect: { prefix: /new/ }\n    routes:\n      - pool: api\n',
      'listeners[0].redirect',
      7,
      "expected no `prefix` on a listener (it replaces a route's match.pathPrefix)",
    )
  })

  it('both path and prefix', () => {
    rejects(
      '    routes:\n      - match: { pathPrefix: /a/ }\n        redirect: { path: /b, prefix: /c/ }\n',
      'listeners[0].routes[0].redirect',
      9,
      'expected `path` or `prefix`, found both',
    )
  })

  it('a status that is not a redirect Switchyard makes', () => {
    rejects(
      '    routes:\n      - redirect: { status: 303 }\n',
      'listeners[0].routes[0].redirect.status',
      8,
      'expected 301 or 302 or 307 or 308, found number 303',
    )
  })
})

describe('rules config: pools, mirror, headers', () => {
  it('a split to an unknown pool', () => {
    rejects(
      '    routes:\n      - pools: [{ pool: stable, weight: 9 }, { pool: nope, weight: 1 }]\n',
      'listeners[0].routes[0].pools[1].pool',
      8,
      'expected the name of a pool (api, stable), found "nope"',
    )
  })

  it('a split whose weights are all 0', () => {
    rejects(
      '    routes:\n      - pools: [{ pool: stable, weight: 0 }, { pool: api, weight: 0 }]\n',
      'listeners[0].routes[0].pools',
      8,
      'expected at least one pool with a weight above 0, found only weights of 0',
    )
  })

  it('a mirror to an unknown pool', () => {
    rejects(
      '    routes:\n      - pool: api\n        mirror: { pool: shadow }\n',
      'listeners[0].routes[0].mirror.pool',
      9,
      'expected the name of a pool (api, stable), found "shadow"',
    )
  })

  it('a header value with an unknown placeholder', () => {
    rejects(
      '    routes:\n      - pool: api\n        headers: { request: { set: { x-a: "{nope}" } } }\n',
      'listeners[0].routes[0].headers.request.set.x-a',
      9,
      'expected only the placeholders {client_ip}, {request_id}, {host}, {scheme}, {server}, found "{nope}"',
    )
  })

  it('a rule that only routes take, on a listener', () => {
    const found = issues('    rewrite: { stripPrefix: /api }\n    routes:\n      - pool: api\n')
    assert.equal(found.length, 1)
    assert.equal(found[0]!.path, 'listeners[0].rewrite')
  })
})

describe('rules config: headers the proxy sets itself', () => {
  it('a request rule on a forwarding header', () => {
    rejects(
      '    routes:\n      - pool: api\n        headers: { request: { set: { X-Forwarded-Proto: https } } }\n',
      'listeners[0].routes[0].headers.request.set.X-Forwarded-Proto',
      9,
      "expected a header other than x-forwarded-proto, which the listener's `forwarded` settings set (xForwarded, forwarded, trustedProxies)",
    )
  })

  it('a listener rule removing the request id header, under the name the listener gives it', () => {
    rejects(
      '    requestId: { header: x-correlation-id }\n    headers: { request: { remove: [x-correlation-id] } }\n    routes:\n      - pool: api\n',
      'listeners[0].headers.request.remove[0]',
      8,
      "expected a header other than x-correlation-id, the listener's request id header (see `requestId`)",
    )
  })

  it('response rules may name them', () => {
    assert.deepEqual(
      issues('    routes:\n      - pool: api\n        headers: { response: { remove: [x-request-id, forwarded] } }\n'),
      [],
    )
  })
})
