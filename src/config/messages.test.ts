/**
 * Messages that say what is probably wrong: mis-indented YAML (the parser's own words kept in
 * parentheses) and routes to a pool that does not exist. Real YAML text, exact messages and lines.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { formatIssue, parseConfigText } from './index.js'

function problems(text: string): string[] {
  const r = parseConfigText(text, 'sy.yaml', {})
  assert.equal(r.ok, false, 'expected the config to be rejected')
  return r.ok ? [] : r.issues.map(formatIssue)
}

describe('mis-indented YAML', () => {
  it('a key indented less than its neighbours (Sequence item without - indicator)', () => {
    assert.deepEqual(
      problems(`listeners:
  - name: web
    listen: 127.0.0.1:8080
   routes: [{ pool: p }]
pools: [{ name: p, servers: [http://127.0.0.1:1] }]
`),
      [
        'sy.yaml:4:4: (syntax): probably mis-indented: "routes" at column 4 does not line up with the keys above it; the keys of one mapping start at the same column (YAML: Sequence item without - indicator)',
      ],
    )
  })

  it('a key indented more than the one above (Nested mappings are not allowed in compact mappings)', () => {
    // The parser reports this at the line above, twice; the line that is off is the deeper one.
    assert.deepEqual(
      problems(`pools:
  - name: p
    servers:
      - url: http://127.0.0.1:1
         weight: 2
`),
      [
        'sy.yaml:5:10: (syntax): probably mis-indented: "weight" starts at column 10, deeper than "url" on the line above (column 9), so YAML reads it as part of that value (YAML: Nested mappings are not allowed in compact mappings)',
      ],
    )
  })

  it('a key that falls back to the wrong level (All mapping items must start at the same column)', () => {
    assert.deepEqual(
      problems(`listeners:
  - name: web
  listen: 127.0.0.1:8080
`),
      [
        'sy.yaml:3:3: (syntax): probably mis-indented: "listen" at column 3 does not line up with the keys above it; the keys of one mapping start at the same column (YAML: All mapping items must start at the same column)',
      ],
    )
  })

  it('list items at two columns, and a list among the keys of a mapping', () => {
    assert.deepEqual(
      problems(`pools:
- name: p
  servers: [http://127.0.0.1:1]
 - name: q
`),
      [
        'sy.yaml:4:2: (syntax): probably mis-indented: the list item "- name: q" at column 2 does not line up with the list items above it; the list items of one list start at the same column (YAML: All sequence items must start at the same column)',
      ],
    )
    assert.deepEqual(
      problems(`pools:
  - name: p
    servers: [http://127.0.0.1:1]
    - name: q
`),
      [
        'sy.yaml:4:5: (syntax): probably mis-indented: the list item "- name: q" at column 5 sits among the keys of a mapping; a list goes under its key, indented deeper (YAML: A block sequence may not be used as an implicit map key)',
      ],
    )
  })

  it('a key without its colon (Implicit keys need to be on a single line, Implicit map keys need to be followed by map values)', () => {
    assert.deepEqual(
      problems(`pools:
  - name: p
    timeouts
    servers: [http://127.0.0.1:1]
`),
      [
        'sy.yaml:3:5: (syntax): probably a missing ":": "timeouts" is not followed by ":" and a value (YAML: Implicit keys need to be on a single line)',
      ],
    )
    assert.deepEqual(
      problems(`pools:
  - name: p
    servers: [http://127.0.0.1:1]
    timeouts
`),
      [
        'sy.yaml:4:5: (syntax): probably a missing ":": "timeouts" is not followed by ":" and a value (YAML: Implicit map keys need to be followed by map values)',
      ],
    )
  })

  it('a tab in the indentation', () => {
    assert.deepEqual(problems('pools:\n  - name: p\n\tservers: [http://127.0.0.1:1]\n'), [
      'sy.yaml:3:1: (syntax): indented with a tab: YAML indentation takes spaces only (YAML: Tabs are not allowed as indentation)',
    ])
  })

  it('leaves other syntax errors as the parser words them', () => {
    assert.deepEqual(problems('pools: []\npools: []\nlisteners: []\n'), [
      'sy.yaml:2:1: (syntax): Map keys must be unique',
    ])
  })
})

describe('routes to a missing pool', () => {
  it('names the pools there are', () => {
    assert.deepEqual(
      problems(`listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: missing }] }
pools:
  - { name: web, servers: [http://127.0.0.1:1] }
  - { name: api, servers: [http://127.0.0.1:2] }
`),
      ['sy.yaml:2:56: listeners[0].routes[0].pool: expected the name of a pool (web, api), found "missing"'],
    )
  })

  it('says that there is none, rather than an empty list', () => {
    assert.deepEqual(
      problems(`listeners:
  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: missing }] }
pools: []
`),
      [
        'sy.yaml:2:56: listeners[0].routes[0].pool: expected the name of a pool, found "missing" (no pool is defined)',
        'sy.yaml:3:8: pools: expected at least 1 item, found 0',
      ],
    )
  })
})

describe('docs/configuration.md', () => {
  it('shows the messages the code prints for its samples', async () => {
    const { readFile } = await import('node:fs/promises')
    const doc = await readFile(new URL('../../docs/configuration.md', import.meta.url), 'utf8')
    const samples = [
      `listeners:
  - name: public
    listen: 127.0.0.1:8080
    routes:
      - match: { host: api.example.com }
        pool: api
      - pool: web
pools:
  - name: web
    colour: blue
    servers:
      - http://127.0.0.1:3001
      - url: http://127.0.0.1:3002
        weight: heavy
  - name: api
    servers: [http://127.0.0.1:4001]
`,
      `listeners:
  - name: postgres
    listen: 127.0.0.1:5433
    protocol: tcp
    forwarded: { xForwarded: false }
    timeouts: { idle: 30m, total: 1h }
    routes:
      - pool: replicas
pools:
  - name: replicas
    retries: { attempts: 2 }
    servers: [tcp://10.0.0.11:5432, tcp://10.0.0.12:5432]
    healthCheck: { type: tcp, path: /healthz }
  - name: cache
    sticky: { mode: client-ip, secret: 0123456789abcdef0123 }
    servers: [http://10.0.0.21:8080]
`,
      `listeners:
  - name: public
    listen: 127.0.0.1:8080
   routes:
      - pool: web
pools:
  - name: web
    servers: [http://127.0.0.1:3001]
`,
    ]
    for (const sample of samples) {
      const r = parseConfigText(sample, 'switchyard.yaml', {})
      assert.equal(r.ok, false)
      const lines = r.ok ? [] : r.issues.map(formatIssue)
      const count = `${lines.length} problem${lines.length === 1 ? '' : 's'} found`
      const printed = lines.length > 1 ? [...lines, count] : lines
      assert.ok(
        doc.includes(`\`\`\`\n${printed.join('\n')}\n\`\`\``),
        `docs/configuration.md lacks:\n${printed.join('\n')}`,
      )
    }
  })
})

describe('header names in settings', () => {
  it('refuses a request-id header that is not a header name', () => {
    assert.deepEqual(
      problems(`listeners:
  - name: web
    listen: 127.0.0.1:8080
    requestId: { header: "x id" }
    routes: [{ pool: p }]
pools: [{ name: p, servers: [http://127.0.0.1:1] }]
`),
      [
        'sy.yaml:4:26: listeners[0].requestId.header: expected a header name (a token such as x-request-id), found "x id"',
      ],
    )
  })
})
