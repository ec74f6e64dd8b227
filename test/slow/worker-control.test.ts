/**
 * The supervisor and its workers as a control plane: a worker survives control messages that fail,
 * reloads are all or nothing across workers and run one at a time, and log lines name the worker by
 * its slot index (`worker`) and process id (`pid`). Also measures how the kernel spreads connections
 * over the workers (docs/workers.md quotes it).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, fork } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Pool } from 'undici'
import { validateConfig } from '../../src/config/index.js'
import type { FromWorker } from '../../src/server/ipc.js'
import { startBackends, type TestBackend } from '../helpers/backends.js'
import { type CliProcess, runCli } from '../helpers/cli.js'

const WORKER_MAIN = fileURLToPath(new URL('../../src/server/worker-main.ts', import.meta.url))

let backends: TestBackend[]
let dir: string
before(async () => {
  backends = await startBackends(3)
  dir = await mkdtemp(join(tmpdir(), 'switchyard-worker-control-'))
})
after(async () => {
  await Promise.all(backends.map((b) => b.close()))
})

/** A worker process forked on its own, the way the supervisor forks it, with its messages queued. */
function forkWorker(index: number) {
  const child: ChildProcess = fork(WORKER_MAIN, [], {
    execArgv: ['--import', 'tsx'],
    serialization: 'advanced',
    env: { ...process.env, SWITCHYARD_WORKER: '1', SWITCHYARD_WORKER_INDEX: String(index) },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  })
  let out = ''
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    out += c
  })
  const inbox: FromWorker[] = []
  const waiters: { pred: (m: FromWorker) => boolean; resolve: (m: FromWorker) => void }[] = []
  child.on('message', (m: FromWorker) => {
    const w = waiters.find((x) => x.pred(m))
    if (w) {
      waiters.splice(waiters.indexOf(w), 1)
      w.resolve(m)
    } else inbox.push(m)
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const next = (pred: (m: FromWorker) => boolean, timeoutMs = 15_000): Promise<FromWorker> => {
    const queued = inbox.find(pred)
    if (queued) {
      inbox.splice(inbox.indexOf(queued), 1)
      return Promise.resolve(queued)
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no such message within ${timeoutMs} ms\n${out}`)), timeoutMs)
      waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer)
          resolve(m)
        },
      })
      void exited.then((code) => reject(new Error(`worker exited (${code}) before the message\n${out}`)))
    })
  }
  const reply = (id: number) => next((m) => m.t === 'reply' && m.id === id)
  return { child, next, reply, exited, stdout: () => out }
}

function config(server: string) {
  const r = validateConfig({
    listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers: [server] }],
  })
  assert.ok(r.ok)
  return r.config
}

describe('a worker process and its control messages', () => {
  it('answers a failing message with an error, logs it, and keeps serving', async () => {
    const w = forkWorker(3)
    try {
      await w.next((m) => m.t === 'booted')
      // Before `start`: nothing to report, and nothing to reload.
      w.child.send({ t: 'status', id: 1 })
      assert.deepEqual(await w.reply(1), { t: 'reply', id: 1, ok: false, message: 'worker not started' })
      w.child.send({ t: 'reload', id: 2, config: config(backends[0]!.url) })
      assert.deepEqual(await w.reply(2), { t: 'reply', id: 2, ok: false, message: 'worker not started' })
      // A message the worker does not know (a supervisor of another version, say) used to be an
      // unhandled rejection, which ends a Node process.
      w.child.send({ t: 'frobnicate', id: 3 })
      assert.deepEqual(await w.reply(3), {
        t: 'reply',
        id: 3,
        ok: false,
        message: 'unknown message type "frobnicate"',
      })
      w.child.send({ t: 'frobnicate' })

      w.child.send({ t: 'start', config: config(backends[0]!.url), level: 'info' })
      const ready = await w.next((m) => m.t === 'ready')
      assert.ok(ready.t === 'ready')
      const port = ready.addresses.web!.port
      // A second `start` (no id) fails, is logged, and changes nothing.
      w.child.send({ t: 'start', config: config(backends[1]!.url), level: 'info' })
      w.child.send({ t: 'status', id: 4 })
      const status = await w.reply(4)
      assert.ok(status.t === 'reply' && status.ok)
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'b1')

      const failures = w
        .stdout()
        .split('\n')
        .filter((l) => l.includes('control message failed'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      assert.deepEqual(
        failures.map((l) => [l.level, l.msg, l.worker, l.pid]),
        [
          ['error', 'control message failed: worker not started', 3, w.child.pid],
          ['error', 'control message failed: worker not started', 3, w.child.pid],
          ['error', 'control message failed: unknown message type "frobnicate"', 3, w.child.pid],
          ['error', 'control message failed: unknown message type "frobnicate"', 3, w.child.pid],
          ['error', 'control message failed: worker already started', 3, w.child.pid],
        ],
      )
      const listening = w
        .stdout()
        .split('\n')
        .find((l) => l.includes('listener web ready'))
      assert.ok(listening)
      assert.deepEqual(
        [(JSON.parse(listening) as { worker: number }).worker, (JSON.parse(listening) as { pid: number }).pid],
        [3, w.child.pid],
        'every line of the worker carries its slot index and its pid',
      )
      w.child.send({ t: 'stop', gracePeriodMs: 1000 })
      assert.equal(await w.exited, 0)
    } finally {
      w.child.kill('SIGKILL')
    }
  })
})

describe('supervisor reloads', () => {
  const cfg = (server: string) =>
    `workers: 2\nadmin: { listen: 127.0.0.1:0 }\nlisteners:\n  - name: web\n    listen: 127.0.0.1:0\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${server}]\n`

  async function start(file: string): Promise<{ p: CliProcess; url: string; admin: string }> {
    const p = runCli(['-c', file])
    await p.waitForLog((l) => l.msg === '2 workers serving')
    const listener = await p.waitForLog((l) => l.listener === 'web' && typeof l.address === 'string')
    const admin = await p.waitForLog((l) => l.msg === 'admin API ready')
    return { p, url: `http://${String(listener.address)}/`, admin: `http://${String(admin.address)}` }
  }

  async function bodies(url: string, n: number): Promise<Set<string>> {
    const seen = new Set<string>()
    for (let i = 0; i < n; i++) seen.add(await (await fetch(url, { headers: { connection: 'close' } })).text())
    return seen
  }

  it('are all or nothing: a worker that does not take the config rolls the others back; reloads queue', async () => {
    const f = join(dir, 'rollback.yaml')
    await writeFile(f, cfg(backends[0]!.url))
    const { p, url, admin } = await start(f)
    let stopped: number | undefined
    try {
      const status = (await (await fetch(`${admin}/api/status`)).json()) as { workers: { pid: number }[] }
      const [w0, w1] = status.workers.map((w) => w.pid)
      assert.deepEqual(await bodies(url, 4), new Set(['b1']))

      // Worker 1 stops answering (SIGSTOP): worker 0 takes the new config, worker 1 never answers.
      await writeFile(f, cfg(backends[1]!.url))
      process.kill(w1!, 'SIGSTOP')
      stopped = w1
      p.kill('SIGHUP')
      await p.waitForLog((l) => l.worker === 0 && l.msg === 'configuration generation 2 active')
      // A second reload asked meanwhile waits for the first one to end.
      await writeFile(f, cfg(backends[2]!.url))
      p.kill('SIGHUP')
      // After 10 s without an answer, worker 0 goes back to the old config...
      await p.waitForLog((l) => l.msg === 'worker 0 rolled back to configuration generation 1', 20_000)
      // ...and worker 1, once it runs again, applies the new config, then the old one, in order.
      process.kill(w1!, 'SIGCONT')
      stopped = undefined
      await p.waitForLog((l) => l.msg === 'worker 1 rolled back to configuration generation 1')
      const failed = await p.waitForLog((l) => String(l.msg).startsWith('reload failed'))
      assert.equal(
        failed.msg,
        'reload failed, keeping the running configuration: 1 of 2 workers rejected the configuration (worker 1: no answer to "reload" within 10000 ms); worker 0, 1 rolled back; generation 1 still active',
      )
      // Then the queued reload runs, and succeeds on both (each worker logs its own line, from its own
      // process: wait for both, as the supervisor's line can come first).
      await p.waitForLog((l) => l.worker === undefined && l.msg === 'configuration generation 2 active')
      for (const index of [0, 1])
        await p.waitForLog((l) => l.worker === index && l.msg === 'configuration generation 4 active')
      const lines = p
        .stdout()
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      const order = lines.flatMap((l) =>
        l.msg === 'SIGHUP received: reloading configuration'
          ? ['reload']
          : String(l.msg).startsWith('reload failed')
            ? ['failed']
            : l.worker === undefined && l.msg === 'configuration generation 2 active'
              ? ['committed']
              : [],
      )
      assert.deepEqual(order, ['reload', 'failed', 'reload', 'committed'], 'the second reload began after the first')
      // Each worker's own generations: 2 (the rejected config), 3 (rolled back), 4 (the queued reload).
      for (const [index, pid] of [
        [0, w0],
        [1, w1],
      ])
        assert.deepEqual(
          lines.filter((l) => l.worker === index && String(l.msg).endsWith(' active')).map((l) => [l.pid, l.msg]),
          [2, 3, 4].map((g) => [pid, `configuration generation ${g} active`]),
          `worker ${index}`,
        )
      assert.deepEqual(await bodies(url, 20), new Set(['b3']))
      const metrics = await (await fetch(`${admin}/metrics`)).text()
      assert.match(metrics, /switchyard_config_reloads_total\{result="rejected"\} 1\n/)
      assert.match(metrics, /switchyard_config_reloads_total\{result="ok"\} 1\n/)
      const s = (await (await fetch(`${admin}/api/status`)).json()) as { generation: number }
      assert.equal(s.generation, 2)
    } finally {
      if (stopped !== undefined) process.kill(stopped, 'SIGCONT')
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }
  })
})

describe('connections over workers (a shared listening socket, the default scheduling)', () => {
  /** Requests per worker index, from the access lines written after `from` characters of stdout. */
  function perWorker(p: CliProcess, from: number): [number, number] {
    const counts: [number, number] = [0, 0]
    for (const line of p.stdout().slice(from).split('\n'))
      if (line.includes('"type":"access"')) counts[(JSON.parse(line) as { worker: 0 | 1 }).worker]++
    return counts
  }

  it('measured: new connections split about evenly; a few keep-alive connections need not', async (t) => {
    const p = runCli(['--listen', '127.0.0.1:0', ...backends.flatMap((b) => ['--to', b.url]), '--workers', '2'])
    try {
      await p.waitForLog((l) => l.msg === '2 workers serving')
      const l = await p.waitForLog((x) => x.listener === 'default' && typeof x.address === 'string')
      const origin = `http://${String(l.address)}`
      // 400 requests, each on a new connection, 8 at a time.
      let next = 0
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next++ < 400) await (await fetch(`${origin}/`, { headers: { connection: 'close' } })).text()
        }),
      )
      // Access lines are batched for up to 100 ms; the log line of the SIGTERM comes after them.
      const fresh = await waitForCounts(p, 0, 400)
      t.diagnostic(`400 new connections: worker 0 took ${fresh[0]}, worker 1 took ${fresh[1]}`)
      assert.ok(fresh[0] > 0 && fresh[1] > 0, 'both workers accepted connections')
      // 10 rounds of 40 requests over 4 keep-alive connections: a request goes where its connection went.
      const rounds: string[] = []
      for (let round = 0; round < 10; round++) {
        const from = p.stdout().length
        const pool = new Pool(origin, { connections: 4 })
        await Promise.all(
          Array.from({ length: 40 }, async () => (await pool.request({ path: '/', method: 'GET' })).body.text()),
        )
        await pool.close()
        const c = await waitForCounts(p, from, 40)
        rounds.push(`${c[0]}/${c[1]}`)
      }
      t.diagnostic(`4 keep-alive connections, 40 requests, per round (worker 0/worker 1): ${rounds.join(' ')}`)
    } finally {
      p.kill('SIGTERM')
      assert.equal(await p.exited(), 0)
    }

    async function waitForCounts(cli: CliProcess, from: number, total: number): Promise<[number, number]> {
      const deadline = Date.now() + 5_000
      for (;;) {
        const c = perWorker(cli, from)
        if (c[0] + c[1] >= total) return c
        if (Date.now() > deadline) throw new Error(`only ${c[0] + c[1]} of ${total} access lines`)
        await new Promise((r) => setTimeout(r, 20))
      }
    }
  })
})
