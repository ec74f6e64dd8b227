/** The `switchyard` command as a user runs it: a real child process, real signals, real sockets. */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rename, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startBackends, type TestBackend } from './helpers/backends.js'
import { runCli, runCliToEnd } from './helpers/cli.js'

let dir: string
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'switchyard-cli-'))
})

async function file(name: string, text: string): Promise<string> {
  const p = join(dir, name)
  await writeFile(p, text)
  return p
}

/** Waits for the listener-ready log line and returns its port. */
async function readyPort(p: ReturnType<typeof runCli>, listener: string): Promise<number> {
  const line = await p.waitForLog((l) => l.listener === listener && typeof l.address === 'string')
  return Number(String(line.address).split(':').pop())
}

describe('switchyard validate', () => {
  it('prints a one-line summary and exits 0 for a valid file', async () => {
    const f = await file(
      'ok.yaml',
      'listeners:\n  - { name: a, listen: 127.0.0.1:0, routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1, http://127.0.0.1:2] }\n',
    )
    const r = await runCliToEnd(['validate', f])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, `${f}: ok (1 listener, 1 route, 1 pool, 2 servers)\n`)
  })

  it('prints every problem as FILE:LINE:COL: key.path: expected/found and exits 2', async () => {
    const f = await file(
      'bad.yaml',
      [
        'listeners:',
        '  - name: a',
        '    listen: 127.0.0.1:0',
        '    routes: [{ pool: nope }]',
        'pools:',
        '  - name: p',
        '    servers:',
        '      - url: http://127.0.0.1:1',
        '        weight: heavy',
        '    colour: blue',
        '',
      ].join('\n'),
    )
    const r = await runCliToEnd(['validate', f])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      [
        `${f}:4:22: listeners[0].routes[0].pool: expected the name of a pool (p), found "nope"`,
        `${f}:9:17: pools[0].servers[0].weight: expected a number, found "heavy"`,
        `${f}:10:5: pools[0].colour: unknown key, expected one of name, balance, servers, sticky, healthCheck, outlierDetection, retries, ejectOnConnectFailure, panicThreshold, slowStart, preserveHost, timeouts, connections, queue`,
        '3 problems found',
        '',
      ].join('\n'),
    )
  })

  it('says so when the file is missing', async () => {
    const r = await runCliToEnd(['validate', join(dir, 'missing.yaml')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /missing\.yaml:1:1: \(file\): cannot read: no such file/)
  })

  it('refuses to start with an invalid config, with the same positioned errors', async () => {
    const f = await file('bad2.yaml', 'listeners: []\npools: []\n')
    const r = await runCliToEnd(['--config', f])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /bad2\.yaml:1:12: listeners: expected at least 1 item, found 0/)
  })
})

describe('switchyard flags', () => {
  it('--version and --help', async () => {
    const v = await runCliToEnd(['--version'])
    assert.equal(v.code, 0)
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/)
    const h = await runCliToEnd(['--help'])
    assert.equal(h.code, 0)
    for (const flag of ['--listen', '--to', '--balance', '--admin', '--config', 'validate', 'demo', '--log-level'])
      assert.ok(h.stdout.includes(flag), `help mentions ${flag}`)
  })

  it('rejects unknown flags and bad quick-mode values with exit 2', async () => {
    const u = await runCliToEnd(['--frobnicate'])
    assert.equal(u.code, 2)
    assert.match(u.stderr, /Unknown option '--frobnicate'/)
    const b = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', 'ftp://x', '--balance', 'fastest'])
    assert.equal(b.code, 2)
    assert.match(b.stderr, /--balance: expected "round-robin" or "weighted-round-robin"/)
    assert.match(b.stderr, /--balance: expected "round-robin" or .* or "maglev", found "fastest"\n/)
    assert.match(b.stderr, /--to #1: expected an http:\/\/ \(or tcp:\/\/\) URL, found "ftp:\/\/x"/)
  })

  it('the installed bin runs (needs the build from npm ci)', {
    skip: !existsSync('dist/cli.js') && 'dist/ not built',
  }, async () => {
    const { execFile } = await import('node:child_process')
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['bin/switchyard.js', '--version'], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    )
    assert.match(out, /^\d+\.\d+\.\d+\n$/)
  })

  it('a port already in use gives a one-line error naming the flag or the config key, and exit 1', async () => {
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    const { port } = blocker.address() as AddressInfo
    const taken = `127.0.0.1:${port}`
    try {
      const listen = await runCliToEnd(['--listen', taken, '--to', 'http://127.0.0.1:1'])
      assert.equal(listen.code, 1)
      assert.equal(listen.stderr, `switchyard: --listen ${taken}: address already in use\n`)
      const admin = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', 'http://127.0.0.1:1', '--admin', taken])
      assert.equal(admin.code, 1)
      assert.equal(admin.stderr, `switchyard: --admin ${taken}: address already in use\n`)
      const demo = await runCliToEnd(['demo', '--listen', '127.0.0.1:0', '--admin', taken])
      assert.equal(demo.code, 1)
      assert.equal(demo.stderr, `switchyard: --admin ${taken}: address already in use\n`)
      // With workers, the listener is bound in the worker processes; the error is the same.
      const workers = await runCliToEnd(['--listen', taken, '--to', 'http://127.0.0.1:1', '--workers', '2'])
      assert.equal(workers.code, 1)
      assert.equal(workers.stderr, `switchyard: --listen ${taken}: address already in use\n`)

      const body = (listenAt: string, adminAt: string) =>
        `admin: { listen: "${adminAt}" }\nlisteners:\n  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: p }] }\n  - { name: api, listen: "${listenAt}", routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1] }\n`
      const f1 = await file('in-use-listener.yaml', body(taken, '127.0.0.1:0'))
      const l = await runCliToEnd(['-c', f1])
      assert.equal(l.code, 1)
      assert.equal(l.stderr, `switchyard: ${f1}: listener "api" (listen: ${taken}): address already in use\n`)
      const f2 = await file('in-use-admin.yaml', body('127.0.0.1:0', taken))
      const a = await runCliToEnd(['-c', f2])
      assert.equal(a.code, 1)
      assert.equal(a.stderr, `switchyard: ${f2}: admin.listen ${taken}: address already in use\n`)
    } finally {
      blocker.close()
    }
  })

  it('logs its own pid once it serves, with what to signal', async () => {
    const p = runCli(['--listen', '127.0.0.1:0', '--to', 'http://127.0.0.1:1'])
    try {
      const line = await p.waitForLog((l) => typeof l.pid === 'number' && String(l.msg).includes('running as pid'))
      assert.equal(line.pid, p.pid)
      assert.match(String(line.msg), new RegExp(`running as pid ${p.pid}: kill -TERM ${p.pid} drains and stops$`))
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })
})

describe('switchyard serving (quick mode and config file)', () => {
  let backends: TestBackend[]
  before(async () => {
    backends = await startBackends(2, (req, res, b) => {
      req.resume()
      const delay = req.url === '/slow' ? 2000 : 0
      setTimeout(() => res.end(b.name), delay)
    })
  })
  after(async () => {
    await Promise.all(backends.map((b) => b.close()))
  })

  it('quick mode balances over --to servers and serves the admin API', async () => {
    const p = runCli([
      '--listen',
      '127.0.0.1:0',
      '--to',
      backends[0]!.url,
      '--to',
      backends[1]!.url,
      '--admin',
      '127.0.0.1:0',
    ])
    try {
      const port = await readyPort(p, 'default')
      const names = []
      for (let i = 0; i < 4; i++) names.push(await (await fetch(`http://127.0.0.1:${port}/`)).text())
      assert.deepEqual(names, ['b1', 'b2', 'b1', 'b2'])
      const admin = await p.waitForLog((l) => l.msg === 'admin API ready')
      const base = `http://${String(admin.address)}`
      const status = (await (await fetch(`${base}/api/status`)).json()) as { pools: { servers: unknown[] }[] }
      assert.equal(status.pools[0]!.servers.length, 2)
      const metrics = await (await fetch(`${base}/metrics`)).text()
      assert.match(metrics, /switchyard_http_requests_total\{listener="default",pool="default",class="2xx"\} 4/)
      assert.match(metrics, /switchyard_upstream_requests_total\{pool="default",server="127\.0\.0\.1:\d+"\} 2/)
      assert.equal((await fetch(`${base}/healthz`)).status, 200)
    } finally {
      p.kill()
      assert.equal(await p.exited(), 0)
    }
  })

  it('SIGTERM drains: a 2 s in-flight request completes, new connections are refused, exit 0', async () => {
    const p = runCli(['--listen', '127.0.0.1:0', '--to', backends[0]!.url])
    const port = await readyPort(p, 'default')
    const seen = backends[0]!.requests.length
    const inFlight = fetch(`http://127.0.0.1:${port}/slow`).then(async (r) => ({
      status: r.status,
      body: await r.text(),
      conn: r.headers.get('connection'),
    }))
    while (backends[0]!.requests.length === seen) await new Promise((r) => setTimeout(r, 10))
    p.kill('SIGTERM')
    await p.waitForLog((l) => l.msg === 'SIGTERM received: draining')
    await assert.rejects(fetch(`http://127.0.0.1:${port}/`), 'the listener no longer accepts')
    const done = await inFlight
    assert.deepEqual(done, { status: 200, body: 'b1', conn: 'close' })
    assert.equal(await p.exited(), 0)
    assert.match(p.stdout(), /"msg":"shutdown complete"/)
  })

  it('SIGHUP reloads: a valid config takes effect, an invalid one is rejected, zero failed requests throughout', async () => {
    const cfg = (server: string, extra = '') =>
      `listeners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${server}]\n${extra}`
    const f = await file('reload.yaml', cfg(backends[0]!.url))
    const p = runCli(['-c', f])
    try {
      const port = await readyPort(p, 'web')
      const url = `http://127.0.0.1:${port}/`
      let failures = 0
      let total = 0
      const seen = new Set<string>()
      let stop = false
      const deadline = Date.now() + 20_000
      const worker = async () => {
        while (!stop && Date.now() < deadline && total < 20_000) {
          total++
          try {
            const r = await fetch(url)
            const text = await r.text()
            if (r.status !== 200) failures++
            else seen.add(text)
          } catch {
            failures++
          }
        }
      }
      const load = Promise.all([worker(), worker(), worker(), worker()])
      await new Promise((r) => setTimeout(r, 300))
      await writeFile(f, cfg(backends[1]!.url))
      p.kill('SIGHUP')
      await p.waitForLog((l) => l.msg === 'configuration generation 2 active')
      await new Promise((r) => setTimeout(r, 300))
      await writeFile(f, `${cfg(backends[0]!.url)}bogus: true\n`)
      p.kill('SIGHUP')
      const rejected = await p.waitForLog((l) => String(l.msg).startsWith('reload rejected'))
      assert.match(String(rejected.msg), /reload\.yaml:8:1: bogus: unknown key/)
      await new Promise((r) => setTimeout(r, 300))
      stop = true
      await load
      assert.ok(total > 50, `load actually flowed (${total} requests)`)
      assert.equal(failures, 0, `no request failed across both reloads (${total} sent)`)
      assert.deepEqual([...seen].sort(), ['b1', 'b2'], 'traffic moved to the new server')
      assert.equal(await (await fetch(url)).text(), 'b2', 'the rejected config did not replace the running one')
    } finally {
      p.kill()
      await p.exited()
    }
  })

  it('--watch reloads when the file changes (also when replaced by a rename), and rejects a bad edit', async () => {
    const cfg = (server: string, extra = '') =>
      `listeners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${server}]\n${extra}`
    const f = await file('watched.yaml', cfg(backends[0]!.url))
    const p = runCli(['-c', f, '--watch'])
    try {
      const port = await readyPort(p, 'web')
      await p.waitForLog((l) => l.msg === 'watching the config file for changes')
      const url = `http://127.0.0.1:${port}/`
      assert.equal(await (await fetch(url)).text(), 'b1')
      // Written in place.
      await writeFile(f, cfg(backends[1]!.url))
      await p.waitForLog((l) => l.msg === 'configuration generation 2 active')
      assert.equal(await (await fetch(url)).text(), 'b2')
      // Replaced the way deploy tools do it: a new file renamed over the old one.
      await writeFile(`${f}.tmp`, cfg(backends[0]!.url))
      await rename(`${f}.tmp`, f)
      await p.waitForLog((l) => l.msg === 'configuration generation 3 active')
      assert.equal(await (await fetch(url)).text(), 'b1')
      // A bad edit is rejected; the running configuration stays.
      await writeFile(f, `${cfg(backends[1]!.url)}bogus: true\n`)
      const rejected = await p.waitForLog((l) => String(l.msg).startsWith('reload rejected'))
      assert.match(String(rejected.msg), /watched\.yaml:8:1: bogus: unknown key/)
      assert.equal(await (await fetch(url)).text(), 'b1')
      assert.equal(p.stdout().match(/config file changed: reloading configuration/g)?.length, 3)
    } finally {
      p.kill()
      await p.exited()
    }
  })

  it('--watch without --config is a usage error', async () => {
    const r = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', backends[0]!.url, '--watch'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--watch needs --config FILE/)
  })
})
