/**
 * Slow-client attacks against Switchyard's defaults (docs/security.md#slow-clients): slowloris, slow
 * POST and slow read, 2,000 attacking connections each from 127.0.0.2, each attack bounded to 30 s,
 * while a normal client from 127.0.0.3 sends requests (on a kept-alive connection and on fresh ones).
 * Every normal request must succeed, and Switchyard must cut every attack connection within its
 * documented timeouts (`timeouts.requestHeaders`, 10 s; `slowClients.window`, 10 s; with the tick and
 * the connection ramp, 16 s is the bound). The same attacks run against nginx with its defaults, in
 * the same run, when nginx is installed (and SWITCHYARD_COMPARE_NGINX is not 0); both results are
 * printed for docs/security.md. Latencies are
 * printed, not asserted.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { Socket } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { NGINX_DIRS, nginxArgs, proxyConf } from '../../bench/lib/nginx.js'
import { findBinary } from '../../bench/lib/tools.js'
import type { ConfigInput } from '../../src/index.js'
import { deadPort, listenLocal } from '../helpers/backends.js'
import { type RunningLb, startLb } from '../helpers/lb.js'
import { type AttackKind, type AttackResult, establishedFrom, runAttack } from '../helpers/slow-attack.js'
import { waitFor } from '../helpers/wait.js'

const ATTACKERS = 2000
const MAX_MS = 30_000
/** Switchyard's documented timeouts (10 s), plus the 1 s tick and the time 2,000 connections take to land. */
const CUT_BOUND_MS = 16_000
/** 4 MiB: more than the kernel buffers between a paused client and the backend take, so that a slow reader holds its upstream connection. */
const BIG = Buffer.alloc(4 * 1024 * 1024, 0x61)

const ATTACKS: readonly AttackKind[] = ['slowloris', 'slow-post', 'slow-read']

function format(target: string, r: AttackResult): string {
  const cleared =
    r.clearedMs === undefined
      ? `still held after ${MAX_MS / 1000} s`
      : `cut within ${(r.clearedMs / 1000).toFixed(1)} s`
  return `# ${target} ${r.kind}: ${r.connected} attack connections, ${cleared}; normal requests ${r.normal.ok} ok, ${r.normal.failed} failed, p50 ${r.normal.p50Ms.toFixed(1)} ms, p99 ${r.normal.p99Ms.toFixed(1)} ms\n`
}

describe('slow-client attacks, 2,000 connections each', () => {
  let backend: Server
  const sockets = new Set<Socket>()
  let backendPort: number
  let lb: RunningLb
  let nginx: { child: ChildProcess; port: number; dir: string } | undefined

  before(async () => {
    backend = createServer((req, res) => {
      if (req.url === '/big') {
        req.resume()
        res.writeHead(200, { 'content-length': BIG.length })
        res.end(BIG)
      } else if (req.url === '/upload') {
        req.resume()
        req.on('end', () => res.end('stored'))
      } else {
        req.resume()
        res.end('ok')
      }
    })
    backend.on('connection', (s) => {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    })
    backendPort = await listenLocal(backend)
    // Switchyard with its defaults: nothing about slow clients is configured.
    lb = await startLb({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [`http://127.0.0.1:${backendPort}`] }],
    } as ConfigInput)
    // SWITCHYARD_COMPARE_NGINX=0: Switchyard alone (.ci/run compares once, in its first slow run).
    const binary = process.env.SWITCHYARD_COMPARE_NGINX === '0' ? undefined : findBinary('nginx')
    if (binary !== undefined) {
      const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-slow-nginx-'))
      // nginx's workers run unprivileged when the tests run as root: they must reach the directory and
      // write their temporary files (a response buffered to disk) under it.
      chmodSync(dir, 0o755)
      for (const d of NGINX_DIRS) {
        mkdirSync(path.join(dir, d), { recursive: true })
        chmodSync(path.join(dir, d), 0o777)
      }
      const port = await deadPort()
      const conf = path.join(dir, 'nginx.conf')
      writeFileSync(conf, proxyConf(dir, port, [backendPort], 1))
      const child = spawn(binary, nginxArgs(dir, conf), { stdio: 'ignore' })
      nginx = { child, port, dir }
      await waitFor(
        async () =>
          fetch(`http://127.0.0.1:${port}/small`).then(
            (r) => r.ok,
            () => false,
          ),
        'nginx to serve',
      )
    }
  })

  after(async () => {
    await lb.close()
    if (nginx !== undefined) {
      const exited = new Promise((r) => nginx?.child.once('exit', r))
      nginx.child.kill('SIGTERM')
      await exited
      rmSync(nginx.dir, { recursive: true, force: true })
    }
    for (const s of sockets) s.destroy()
    await new Promise((r) => backend.close(r))
  })

  for (const kind of ATTACKS) {
    it(`${kind}: every normal request succeeds, and Switchyard cuts the attack within ${CUT_BOUND_MS / 1000} s`, async () => {
      const r = await runAttack({
        kind,
        port: lb.port,
        count: ATTACKERS,
        attacker: '127.0.0.2',
        client: '127.0.0.3',
        maxMs: MAX_MS,
        // Slow read: what the attack holds is its requests (and their upstream connections); the
        // connections whose response the kernel took end with timeouts.idle, as any idle one.
        held: (normalInFlight) =>
          kind === 'slow-read'
            ? Math.max(0, (lb.lb.status().listeners[0]?.inFlight ?? 0) - normalInFlight)
            : establishedFrom(lb.port, '127.0.0.2'),
      })
      process.stdout.write(format('switchyard', r))
      if (nginx !== undefined) {
        const n = await runAttack({
          kind,
          port: nginx.port,
          count: ATTACKERS,
          attacker: '127.0.0.4',
          client: '127.0.0.5',
          maxMs: MAX_MS,
          held: () => establishedFrom(nginx?.port ?? 0, '127.0.0.4'),
        })
        process.stdout.write(format('nginx', n))
      }
      assert.ok(r.connected >= ATTACKERS * 0.95, `${r.connected} attack connections connected`)
      assert.equal(r.normal.failed, 0, 'every normal request succeeded')
      assert.ok(r.normal.ok > 50, `${r.normal.ok} normal requests`)
      assert.ok(r.clearedMs !== undefined && r.clearedMs < CUT_BOUND_MS, `cleared after ${r.clearedMs} ms`)
    })
  }
})
