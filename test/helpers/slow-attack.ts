/**
 * Slow-client attacks for test/slow/slow-clients.test.ts, bounded in count and time: `count`
 * connections from one source address, each doing one of
 * - `slowloris`: a request head that never ends, one more header line every 2 s;
 * - `slow-post`: a POST announcing a 1 MB body, sent at 1 byte every 2 s;
 * - `slow-read`: a GET of a large response, never read (the socket is paused, so the kernel's receive
 *   buffer fills and stays full);
 * while a normal client from another address sends requests on a kept-alive connection and on fresh
 * ones, and records each one's outcome and latency. The attack stops by itself after `maxMs`.
 */
import { connect, type Socket } from 'node:net'
import { Agent, request } from 'undici'

export type AttackKind = 'slowloris' | 'slow-post' | 'slow-read'

export interface AttackOptions {
  readonly kind: AttackKind
  readonly port: number
  readonly count: number
  readonly attacker: string
  readonly client: string
  /** The attack ends after this long at the most. */
  readonly maxMs: number
  /**
   * How much of the attack the target still holds (its connections, or its requests in flight, given
   * how many of the normal client's are in flight now); the attack ends at 0.
   */
  readonly held: (normalInFlight: number) => number | Promise<number>
}

export interface AttackResult {
  readonly kind: AttackKind
  /** Attack connections that connected. */
  readonly connected: number
  /** From the first attack connection to the moment the target held none of them; undefined: still held at the end. */
  readonly clearedMs: number | undefined
  readonly normal: { readonly ok: number; readonly failed: number; readonly p50Ms: number; readonly p99Ms: number }
}

const TRICKLE_MS = 2000

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] as number
}

export async function runAttack(o: AttackOptions): Promise<AttackResult> {
  const sockets: Socket[] = []
  const timers: NodeJS.Timeout[] = []
  let connected = 0
  const started = performance.now()
  const deadline = started + o.maxMs
  for (let i = 0; i < o.count; i++) {
    const s = connect({ port: o.port, host: '127.0.0.1', localAddress: o.attacker })
    s.on('error', () => {})
    s.once('connect', () => {
      connected++
      switch (o.kind) {
        case 'slowloris': {
          s.write('GET /small HTTP/1.1\r\nHost: a\r\n')
          const t = setInterval(() => s.writable && s.write(`X-${i}: a\r\n`), TRICKLE_MS)
          timers.push(t)
          break
        }
        case 'slow-post': {
          s.write(`POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000\r\n\r\n${'x'.repeat(100)}`)
          const t = setInterval(() => s.writable && s.write('x'), TRICKLE_MS)
          timers.push(t)
          break
        }
        case 'slow-read':
          s.write('GET /big HTTP/1.1\r\nHost: a\r\n\r\n')
          s.pause()
          break
      }
    })
    sockets.push(s)
  }
  // The normal client: one request at a time on a kept-alive connection, and one on a fresh connection
  // each time, until the attack is over.
  const agent = new Agent({ localAddress: o.client, keepAliveTimeout: 60_000 })
  const latencies: number[] = []
  let ok = 0
  let failed = 0
  let normalInFlight = 0
  let clearedMs: number | undefined
  const normal = async (fresh: boolean) => {
    while (clearedMs === undefined && performance.now() < deadline) {
      const t = performance.now()
      normalInFlight++
      try {
        const res = await request(`http://127.0.0.1:${o.port}/small`, {
          dispatcher: agent,
          reset: fresh,
          headersTimeout: 5000,
          bodyTimeout: 5000,
        })
        await res.body.text()
        if (res.statusCode === 200) ok++
        else failed++
      } catch {
        failed++
      } finally {
        normalInFlight--
      }
      latencies.push(performance.now() - t)
    }
  }
  const watch = async () => {
    // Give the attack time to land before judging that the target holds none of it.
    while (performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250))
      if (performance.now() - started > 2000 && connected > 0 && (await o.held(normalInFlight)) === 0) {
        clearedMs = performance.now() - started
        return
      }
    }
  }
  try {
    await Promise.all([normal(false), normal(true), watch()])
  } finally {
    for (const t of timers) clearInterval(t)
    for (const s of sockets) s.destroy()
    await agent.close()
  }
  latencies.sort((a, b) => a - b)
  return {
    kind: o.kind,
    connected,
    clearedMs,
    normal: { ok, failed, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99) },
  }
}

/**
 * Connections from `from` that the server on 127.0.0.1:`port` holds open (ESTABLISHED on its side), read
 * from /proc/net/tcp: whatever the server is (Switchyard, nginx), a connection it cut is no longer one.
 */
export async function establishedFrom(port: number, from: string): Promise<number> {
  const { readFile } = await import('node:fs/promises')
  const text = await readFile('/proc/net/tcp', 'latin1')
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`
  const remote = `${from
    .split('.')
    .reverse()
    .map((o) => Number(o).toString(16).toUpperCase().padStart(2, '0'))
    .join('')}:`
  let n = 0
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/)
    if (f[1] === local && f[2]?.startsWith(remote) && f[3] === '01') n++
  }
  return n
}
