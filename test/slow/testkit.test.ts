/** `switchyard test FILE` as a user runs it in CI: the real CLI in a child process, no network. */
import assert from 'node:assert/strict'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { runCliToEnd } from '../helpers/cli.js'

const CONFIG = `listeners:
  - name: public
    listen: 127.0.0.1:0
    routes:
      - name: api
        match: { host: api.example.com, pathPrefix: /api/ }
        pool: api
        rewrite: { stripPrefix: /api }
        headers: { request: { set: { x-client: "{client_ip}" } } }
      - name: old-blog
        match: { pathPrefix: /blog/ }
        redirect: { host: blog.example.com, prefix: /, status: 301 }
      - name: web
        pool: web
pools:
  - name: api
    balance: { algorithm: maglev, hashOn: "header:x-user" }
    servers:
      - { url: http://127.0.0.1:4001, name: api-1 }
      - { url: http://127.0.0.1:4002, name: api-2 }
  - name: web
    servers: [http://127.0.0.1:5001, http://127.0.0.1:5002]
`

let dir = ''
async function file(name: string, text: string): Promise<string> {
  const p = join(dir, name)
  await writeFile(p, text)
  return p
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-testkit-'))
  await file('switchyard.yaml', CONFIG)
})
after(() => rm(dir, { recursive: true, force: true }))

describe('switchyard test', () => {
  it('exits 0 with a summary line when every case passes', async () => {
    const f = await file(
      'pass.cases.yaml',
      `config: switchyard.yaml
cases:
  - name: api is rewritten and tagged
    request: { host: api.example.com, path: /api/users?id=1, clientIp: 198.51.100.7 }
    expect:
      route: api
      pool: api
      upstreamPath: /users?id=1
      upstreamHeaders: { x-client: 198.51.100.7, x-forwarded-for: 198.51.100.7, cookie: null }
  - name: the blog moved
    request: { host: www.example.com, path: /blog/2024/post?ref=x }
    expect: { route: old-blog, status: 301, location: "http://blog.example.com/2024/post?ref=x", pool: null }
  - name: everything else is the web
    request: { host: www.example.com, path: /about }
    expect: { route: 2, pool: web, upstreamPath: /about }
`,
    )
    const r = await runCliToEnd(['test', f])
    assert.equal(r.stderr, '')
    assert.equal(r.code, 0)
    assert.match(r.stdout, /^ok {4}api is rewritten and tagged$/m)
    assert.ok(r.stdout.endsWith('3 passed, 0 failed\n'), r.stdout)
  })

  it('exits 1 and prints a per-field diff for a failing case', async () => {
    const f = await file(
      'fail.cases.yaml',
      `config: switchyard.yaml
cases:
  - name: passes
    request: { host: www.example.com }
    expect: { pool: web }
  - name: api keeps its prefix
    request: { host: api.example.com, path: /api/users }
    expect: { upstreamPath: /api/users, upstreamHeaders: { x-client: null } }
`,
    )
    const r = await runCliToEnd(['test', f])
    assert.equal(r.code, 1)
    assert.ok(r.stdout.includes(`FAIL  api keeps its prefix  (${f}:6:5)`), r.stdout)
    assert.ok(r.stdout.includes('  upstreamPath:\n    expected: "/api/users"\n    actual:   "/users"\n'), r.stdout)
    assert.ok(r.stdout.includes('  upstreamHeaders.x-client:\n    expected: absent\n    actual:   "127.0.0.1"\n'))
    assert.match(r.stdout, /route +route 0 "api": host api\.example\.com, pathPrefix \/api\/ matched/)
    assert.match(r.stdout, /rules +route 0 rule rewrite \(stripPrefix \/api\): path \/api\/users → \/users/)
    assert.ok(r.stdout.endsWith('1 passed, 1 failed\n'), r.stdout)
  })

  it('exits 2 with file:line:col for a malformed cases file', async () => {
    const f = await file(
      'bad.cases.yaml',
      `config: switchyard.yaml
cases:
  - name: typo
    request: { host: www.example.com }
    expect: { pol: web }
`,
    )
    const r = await runCliToEnd(['test', f])
    assert.equal(r.code, 2)
    assert.ok(
      r.stderr.startsWith(
        `${f}:5:15: cases[0].expect.pol: unknown key, expected one of route, pool, upstreamPath, upstreamHeaders, status, location, server\n`,
      ),
      r.stderr,
    )
    const syntax = await file('syntax.cases.yaml', 'config: switchyard.yaml\ncases:\n  - name: [unclosed\n')
    const s = await runCliToEnd(['test', syntax])
    assert.equal(s.code, 2)
    assert.match(s.stderr, new RegExp(`^${syntax.replace(/[.]/g, '\\.')}:\\d+:\\d+: \\(syntax\\): `))
  })

  it('exits 2 for usage without a file', async () => {
    const r = await runCliToEnd(['test'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /test takes at least one cases FILE/)
  })
})
