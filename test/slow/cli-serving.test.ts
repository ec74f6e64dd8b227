/**
 * The `switchyard` command serving, as a user runs it: a real child process, real signals, real sockets.
 * (Moved out of test/cli.test.ts, which keeps the quick validation tests; flags and usage errors are in
 * test/slow/cli-flags.test.ts.)
 */
import assert from 'node:assert/strict'
import { rename, writeFile } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { type EventStream, eventStream } from '../helpers/admin.js'
import { startBackends, type TestBackend } from '../helpers/backends.js'
import { configFiles, runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

const file = configFiles('switchyard-cli-')

/** Waits for the listener-ready log line and returns its port. */
async function readyPort(p: ReturnType<typeof runCli>, listener: string): Promise<number> {
  const line = await p.waitForLog((l) => l.listener === listener && typeof l.address === 'string')
  return Number(String(line.address).split(':').pop())
}

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
    await waitFor(() => backends[0]!.requests.length > seen, 'the slow request at the backend')
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
      `admin: { listen: 127.0.0.1:0 }\nlisteners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${server}]\n${extra}`
    const f = await file('reload.yaml', cfg(backends[0]!.url))
    const p = runCli(['-c', f])
    let events: EventStream | undefined
    try {
      const port = await readyPort(p, 'web')
      const admin = await p.waitForLog((l) => l.msg === 'admin API ready')
      events = await eventStream(`http://${String(admin.address)}`, undefined)
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
      // Load flows before, between and after the reloads: 100 more requests sent each time.
      const moreRequests = (what: string) => {
        const mark = total
        return waitFor(() => total >= mark + 100, `100 requests ${what}`)
      }
      await moreRequests('before the first reload')
      await writeFile(f, cfg(backends[1]!.url))
      p.kill('SIGHUP')
      await p.waitForLog((l) => l.msg === 'configuration generation 2 active')
      await moreRequests('after the first reload')
      await writeFile(f, `${cfg(backends[0]!.url)}bogus: true\n`)
      p.kill('SIGHUP')
      const rejected = await p.waitForLog((l) => String(l.msg).startsWith('reload rejected'))
      assert.match(String(rejected.msg), /reload\.yaml:9:1: bogus: unknown key/)
      // The admin API's event stream tells both: generation 2, then the file that did not validate.
      await events.next((e) => e.type === 'reload' && e.result === 'ok' && e.generation === 2, 'reload ok')
      const told = await events.next((e) => e.type === 'reload' && e.result === 'rejected', 'reload rejected')
      assert.match('message' in told ? told.message : '', /reload\.yaml:9:1: bogus: unknown key/)
      await moreRequests('after the rejected reload')
      stop = true
      await load
      assert.ok(total > 50, `load actually flowed (${total} requests)`)
      assert.equal(failures, 0, `no request failed across both reloads (${total} sent)`)
      assert.deepEqual([...seen].sort(), ['b1', 'b2'], 'traffic moved to the new server')
      assert.equal(await (await fetch(url)).text(), 'b2', 'the rejected config did not replace the running one')
    } finally {
      events?.close()
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

  describe('the pid', () => {
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
})
