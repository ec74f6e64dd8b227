/**
 * README.md's "5-minute tour", run as written where it can run here: the demo (step 1), quick mode
 * (step 2), the step-3 config (read from README.md at test time, so the two cannot drift; its addresses
 * are moved to free ports and test backends), `validate`, a SIGHUP with a bad file, SIGTERM, and
 * step 4's failures. Real CLI processes, 127.0.0.1 only, ephemeral ports.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { request } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { type CliProcess, runCli, runCliToEnd } from '../helpers/cli.js'

let readme: string
let dir: string
before(async () => {
  readme = await readFile(new URL('../../README.md', import.meta.url), 'utf8')
  dir = await mkdtemp(join(tmpdir(), 'switchyard-tour-'))
})

/** The first fenced block of `lang` after the line that contains `marker`. */
function blockAfter(marker: string, lang: string): string {
  const at = readme.indexOf(marker)
  assert.ok(at >= 0, `README.md has "${marker}"`)
  const m = new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``).exec(readme.slice(at))
  assert.ok(m, `a \`\`\`${lang} block after "${marker}"`)
  return m[1]!
}

/** Resolves once `text` appears on the process's stdout. */
async function waitForText(p: CliProcess, text: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs
  while (!p.stdout().includes(text)) {
    if (Date.now() > deadline) throw new Error(`no "${text}" within ${timeoutMs} ms\n${p.stdout()}\n${p.stderr()}`)
    if (p.child.exitCode !== null) throw new Error(`exited before "${text}"\n${p.stdout()}\n${p.stderr()}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return p.stdout()
}

async function listenerUrl(p: CliProcess, name: string): Promise<string> {
  const line = await p.waitForLog((l) => l.listener === name && typeof l.address === 'string')
  return `http://${String(line.address)}`
}

describe('README tour', () => {
  it('step 1: the demo prints what it started, with its pid, and round-robins over the 3 samples', async () => {
    assert.match(readme, /for i in 1 2 3 4 5 6; do curl -s http:\/\/127\.0\.0\.1:8080\/; done/)
    const p = runCli(['demo', '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0'])
    try {
      const out = await waitForText(p, 'Press Ctrl-C to stop.')
      const lb =
        /load balancer {2}http:\/\/(\S+) {3}round-robin over sample-1 \(.+\), sample-2 \(.+\), sample-3 \(.+\)/.exec(
          out,
        )
      const admin = /admin {10}http:\/\/(\S+) {3}dashboard/.exec(out)
      assert.ok(lb && admin, out)
      assert.match(out, new RegExp(`pid {12}${p.pid} `))
      const servers: string[] = []
      for (let i = 0; i < 6; i++)
        servers.push(((await (await fetch(`http://${lb[1]}/`)).json()) as { server: string }).server)
      assert.deepEqual(servers, ['sample-1', 'sample-2', 'sample-3', 'sample-1', 'sample-2', 'sample-3'])
      const token = /admin token {4}(\S+) {3}/.exec(out)?.[1]
      assert.ok(token !== undefined, out)
      assert.match(readme, /curl -s -H "authorization: Bearer \$TOKEN" http:\/\/127\.0\.0\.1:9901\/metrics/)
      assert.equal(
        (await fetch(`http://${admin[1]}/metrics`)).status,
        401,
        'the demo admin API is closed without the token',
      )
      const metrics = await (
        await fetch(`http://${admin[1]}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      ).text()
      assert.match(metrics, /switchyard_http_requests_total\{listener="demo",pool="samples",class="2xx"\} 6\n/)
      // The README's ctl steps: sample-2 drains, and says so.
      assert.match(readme, /SWITCHYARD_ADMIN_TOKEN=\$TOKEN npx switchyard ctl drain samples\/sample-2/)
      const ctlEnv = { SWITCHYARD_ADMIN_TOKEN: token, SWITCHYARD_ADMIN_URL: `http://${admin[1]}` }
      const drained = await runCliToEnd(['ctl', 'drain', 'samples/sample-2'], ctlEnv)
      assert.equal(drained.code, 0, drained.stderr)
      const after: string[] = []
      for (let i = 0; i < 4; i++)
        after.push(((await (await fetch(`http://${lb[1]}/`)).json()) as { server: string }).server)
      assert.ok(!after.includes('sample-2'), after.join(' '))
      assert.match((await runCliToEnd(['ctl', 'pools'], ctlEnv)).stdout, /samples\/sample-2 \*\s+draining/)
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })

  describe('with your own servers', () => {
    // The README's servers: 3001 and 3002 for `web`, 4001 for `api`.
    const servers = new Map<number, TestBackend>()
    before(async () => {
      for (const port of [3001, 3002, 4001]) servers.set(port, await startBackend(`s${port}`))
    })
    after(async () => {
      await Promise.all([...servers.values()].map((b) => b.close()))
    })
    const url = (port: number) => servers.get(port)!.url

    it('step 2: quick mode, --listen and --to', async () => {
      const cmd =
        /npx switchyard --listen 127\.0\.0\.1:8080 --to http:\/\/127\.0\.0\.1:3001 --to http:\/\/127\.0\.0\.1:3002/
      assert.match(blockAfter('**2. Put it in front of your own servers**', 'sh'), cmd)
      const p = runCli(['--listen', '127.0.0.1:0', '--to', url(3001), '--to', url(3002)])
      try {
        const base = await listenerUrl(p, 'default')
        const names: string[] = []
        for (let i = 0; i < 4; i++) names.push(await (await fetch(`${base}/`)).text())
        assert.deepEqual(names, ['s3001', 's3002', 's3001', 's3002'])
      } finally {
        p.kill('SIGTERM')
        assert.equal(await p.exited(), 0)
      }
    })

    it('steps 3 and 4: the config, validate, SIGHUP with a bad file, a stopped server, SIGTERM', async () => {
      let yaml = blockAfter('**3. Write a config**', 'yaml')
      const moves: [string, string][] = [
        ['127.0.0.1:9901', '127.0.0.1:0'],
        ['127.0.0.1:8080', '127.0.0.1:0'],
        ['http://127.0.0.1:3001', url(3001)],
        ['http://127.0.0.1:3002', url(3002)],
        ['http://127.0.0.1:4001', url(4001)],
      ]
      for (const [from, to] of moves) {
        assert.ok(yaml.includes(from), `the README config has ${from}`)
        yaml = yaml.replaceAll(from, to)
      }
      const f = join(dir, 'switchyard.yaml')
      await writeFile(f, yaml)
      const commands = blockAfter('**3. Write a config**', 'sh')
      for (const c of [
        'npx switchyard validate switchyard.yaml',
        'npx switchyard -c switchyard.yaml',
        'kill -HUP',
        'kill -TERM',
      ])
        assert.ok(commands.includes(c), `the README shows ${c}`)

      const v = await runCliToEnd(['validate', f])
      assert.equal(v.code, 0, v.stderr)
      assert.equal(v.stdout, `${f}: ok (1 listener, 2 routes, 2 pools, 3 servers)\n`)

      const p = runCli(['-c', f])
      try {
        const base = await listenerUrl(p, 'public')
        const admin = `http://${String((await p.waitForLog((l) => l.msg === 'admin API ready')).address)}`
        const running = await p.waitForLog((l) => String(l.msg).includes('running as pid'))
        assert.equal(running.pid, p.pid, 'the pid to signal is logged')
        // fetch() drops a Host header; undici's request() sends it.
        const api = async (path: string) => {
          const r = await request(`${base}${path}`, { headers: { host: 'api.example.com' } })
          return { status: r.statusCode, text: () => r.body.text(), json: () => r.body.json() }
        }
        // Routes: api.example.com under /v1/ goes to `api`; everything else to `web`, weighted 1:3.
        assert.equal(await (await api('/v1/users')).text(), 's4001')
        assert.ok(['s3001', 's3002'].includes(await (await api('/v2/users')).text()), 'other paths go to web')
        const web: string[] = []
        for (let i = 0; i < 8; i++) web.push(await (await fetch(`${base}/`)).text())
        assert.deepEqual(
          web.sort(),
          ['s3001', 's3001', 's3002', 's3002', 's3002', 's3002', 's3002', 's3002'],
          'weight 1 and weight 3',
        )

        // kill -HUP with a bad file: rejected, and the old config keeps serving.
        await writeFile(f, `${yaml}bogus: true\n`)
        p.kill('SIGHUP')
        const rejected = await p.waitForLog((l) => String(l.msg).startsWith('reload rejected'))
        assert.match(String(rejected.msg), /bogus: unknown key/)
        assert.equal(await (await api('/v1/users')).text(), 's4001')

        // Step 4: stop the server on 3001. Its connect failures are retried on 3002: no request fails.
        const before = web.length
        await servers.get(3001)!.close()
        const after: { status: number; body: string }[] = []
        for (let i = 0; i < 8; i++) {
          const r = await fetch(`${base}/`)
          after.push({ status: r.status, body: await r.text() })
        }
        assert.deepEqual(
          after,
          Array.from({ length: 8 }, () => ({ status: 200, body: 's3002' })),
          `every request after the ${before} before still succeeds, on 3002`,
        )
        const metrics = await (await fetch(`${admin}/metrics`)).text()
        assert.doesNotMatch(metrics, /switchyard_errors_total\{pool="web"/, 'the client saw no error')
        // The retry of the refused connection is counted, by the server whose try failed and the reason.
        assert.match(
          metrics,
          /switchyard_upstream_retries_total\{pool="web",server="[^"]+",reason="connect-failure"\} [1-9]/,
          'the stopped server was tried, and the request retried',
        )
        assert.match(metrics, /switchyard_http_requests_total\{listener="public",pool="web",class="2xx"\} 17\n/)
        assert.match(metrics, /switchyard_http_requests_total\{listener="public",pool="web",class="5xx"\} 0\n/)
        // With every server of a pool stopped (`api` has one), the client gets the 502.
        await servers.get(4001)!.close()
        const down = await api('/v1/users')
        assert.equal(down.status, 502)
        const body = (await down.json()) as { error: { code: string; requestId: string } }
        assert.equal(body.error.code, 'SWY_UPSTREAM_CONNECT')
        const logged = await p.waitForLog((l) => l.type === 'access' && l.requestId === body.error.requestId)
        assert.equal(logged.code, 'SWY_UPSTREAM_CONNECT')
      } finally {
        // kill -TERM: drain, then exit 0.
        p.kill('SIGTERM')
        assert.equal(await p.exited(), 0)
      }
    })
  })
})

describe('README tour, steps 5 and 6', () => {
  const servers = new Map<number, TestBackend>()
  before(async () => {
    for (const port of [3001, 3002, 3003])
      servers.set(
        port,
        await startBackend(`s${port}`, (req, res) => {
          req.resume()
          // A body large enough to compress, and a Server header for the rule to remove.
          res.writeHead(200, { 'content-type': 'application/json', server: 'tour-backend' })
          res.end(JSON.stringify({ server: `s${port}`, path: req.url, padding: 'x'.repeat(2048) }))
        }),
      )
  })
  after(async () => {
    await Promise.all([...servers.values()].map((b) => b.close()))
  })

  /** The step's YAML, with its addresses moved to free ports and the test backends. */
  function stepConfig(marker: string): string {
    let yaml = blockAfter(marker, 'yaml')
    for (const [from, to] of [
      ['127.0.0.1:8080', '127.0.0.1:0'],
      ['http://127.0.0.1:3001', servers.get(3001)!.url],
      ['http://127.0.0.1:3002', servers.get(3002)!.url],
      ['http://127.0.0.1:3003', servers.get(3003)!.url],
    ] as const) {
      assert.ok(yaml.includes(from), `the README config has ${from}`)
      yaml = yaml.replaceAll(from, to)
    }
    return yaml
  }

  it('step 5: respond, redirect, rewrite, headers, compression and a canary split', async () => {
    const f = join(dir, 'rules.yaml')
    await writeFile(f, stepConfig('**5. Add request rules**'))
    const p = runCli(['-c', f])
    try {
      const base = await listenerUrl(p, 'public')
      const robots = await request(`${base}/robots.txt`)
      assert.equal(robots.statusCode, 200)
      assert.equal(await robots.body.text(), 'User-agent: *\nDisallow:\n')
      const old = await request(`${base}/old/a?x=1`)
      await old.body.text()
      assert.equal(old.statusCode, 301)
      assert.equal(old.headers.location, `${base}/new/a?x=1`)
      const api = await request(`${base}/api/users`, { headers: { 'accept-encoding': 'gzip' } })
      assert.equal(api.headers['content-encoding'], 'gzip')
      assert.equal(api.headers.server, undefined, 'the Server header was removed')
      const { gunzipSync } = await import('node:zlib')
      const json = JSON.parse(gunzipSync(Buffer.from(await api.body.arrayBuffer())).toString()) as { path: string }
      assert.equal(json.path, '/users')
      const seen = [...servers.values()].flatMap((b) => b.requests).find((r) => r.url === '/users')
      assert.equal(seen?.headers['x-client'], '127.0.0.1')
      // The catch-all splits 90/10 between web and canary.
      const sides = new Map<string, number>()
      for (let i = 0; i < 200; i++) {
        const r = await request(`${base}/`)
        const side = ((await r.body.json()) as { server: string }).server === 's3003' ? 'canary' : 'web'
        sides.set(side, (sides.get(side) ?? 0) + 1)
      }
      assert.ok((sides.get('canary') ?? 0) > 0 && (sides.get('canary') ?? 0) < 60, JSON.stringify([...sides]))
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })

  it('step 6: the README plugin, named in a config', async () => {
    const source = blockAfter('**6. Write a plugin**', 'ts').replace(
      "from 'switchyard-lb'",
      `from ${JSON.stringify(new URL('../../src/index.ts', import.meta.url).pathname)}`,
    )
    // An ES module project, as a user's would be (`"type": "module"`).
    await writeFile(join(dir, 'package.json'), '{ "type": "module" }\n')
    await writeFile(join(dir, 'tenant.ts'), source)
    const f = join(dir, 'plugin.yaml')
    await writeFile(
      f,
      `plugins: [{ module: ./tenant.ts }]\nlisteners: [{ name: public, listen: "127.0.0.1:0", routes: [{ pool: web }] }]\npools: [{ name: web, servers: [${servers.get(3001)!.url}] }]\n`,
    )
    const p = runCli(['-c', f])
    try {
      const base = await listenerUrl(p, 'public')
      const refused = await request(`${base}/`)
      assert.equal(refused.statusCode, 400)
      assert.equal(await refused.body.text(), 'x-tenant is required\n')
      const ok = await request(`${base}/t`, { headers: { 'x-tenant': 'ACME' } })
      assert.equal(ok.statusCode, 200)
      await ok.body.text()
      assert.equal(servers.get(3001)!.requests.find((r) => r.url === '/t')?.headers['x-tenant-id'], 'acme')
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })
})
