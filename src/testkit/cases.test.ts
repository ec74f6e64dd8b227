import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { formatIssue } from '../config/index.js'
import { compare, runCases, runCasesFiles } from './cases.js'
import type { Explanation } from './explain.js'

const CONFIG = `
listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: api
        match: { pathPrefix: /api/ }
        pool: api
        rewrite: { stripPrefix: /api }
      - name: moved
        match: { path: /old }
        redirect: { path: /new, status: 301 }
      - name: split
        match: { pathPrefix: /shop/ }
        pools: [{ pool: api, weight: 50 }, { pool: web, weight: 50 }]
      - pool: web
  - name: internal
    listen: 127.0.0.1:0
    routes:
      - name: everything
        pool: hashed
pools:
  - name: api
    servers: [http://127.0.0.1:4001, http://127.0.0.1:4002]
  - name: web
    servers: [http://127.0.0.1:5001]
  - name: hashed
    balance: { algorithm: ring-hash, hashOn: "header:x-user" }
    servers:
      - { url: http://127.0.0.1:6001, name: h1 }
      - { url: http://127.0.0.1:6002, name: h2 }
`

const PROXIED: Explanation = {
  listener: 'public',
  clientIp: '127.0.0.1',
  route: 'api',
  routeIndex: 0,
  pool: 'api',
  pools: undefined,
  upstreamPath: '/users',
  upstreamHeaders: { host: 'localhost', 'x-forwarded-for': '127.0.0.1' },
  status: undefined,
  location: undefined,
  error: undefined,
  server: 'a',
  serverDeterministic: false,
  choice: undefined,
  header: 'route=api; pool=api; picked=a',
  steps: [],
}

describe('cases: compare()', () => {
  it('passes what matches, by route name or index', () => {
    assert.deepEqual(compare({ route: 'api', pool: 'api', upstreamPath: '/users' }, PROXIED), [])
    assert.deepEqual(compare({ route: 0, upstreamHeaders: { host: 'localhost', 'x-real-ip': null } }, PROXIED), [])
  })

  it('reports each differing field with expected and actual', () => {
    const m = compare(
      { route: 1, pool: 'web', upstreamHeaders: { 'X-Forwarded-For': null, 'x-tenant': 'a' }, status: 302 },
      PROXIED,
    )
    assert.deepEqual(
      m.map((x) => [x.field, x.expected, x.actual]),
      [
        ['route', 'route 1', '"api" (route 0)'],
        ['pool', '"web"', '"api"'],
        ['upstreamHeaders.x-forwarded-for', 'absent', '"127.0.0.1"'],
        ['upstreamHeaders.x-tenant', '"a"', 'absent'],
        ['status', '302', 'none (proxied to pool api)'],
      ],
    )
  })

  it('refuses a server expectation on a pool that does not choose by the request', () => {
    const [m] = compare({ server: 'a' }, PROXIED)
    assert.equal(m?.field, 'server')
    assert.match(m?.note ?? '', /does not choose by the request/)
    assert.deepEqual(compare({ server: 'a' }, { ...PROXIED, serverDeterministic: true }), [])
  })

  it('compares a random split as the set of pools it may choose', () => {
    const split = {
      ...PROXIED,
      pools: [
        { pool: 'api', weight: 50 },
        { pool: 'web', weight: 50 },
      ],
    }
    assert.deepEqual(compare({ pool: ['web', 'api'] }, split), [])
    const [m] = compare({ pool: 'api' }, split)
    assert.match(m?.note ?? '', /draws at random/)
  })
})

describe('cases: files', () => {
  let dir = ''
  const file = async (name: string, text: string) => {
    const p = path.join(dir, name)
    await writeFile(p, text)
    return p
  }
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'swy-cases-'))
    await file('sy.yaml', CONFIG)
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('runs every case through explain() and collects mismatches', async () => {
    const f = await file(
      'ok.cases.yaml',
      `config: sy.yaml
cases:
  - name: api is rewritten
    request: { path: /api/users?x=1 }
    expect: { route: api, pool: api, upstreamPath: /users?x=1 }
  - name: moved
    request: { path: /old?q=1, host: www.example.com }
    expect: { route: moved, status: 301, location: "http://www.example.com/new?q=1", pool: null, upstreamPath: null }
  - name: split
    request: { path: /shop/ }
    expect: { pool: [web, api] }
  - name: hashed on the internal listener
    request: { listener: internal, headers: { x-user: alice } }
    expect: { route: everything, server: ${await hashedServer()} }
  - name: wrong
    request: { path: /elsewhere }
    expect: { route: api }
`,
    )
    const run = await runCases(f)
    assert.equal(run.kind, 'ran')
    if (run.kind !== 'ran') return
    assert.deepEqual(
      run.results.map((r) => [r.name, r.mismatches.length]),
      [
        ['api is rewritten', 0],
        ['moved', 0],
        ['split', 0],
        ['hashed on the internal listener', 0],
        ['wrong', 1],
      ],
    )
    assert.match(run.results[4]?.where ?? '', /ok\.cases\.yaml:15:5$/)
  })

  it('reports a bad cases file, and names the config does not have, with positions', async () => {
    const bad = await file(
      'bad.cases.yaml',
      `config: sy.yaml
cases:
  - name: typo
    request: { paht: /x }
    expect: { pool: api }
  - name: unknown names
    request: { listener: nope }
    expect: { pool: apii }
`,
    )
    const run = await runCases(bad)
    assert.equal(run.kind, 'invalid')
    if (run.kind !== 'invalid') return
    assert.deepEqual(run.issues.map(formatIssue), [
      `${bad}:4:16: cases[0].request.paht: unknown key, expected one of method, host, path, headers, clientIp, listener`,
    ])
    const names = await file(
      'names.cases.yaml',
      `config: sy.yaml
cases:
  - name: unknown names
    request: { listener: nope }
    expect: { pool: apii }
  - name: unknown route
    request: {}
    expect: { route: nope, server: zz }
`,
    )
    const r2 = await runCases(names)
    assert.equal(r2.kind, 'invalid')
    if (r2.kind !== 'invalid') return
    const text = r2.issues.map(formatIssue)
    assert.match(text[0] ?? '', /names\.cases\.yaml:4:26: cases\[0\]\.request\.listener: expected an HTTP listener/)
    assert.match(text[1] ?? '', /:5:21: cases\[0\]\.expect\.pool: expected a pool of the config/)
    assert.match(
      text[2] ?? '',
      /:8:22: cases\[1\]\.expect\.route: expected a route name of listener public \("api", "moved", "split"\)/,
    )
    assert.match(text[3] ?? '', /:8:36: cases\[1\]\.expect\.server: expected a server of the config/)
  })

  it('passes config problems through, at their own positions', async () => {
    await file('broken.yaml', 'listeners: []\npools: []\nbogus: 1\n')
    const f = await file(
      'broken.cases.yaml',
      'config: broken.yaml\ncases:\n  - { name: a, request: {}, expect: { pool: x } }\n',
    )
    const run = await runCases(f)
    assert.equal(run.kind, 'invalid')
    if (run.kind !== 'invalid') return
    assert.ok(run.issues.some((i) => i.file?.endsWith('broken.yaml') && i.line === 3))
  })

  it('prints ok lines, a diff per failing case and the summary; exit 1 on a failure, 2 on a bad file', async () => {
    const lines: string[] = []
    const io = { out: (t: string) => lines.push(t), err: (t: string) => lines.push(`ERR ${t}`) }
    const f = await file(
      'mixed.cases.yaml',
      'config: sy.yaml\ncases:\n  - { name: good, request: { path: /api/ }, expect: { pool: api } }\n  - { name: bad, request: { path: /api/ }, expect: { upstreamPath: /api/ } }\n',
    )
    assert.equal(await runCasesFiles([f], io), 1)
    const text = lines.join('\n')
    assert.match(text, /^ok {4}good$/m)
    assert.match(text, /^FAIL {2}bad {2}\(.*mixed\.cases\.yaml:4:5\)$/m)
    assert.match(text, /upstreamPath:\n {4}expected: "\/api\/"\n {4}actual: {3}"\/"/)
    assert.match(text, /how it was decided:\n {4}listener public/)
    assert.match(text, /rewrite \(stripPrefix \/api\): path \/api\/ → \//)
    assert.equal(lines.at(-1), '1 passed, 1 failed')
    lines.length = 0
    assert.equal(await runCasesFiles([path.join(dir, 'missing.cases.yaml')], io), 2)
    assert.match(lines.join('\n'), /missing\.cases\.yaml:1:1: \(file\): cannot read: no such file/)
  })
})

/** The server the hashed pool picks for alice, found the same way the cases do (explain). */
async function hashedServer(): Promise<string> {
  const { explain } = await import('./explain.js')
  const { parseConfigText } = await import('../config/index.js')
  const r = parseConfigText(CONFIG, 'sy.yaml', {})
  assert.ok(r.ok)
  const e = await explain(r.config, { listener: 'internal', headers: { 'x-user': 'alice' } })
  assert.equal(e.serverDeterministic, true)
  return e.server ?? ''
}
