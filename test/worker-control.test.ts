/**
 * The supervisor and its workers as a control plane: a worker survives control messages that fail,
 * reloads are all or nothing across workers and run one at a time, and log lines name the worker by
 * its slot index (`worker`) and process id (`pid`).
 */
import assert from 'node:assert/strict'
import { type ChildProcess, fork } from 'node:child_process'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { validateConfig } from '../src/config/index.js'
import type { FromWorker } from '../src/server/ipc.js'
import { startBackends, type TestBackend } from './helpers/backends.js'

const WORKER_MAIN = fileURLToPath(new URL('../src/server/worker-main.ts', import.meta.url))

let backends: TestBackend[]
before(async () => {
  backends = await startBackends(3)
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
