/**
 * The keep-alive race, reproduced: a backend that closes idle keep-alive connections after `idleMs`
 * without announcing it (no `Keep-Alive: timeout=` header, like many servers behind a proxy), and
 * clients whose requests arrive, sporadically, right around that timeout. A proxy that reuses an
 * idle upstream socket at the moment the backend closes it writes a request that the backend never
 * reads: the classic "socket hang up" / ECONNRESET of node-http-proxy. Used by
 * test/slow/keepalive-race.test.ts and by `npm run bench:keepalive-race`, which runs the npm `http-proxy`
 * through the same traffic.
 */
import { createServer, type Server } from 'node:http'
import { type AddressInfo, createConnection, createServer as createTcpServer, type Socket } from 'node:net'
import { Agent, request } from 'undici'
import { closeServer } from './backends.js'

export interface IdleClosingBackend {
  readonly url: string
  readonly port: number
  readonly server: Server
  /** Request ids (`x-test-id`) the application saw, with how often: a retry must never duplicate one. */
  readonly seen: Map<string, number>
  /** Idle connections this backend closed. */
  readonly idleCloses: () => number
  close(): Promise<void>
}

/**
 * A backend that destroys a keep-alive connection `idleMs` after its last response, with no
 * `Keep-Alive` header to warn the client. Bytes that arrive as it closes are never read: the kernel
 * answers them with a reset, exactly what a real server's idle timer does.
 */
export async function startIdleClosingBackend(idleMs: number, busyMs = 0): Promise<IdleClosingBackend> {
  const seen = new Map<string, number>()
  const sockets = new Set<Socket>()
  let closes = 0
  // keepAliveTimeout 0: Node's own idle timer and its `Keep-Alive: timeout=` header are off.
  const server = createServer({ keepAliveTimeout: 0 }, (req, res) => {
    const socket = req.socket as Socket & { idleTimer?: NodeJS.Timeout }
    clearTimeout(socket.idleTimer)
    // A busy application: while its event loop works, idle timers come due and requests queue unread.
    const until = performance.now() + busyMs
    while (performance.now() < until) {}
    const id = req.headers['x-test-id']
    if (typeof id === 'string') seen.set(id, (seen.get(id) ?? 0) + 1)
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      res.setHeader('content-type', 'text/plain')
      res.end(`${req.method} ${Buffer.concat(chunks).length}`)
    })
    res.on('finish', () => {
      clearTimeout(socket.idleTimer)
      socket.idleTimer = setTimeout(() => {
        closes++
        socket.destroy()
      }, idleMs)
    })
  })
  server.keepAliveTimeout = 0
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => {
      sockets.delete(s)
      clearTimeout((s as Socket & { idleTimer?: NodeJS.Timeout }).idleTimer)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    idleCloses: () => closes,
    close: () => closeServer(server, sockets),
  }
}

export interface LatencyLink {
  readonly port: number
  readonly url: string
  close(): Promise<void>
}

/**
 * A TCP relay to 127.0.0.1:`targetPort` that delays everything by `delayMs` each way: data, a close
 * (FIN) and a reset (RST) alike, in order. Loopback delivers a close in microseconds, so the race
 * window of a real network (a request written while the server's FIN is still on the wire) is
 * almost never hit on it; through this link it is `delayMs` wide, as on a real link with that latency.
 */
export async function startLatencyLink(targetPort: number, delayMs: number): Promise<LatencyLink> {
  const pairs = new Set<Socket>()
  const later = (fn: () => void) => setTimeout(fn, delayMs)
  const server = createTcpServer({ allowHalfOpen: true }, (client) => {
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1', allowHalfOpen: true })
    pairs.add(client)
    pairs.add(upstream)
    const relay = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => later(() => to.destroyed || to.write(chunk)))
      from.on('end', () => later(() => to.destroyed || to.end()))
      // A reset (or any error) on one side resets the other, after the delay.
      from.on('error', () => later(() => to.destroyed || to.resetAndDestroy()))
      from.on('close', () => {
        pairs.delete(from)
        later(() => to.destroyed || to.destroy())
      })
    }
    relay(client, upstream)
    relay(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => closeServer(server, pairs),
  }
}

export interface SporadicResult {
  readonly sent: number
  readonly ok: number
  /** Failures by kind: a status (`502`) or a client error code (`UND_ERR_SOCKET`). */
  readonly failures: Map<string, number>
}

/**
 * `sequences` clients in parallel, each sending `perSequence` requests one after another, with gaps
 * drawn uniformly from `gapMs`: so each upstream connection sits idle for about as long as the
 * backend's idle timeout before it is reused. Every other request is a POST with a small body. Each
 * request carries a unique `x-test-id`. Bounded: sequences × perSequence requests, each with a 10 s timeout.
 */
export async function sporadicTraffic(
  url: string,
  opts: { sequences: number; perSequence: number; gapMs: readonly [number, number]; seed?: number },
): Promise<SporadicResult> {
  // Fresh client connections for each sequence, kept alive between its requests.
  const agent = new Agent({ connections: opts.sequences, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 30_000 })
  let seed = opts.seed ?? 7
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const failures = new Map<string, number>()
  let ok = 0
  let sent = 0
  const fail = (kind: string) => failures.set(kind, (failures.get(kind) ?? 0) + 1)
  // One gap per round, shared by every sequence: traffic comes in bursts, each finding the upstream
  // connections the previous burst left idle.
  const [min, max] = opts.gapMs
  const gaps = Array.from({ length: opts.perSequence }, () => min + random() * (max - min))
  const sequence = async (s: number) => {
    for (let i = 0; i < opts.perSequence; i++) {
      // The gap is the traffic's shape (idle about as long as the backend's timeout), not a wait.
      await new Promise((r) => setTimeout(r, gaps[i]))
      const post = (s + i) % 2 === 0
      sent++
      try {
        const res = await request(url, {
          dispatcher: agent,
          method: post ? 'POST' : 'GET',
          headers: { 'x-test-id': `${s}-${i}`, ...(post ? { 'content-type': 'application/json' } : {}) },
          body: post ? JSON.stringify({ sequence: s, request: i, pad: 'x'.repeat(200) }) : null,
          headersTimeout: 10_000,
          bodyTimeout: 10_000,
        })
        await res.body.text()
        if (res.statusCode === 200) ok++
        else fail(String(res.statusCode))
      } catch (err) {
        fail((err as { code?: string }).code ?? 'error')
      }
    }
  }
  try {
    await Promise.all(Array.from({ length: opts.sequences }, (_, s) => sequence(s)))
  } finally {
    await agent.close()
  }
  return { sent, ok, failures }
}
