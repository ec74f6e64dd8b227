// What speaking HTTP/2 to the servers costs, per request, against HTTP/1.1 to them: one Switchyard
// process (from source, every feature on, the access log appended to a file) with two listeners, one in
// front of an HTTP/1.1 pool and one in front of an h2c pool, each of two Node backends answering 100
// bytes; and, as the floor, a featureless HTTP/1.1 → h2c proxy on node:http2 (peers/h2-dispatch.ts).
// wrk drives each in turn (A B C A B C ...), 50 connections, so all see the same machine; each proxy
// process's CPU time (utime + stime) is read over each run.
// Usage: npm run bench:upstream-protocols [-- --duration 5 --rounds 3 --connections 50]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Children, freePorts } from './lib/children.js'
import { CLK_TCK, treeTicks } from './lib/system.js'
import { runWrk, wrkVersion } from './lib/wrk.js'

function flag(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`)
  return at >= 0 ? Number(process.argv[at + 1]) : fallback
}

const durationS = flag('duration', 5)
const rounds = flag('rounds', 3)
const connections = flag('connections', 50)

if (wrkVersion() === undefined) {
  process.stderr.write('wrk is not installed (apt-get install wrk)\n')
  process.exit(2)
}

const root = path.resolve(import.meta.dirname, '..')
const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-bench-upstream-'))
const children = new Children(root)
const controller = new AbortController()
process.on('exit', () => children.killAllNow())

try {
  const [h1a, h1b, h2a, h2b, viaH1, viaH2, bare] = (await freePorts(7)) as number[] as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ]
  const tsx = ['--import', 'tsx']
  const h1 = children.start('h1 backends', process.execPath, [
    ...tsx,
    'bench/peers/backends.ts',
    String(h1a),
    String(h1b),
  ])
  const h2 = children.start('h2c backends', process.execPath, [
    ...tsx,
    'bench/peers/h2c-backends.ts',
    String(h2a),
    String(h2b),
  ])
  const floor = children.start('h2-dispatch', process.execPath, [
    ...tsx,
    'bench/peers/h2-dispatch.ts',
    String(bare),
    String(h2a),
    String(h2b),
  ])
  const config = path.join(dir, 'switchyard.yaml')
  writeFileSync(
    config,
    `listeners:
  - { name: via-http1, listen: 127.0.0.1:${viaH1}, routes: [{ pool: http1 }] }
  - { name: via-h2c, listen: 127.0.0.1:${viaH2}, routes: [{ pool: h2c }] }
pools:
  - name: http1
    servers: [http://127.0.0.1:${h1a}, http://127.0.0.1:${h1b}]
  - name: h2c
    protocol: h2c
    servers: [http://127.0.0.1:${h2a}, http://127.0.0.1:${h2b}]
`,
  )
  const lb = children.start('switchyard', process.execPath, [...tsx, 'test/helpers/cli-entry.ts', '-c', config], {
    stdout: { file: path.join(dir, 'access.log') },
  })
  for (const [child, port] of [
    [h1, h1a],
    [h1, h1b],
    [h2, h2a],
    [h2, h2b],
    [lb, viaH1],
    [lb, viaH2],
    [floor, bare],
  ] as const)
    await children.waitForPort(child, port, 20_000, controller.signal)
  const results: Record<string, { reqPerS: number[]; cpuUsPerReq: number[]; p99Ms: number[]; errors: number }> = {
    http1: { reqPerS: [], cpuUsPerReq: [], p99Ms: [], errors: 0 },
    h2c: { reqPerS: [], cpuUsPerReq: [], p99Ms: [], errors: 0 },
    floor: { reqPerS: [], cpuUsPerReq: [], p99Ms: [], errors: 0 },
  }
  // A short warm-up of each, then the interleaved rounds.
  for (const port of [viaH1, viaH2, bare])
    await runWrk(children, { url: `http://127.0.0.1:${port}/`, connections, durationS: 2 }, controller.signal)
  for (let r = 0; r < rounds; r++)
    for (const [name, port, pid] of [
      ['http1', viaH1, lb.pid],
      ['h2c', viaH2, lb.pid],
      ['floor', bare, floor.pid],
    ] as const) {
      const before = treeTicks(pid)
      const run = await runWrk(
        children,
        { url: `http://127.0.0.1:${port}/`, connections, durationS },
        controller.signal,
      )
      const ticks = treeTicks(pid) - before
      const entry = results[name] as (typeof results)['http1']
      entry.reqPerS.push(run.reqPerS)
      entry.p99Ms.push(run.p99Ms)
      entry.cpuUsPerReq.push(run.requests > 0 ? ((ticks / CLK_TCK) * 1e6) / run.requests : 0)
      entry.errors += run.socketErrors + run.badStatuses
      process.stderr.write(`round ${r + 1} ${name}: ${Math.round(run.reqPerS)} req/s\n`)
    }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
  const h1m = results.http1 as (typeof results)['http1']
  const h2m = results.h2c as (typeof results)['http1']
  const row = (label: string, r: (typeof results)['http1']) =>
    `| ${label} | ${Math.round(median(r.reqPerS)).toLocaleString('en')} | ${median(r.cpuUsPerReq).toFixed(0)} | ${median(r.p99Ms).toFixed(1)} ms | ${r.errors} |`
  const fl = results.floor as (typeof results)['http1']
  const lines = [
    `Node ${process.version}, ${rounds} interleaved rounds of ${durationS} s, wrk -t1 -c${connections}, 100-byte responses`,
    '',
    '| proxy | req/s (median) | µs CPU per request (proxy process) | p99 | errors |',
    '| --- | --: | --: | --: | --: |',
    row('Switchyard, `protocol: http1` pool', h1m),
    row('Switchyard, `protocol: h2c` pool', h2m),
    row('bare node:http2 client (h2-dispatch, no features)', fl),
    '',
    `h2c / http1 pool: ${(median(h2m.reqPerS) / median(h1m.reqPerS)).toFixed(2)}× the requests per second, ${(median(h2m.cpuUsPerReq) - median(h1m.cpuUsPerReq)).toFixed(0)} µs more CPU per request; h2c pool / bare node:http2: ${(median(h2m.reqPerS) / median(fl.reqPerS)).toFixed(2)}×`,
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
} finally {
  await children.stopAll()
  rmSync(dir, { recursive: true, force: true })
}
