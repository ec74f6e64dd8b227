// The keep-alive race, measured: the traffic of test/slow/keepalive-race.test.ts (a backend that closes idle
// connections after 1 s without announcing it, 50 clients sending 10 requests each in bursts spaced
// 990–1010 ms apart, half of them POSTs, through a link with 5 ms of latency each way) sent through
// Switchyard, Switchyard with `keepAliveRace: false`, the npm `http-proxy` and `@fastify/http-proxy`.
// Each proxy gets its own fresh backend and link; each run is 500 requests and about 10 s.
// Usage: npm run bench:keepalive-race [-- ROUNDS]
import { type ChildProcess, spawn } from 'node:child_process'
import { connect } from 'node:net'
import { createLoadBalancer } from '../src/index.js'
import {
  type SporadicResult,
  sporadicTraffic,
  startIdleClosingBackend,
  startLatencyLink,
} from '../test/helpers/keepalive-race.js'
import { freePorts } from './lib/children.js'

const ROUNDS = Number(process.argv[2] ?? 1)
const TRAFFIC = { sequences: 50, perSequence: 10, gapMs: [990, 1010] as const }

type Proxy = { url: string; stop(): Promise<void> }
type Launch = (backendPort: number) => Promise<Proxy>

function switchyard(keepAliveRace: boolean): Launch {
  return async (port) => {
    const lb = createLoadBalancer({
      logging: { accessLog: false },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [{ url: `http://127.0.0.1:${port}` }], retries: { keepAliveRace } }],
    })
    await lb.start()
    return {
      url: `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}/`,
      stop: () => lb.close({ gracePeriodMs: 200 }),
    }
  }
}

/** A bench peer (bench/peers/NAME.ts) in a child process, as `npm run bench` runs it. */
function peer(name: string): Launch {
  return async (port) => {
    const [listen] = await freePorts(1)
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', `bench/peers/${name}.ts`, String(listen), String(port)],
      {
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    )
    const deadline = Date.now() + 15_000
    while (!(await canConnect(listen!))) {
      if (Date.now() > deadline) throw new Error(`${name} did not listen on ${listen}`)
      await new Promise((r) => setTimeout(r, 100))
    }
    return {
      url: `http://127.0.0.1:${listen}/`,
      stop: async () => {
        child.kill('SIGTERM')
      },
    }
  }
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

const candidates: [string, Launch][] = [
  ['Switchyard', switchyard(true)],
  ['Switchyard, keepAliveRace: false', switchyard(false)],
  ['http-proxy (npm)', peer('http-proxy')],
  ['@fastify/http-proxy', peer('fastify-http-proxy')],
]

interface Row {
  failed: number
  sent: number
  kinds: Map<string, number>
  duplicates: number
}
const rows = new Map<string, Row>()
for (let round = 0; round < ROUNDS; round++) {
  for (const [name, launch] of candidates) {
    const backend = await startIdleClosingBackend(1000)
    const link = await startLatencyLink(backend.port, 5)
    const proxy = await launch(link.port)
    let result: SporadicResult
    try {
      result = await sporadicTraffic(proxy.url, { ...TRAFFIC, seed: round + 1 })
    } finally {
      await proxy.stop()
      await link.close()
      await backend.close()
    }
    const row = rows.get(name) ?? { failed: 0, sent: 0, kinds: new Map(), duplicates: 0 }
    row.sent += result.sent
    row.failed += result.sent - result.ok
    for (const [k, n] of result.failures) row.kinds.set(k, (row.kinds.get(k) ?? 0) + n)
    row.duplicates += [...backend.seen.values()].filter((n) => n > 1).length
    rows.set(name, row)
    process.stderr.write(`round ${round + 1}: ${name}: ${result.sent - result.ok} of ${result.sent} failed\n`)
  }
}

console.log(`\n| proxy | requests | failed | failure rate | failures | requests the application saw twice |`)
console.log('|---|---:|---:|---:|---|---:|')
for (const [name, r] of rows) {
  const kinds = [...r.kinds].map(([k, n]) => `${k} × ${n}`).join(', ') || '—'
  console.log(
    `| ${name} | ${r.sent} | ${r.failed} | ${((r.failed / r.sent) * 100).toFixed(1)}% | ${kinds} | ${r.duplicates} |`,
  )
}
