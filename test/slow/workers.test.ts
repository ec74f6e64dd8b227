/**
 * Multi-process mode through the real CLI: a supervisor and worker processes sharing one listener,
 * with real backends, real signals and a real SIGKILL of a worker.
 */
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { startBackend, startBackends, type TestBackend } from '../helpers/backends.js'
import { type CliProcess, runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

interface Status {
  readonly listeners: { name: string; inFlight: number }[]
  readonly workers: { index: number; pid: number | undefined; state: string; restarts: number }[]
}

let backends: TestBackend[]
let dir: string
before(async () => {
  backends = await startBackends(3)
  dir = await mkdtemp(join(tmpdir(), 'switchyard-workers-'))
})
after(async () => {
  await Promise.all(backends.map((b) => b.close()))
})

/** Starts the CLI with 2 workers and an admin port; resolves once both workers serve. */
async function start(args: readonly string[]): Promise<{ p: CliProcess; url: string; admin: string }> {
  const p = runCli(args)
  await p.waitForLog((l) => l.msg === '2 workers serving')
  const listener = await p.waitForLog((l) => typeof l.listener === 'string' && typeof l.address === 'string')
  const admin = await p.waitForLog((l) => l.msg === 'admin API ready')
  return {
    p,
    url: `http://${String(listener.address)}/`,
    admin: `http://${String(admin.address)}`,
  }
}

async function status(admin: string): Promise<Status> {
  return (await (await fetch(`${admin}/api/status`)).json()) as Status
}

/** `n` requests, each on a new connection, `concurrency` at a time; counts failures instead of throwing. */
async function load(
  url: string,
  n: number,
  concurrency: number,
): Promise<{ ok: number; failed: number; bodies: string[] }> {
  let next = 0
  let ok = 0
  let failed = 0
  const bodies: string[] = []
  const one = async () => {
    while (next < n) {
      next++
      try {
        const r = await fetch(url, { headers: { connection: 'close' } })
        const body = await r.text()
        if (r.status === 200) {
          ok++
          bodies.push(body)
        } else failed++
      } catch {
        failed++
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, one))
  return { ok, failed, bodies }
}

const quick = () => [
  '--listen',
  '127.0.0.1:0',
  ...backends.flatMap((b) => ['--to', b.url]),
  '--workers',
  '2',
  '--admin',
  '127.0.0.1:0',
]

describe('workers', () => {
  it('serves from every worker, and sums their metrics in the supervisor', async () => {
    const { p, url, admin } = await start(quick())
    try {
      const s = await status(admin)
      assert.equal(s.workers.length, 2)
      assert.ok(s.workers.every((w) => w.state === 'ready' && typeof w.pid === 'number'))
      assert.notEqual(s.workers[0]!.pid, s.workers[1]!.pid)

      const r = await load(url, 300, 6)
      assert.equal(r.failed, 0)
      assert.equal(r.ok, 300)
      for (const b of backends) assert.ok(r.bodies.includes(b.name), `${b.name} got traffic`)
      // Each worker logs its own access lines (batched for up to 100 ms): both must have served.
      const accessLines = () =>
        p
          .stdout()
          .split('\n')
          .filter((l) => l.includes('"type":"access"'))
      await waitFor(() => accessLines().length >= 300, 'an access line for each of the 300 requests')
      const servedBy = new Set(
        accessLines().map((l) => {
          const line = JSON.parse(l) as { worker: number; pid: number }
          return `${line.worker}:${line.pid}`
        }),
      )
      // `worker` is the slot index, as on the supervisor's lines; `pid` the process.
      assert.deepEqual(
        [...servedBy].sort(),
        s.workers.map((w) => `${w.index}:${w.pid}`).sort(),
        'both workers served requests',
      )

      const metrics = await (await fetch(`${admin}/metrics`)).text()
      assert.match(metrics, /switchyard_http_requests_total\{listener="default",pool="default",class="2xx"\} 300\n/)
      assert.match(metrics, /switchyard_http_request_duration_seconds_count\{listener="default",pool="default"\} 300\n/)
      const perServer = [...metrics.matchAll(/switchyard_upstream_requests_total\{[^}]*\} (\d+)/g)].map((m) =>
        Number(m[1]),
      )
      assert.equal(
        perServer.reduce((a, b) => a + b, 0),
        300,
      )
      assert.match(metrics, /switchyard_workers 2\n/)
      assert.equal(
        metrics.match(/# TYPE switchyard_http_requests_total /g)?.length,
        1,
        'one series family, not one per worker',
      )
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })

  it('restarts a killed worker while the listener keeps accepting', async () => {
    const { p, url, admin } = await start(quick())
    try {
      const before = await status(admin)
      const victim = before.workers[0]!.pid!
      let stop = false
      let ok = 0
      let failed = 0
      const client = async () => {
        while (!stop) {
          try {
            const r = await fetch(url, { headers: { connection: 'close' } })
            await r.text()
            if (r.status === 200) ok++
            else failed++
          } catch {
            failed++
          }
        }
      }
      const clients = Promise.all([client(), client()])
      await waitFor(() => ok >= 20, 'the clients served before the kill')
      const okBeforeKill = ok
      process.kill(victim, 'SIGKILL')
      const restarted = await p.waitForLog((l) => l.msg === 'worker 0 restarted')
      const okAtRestart = ok
      await waitFor(() => ok >= okAtRestart + 20, 'the clients served after the restart')
      stop = true
      await clients
      // The surviving worker served while the other was down and restarting.
      assert.ok(
        okAtRestart > okBeforeKill,
        `requests succeeded between the kill and the restart (${okAtRestart - okBeforeKill})`,
      )
      // Only requests in flight on the killed worker can fail: at most one per client.
      assert.ok(failed <= 2, `${failed} failed of ${ok + failed}`)
      const after = await status(admin)
      const slot = after.workers.find((w) => w.index === 0)!
      assert.equal(slot.restarts, 1)
      assert.equal(slot.state, 'ready')
      assert.notEqual(slot.pid, victim)
      assert.equal(restarted.pid, slot.pid)
      const metrics = await (await fetch(`${admin}/metrics`)).text()
      assert.match(metrics, /switchyard_worker_restarts_total 1\n/)
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })

  it('reloads every worker on SIGHUP, and drains all of them on SIGTERM', async () => {
    const cfg = (server: string) =>
      `workers: 2\nadmin: { listen: 127.0.0.1:0 }\nlisteners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${server}]\n`
    // Answers its name at once, or after 500 ms on /slow.
    const slowish = await startBackend('s', (req, res) => {
      req.resume()
      setTimeout(() => res.end('s'), req.url === '/slow' ? 500 : 0)
    })
    after(() => slowish.close())
    const f = join(dir, 'workers.yaml')
    await writeFile(f, cfg(backends[0]!.url))
    const { p, url } = await start(['-c', f])
    const first = await load(url, 20, 4)
    assert.deepEqual(new Set(first.bodies), new Set(['b1']))
    await writeFile(f, cfg(slowish.url))
    p.kill('SIGHUP')
    await p.waitForLog((l) => l.msg === 'configuration generation 2 active' && l.worker === undefined)
    const second = await load(url, 20, 4)
    assert.equal(second.failed, 0)
    assert.deepEqual(new Set(second.bodies), new Set(['s']), 'every worker serves the new config')

    // A slow request in flight when SIGTERM arrives still completes.
    const slowSeen = slowish.requests.length
    const slow = fetch(`${url}slow`).then(async (r) => ({ status: r.status, body: await r.text() }))
    await waitFor(() => slowish.requests.length > slowSeen, 'the slow request at the backend')
    p.kill('SIGTERM')
    assert.equal(await p.exited(), 0)
    assert.equal((await slow).status, 200)
  })

  it('checks health once for the instance, in the supervisor, and every worker follows its states', async () => {
    let sick = true
    const flaky = await startBackend('flaky', (req, res) => {
      req.resume()
      if (req.url === '/healthz') {
        res.writeHead(sick ? 503 : 200)
        res.end()
      } else res.end('flaky')
    })
    after(() => flaky.close())
    const f = join(dir, 'health.yaml')
    await writeFile(
      f,
      `workers: 2\nadmin: { listen: 127.0.0.1:0 }\nlisteners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [{ url: "${backends[0]!.url}", name: good }, { url: "${flaky.url}", name: flaky }]\n    healthCheck: { type: http, path: /healthz, interval: 50ms, rise: 1, fall: 2 }\n`,
    )
    const { p, url, admin } = await start(['-c', f])
    try {
      await p.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('server p/flaky DOWN'))
      // Both workers serve; neither sends to the server that is down.
      const down = await load(url, 40, 4)
      assert.equal(down.failed, 0)
      assert.deepEqual(new Set(down.bodies), new Set(['b1']))
      const metrics = await (await fetch(`${admin}/metrics`)).text()
      assert.match(metrics, /switchyard_server_up\{pool="p",server="flaky"\} 0/)
      sick = false
      await p.waitForLog((l) => typeof l.msg === 'string' && l.msg.includes('server p/flaky UP'))
      // The state reaches the workers over IPC, a moment after the supervisor logs it.
      let up: Awaited<ReturnType<typeof load>> | undefined
      await waitFor(async () => {
        up = await load(url, 40, 4)
        return up.bodies.includes('flaky')
      }, 'traffic on flaky from the workers')
      assert.deepEqual(new Set(up!.bodies), new Set(['b1', 'flaky']))
      // One checker for the instance: each transition was logged once, by the supervisor.
      const lines = p
        .stdout()
        .split('\n')
        .filter((l) => l.includes('server p/flaky DOWN'))
      assert.equal(lines.length, 1)
      assert.ok(!lines[0]!.includes('"worker"'), 'logged by the supervisor')
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })
})
