/**
 * The differential harness for HTTP/1.1 framing: the same bytes, sent on a fresh connection to a
 * Switchyard listener of each engine, must be refused by both or reach the backend the same way.
 *
 * Each engine has `lanes` listeners (every other one with `http2: true`, its HTTP/1.1 connections
 * then going through the preface sniffer first), each with its own pool and its own raw-socket backend
 * (`RecordingBackend`), so that inputs run `lanes` at a time per engine and what a backend receives
 * belongs to the one input its lane is running. A lane runs one input at a time: it connects, writes the
 * input, reads until the listener closes, has answered every request the input holds, or falls
 * silent (see `clientExchange`), then waits until the listener has no request in flight and its
 * backend holds no message cut short.
 *
 * The backend parses what arrives with the strict reader of framing.ts, answers every whole request
 * with an empty 200, and records every request, every message cut short by a close, and every byte
 * it cannot frame. Pools have no retries, so a request reaches it at most once per client request.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { setImmediate as turn } from 'node:timers/promises'
import { pino } from 'pino'
import type { ConfigInput, LoadBalancer } from '../../src/index.js'
import { createLoadBalancer } from '../../src/index.js'
import { closeServer, listenLocal } from './backends.js'
import { type Cut, type Message, originForm, type Requests, readMessage, readRequests } from './framing.js'

export type EngineName = 'native' | 'node'
export const ENGINES: readonly EngineName[] = ['native', 'node']

/** What a backend received while one input ran. */
export interface Received {
  /** Whole requests, in arrival order (over all its connections). */
  readonly messages: Message[]
  /** Messages whose connection closed before they were whole. */
  readonly partials: Cut[]
  /** Bytes that could not be framed, with why (the backend closed the connection on them). */
  readonly garbage: { readonly reason: string; readonly bytes: string }[]
}

function emptyReceived(): Received {
  return { messages: [], partials: [], garbage: [] }
}

/** An HTTP/1.1 server on a raw socket that records exactly what arrives. */
export class RecordingBackend {
  readonly #server: Server
  readonly #sockets = new Map<Socket, Buffer>()
  #current: Received = emptyReceived()
  #seq = 0
  port = 0

  constructor() {
    this.#server = createServer((socket) => this.#accept(socket))
  }

  async listen(): Promise<void> {
    this.port = await listenLocal(this.#server)
  }

  /** Starts a new record; what arrives from now on goes into it. */
  begin(): Received {
    this.#current = emptyReceived()
    return this.#current
  }

  /** Connections holding bytes of a message not yet whole. */
  busy(): number {
    let n = 0
    for (const pending of this.#sockets.values()) if (pending.length > 0) n++
    return n
  }

  /** Connections open. */
  open(): number {
    return this.#sockets.size
  }

  close(): Promise<void> {
    return closeServer(this.#server, [...this.#sockets.keys()])
  }

  #accept(socket: Socket): void {
    this.#sockets.set(socket, Buffer.alloc(0))
    socket.setNoDelay(true)
    socket.on('error', () => {})
    socket.on('data', (chunk: Buffer) => {
      let pending = Buffer.concat([this.#sockets.get(socket) ?? Buffer.alloc(0), chunk])
      for (;;) {
        const r = readMessage(pending)
        if (r.kind === 'incomplete') break
        if (r.kind === 'error') {
          this.#current.garbage.push({ reason: r.reason, bytes: JSON.stringify(pending.toString('latin1')) })
          this.#sockets.set(socket, Buffer.alloc(0))
          socket.destroy()
          return
        }
        this.#current.messages.push(r.message)
        pending = pending.subarray(r.message.length)
        const seq = ++this.#seq
        const close = r.message.keepAlive ? '' : 'Connection: close\r\n'
        socket.write(`HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Seq: ${seq}\r\n${close}\r\n`)
        if (!r.message.keepAlive) {
          socket.end()
          break
        }
      }
      this.#sockets.set(socket, pending)
    })
    socket.on('close', () => {
      const pending = this.#sockets.get(socket)
      this.#sockets.delete(socket)
      if (pending === undefined || pending.length === 0) return
      const r = readMessage(pending)
      if (r.kind === 'message') return
      this.#current.partials.push({ head: r.head, bodySoFar: r.bodySoFar })
    })
  }
}

/** What one engine did with one input. */
export interface Observation {
  readonly engine: EngineName
  /** Statuses of the responses the client read, in order. */
  readonly statuses: number[]
  /** The listener closed the connection before the deadline. */
  readonly closed: boolean
  readonly received: Received
  /** The listener had no request in flight and the backend no message cut short, within the deadline. */
  readonly settled: boolean
}

/** Response status lines in what a client read (the backend's responses are empty, the listener's JSON). */
export function statusesOf(text: string): number[] {
  return [...text.matchAll(/(?:^|\n)HTTP\/1\.[01] ([0-9]{3})[ \r]/g)].map((m) => Number(m[1]))
}

/** Final (non-1xx) responses among `statuses`. */
function finals(statuses: readonly number[]): number {
  return statuses.filter((s) => s >= 200).length
}

/**
 * Connects, writes `bytes` and reads until the server closes, or until `expected` final responses
 * have come (when given), or until the server has been silent for `quietMs` (four times that while
 * responses are still owed); at most `deadlineMs`.
 * It never half-closes: node:http takes a client's FIN as the end of its requests, which would make
 * whether a request goes upstream a race.
 */
export function clientExchange(
  port: number,
  bytes: Buffer,
  {
    expected,
    quietMs,
    deadlineMs,
    onConnect,
  }: {
    expected: number | undefined
    quietMs: number
    deadlineMs: number
    /** Told the client's own port once connected, before anything is written. */
    onConnect?: (localPort: number) => void
  },
): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let data = ''
    let settled = false
    let quiet: NodeJS.Timeout | undefined
    const done = (closed: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      clearTimeout(quiet)
      socket.destroy()
      resolve({ data, closed })
    }
    const timer = setTimeout(() => done(false), deadlineMs)
    // A client still owed responses waits longer for them than one that only listens for an answer.
    const silenceMs = expected === undefined ? quietMs : quietMs * 4
    const wait = () => {
      clearTimeout(quiet)
      quiet = setTimeout(() => done(false), silenceMs)
    }
    socket.setEncoding('latin1')
    socket.on('data', (c: string) => {
      data += c
      if (expected !== undefined && finals(statusesOf(data)) >= expected) done(false)
      else wait()
    })
    socket.on('close', () => done(true))
    socket.on('error', () => done(true))
    socket.once('connect', () => {
      onConnect?.(socket.localPort ?? 0)
      socket.write(bytes, () => wait())
    })
  })
}

/** The number of whole requests a client that sent `bytes` waits for (see `clientExchange`). */
export function expectedResponses(bytes: Buffer): number | undefined {
  const ref = readRequests(bytes)
  // A client that framed n whole requests and nothing after them is done after n responses.
  const whole = ref.tail.kind === 'clean' || ref.tail.kind === 'closed'
  return whole && ref.messages.length > 0 ? ref.messages.length : undefined
}

/** A request as a bare node:http server's handler saw it, body read to its end. */
export interface Seen {
  readonly method: string
  readonly url: string
  readonly body: Buffer
}

/**
 * A bare node:http server with its defaults (the strict parser, Host required): what node:http itself
 * accepts, the anchor the listeners are held against. It answers every request with an empty 200.
 */
export class NodeHttpAnchor {
  readonly #server: HttpServer
  readonly #seen = new Map<number, Seen[]>()
  readonly #sockets = new Set<Socket>()
  port = 0

  constructor() {
    this.#server = createHttpServer((req, res) => {
      const chunks: Buffer[] = []
      const mine = this.#seen.get(req.socket.remotePort ?? 0)
      req.on('data', (c: Buffer) => chunks.push(c))
      req.on('end', () => {
        mine?.push({ method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks) })
        res.writeHead(200, { 'content-length': 0 }).end()
      })
    })
    this.#server.on('connection', (s: Socket) => {
      this.#sockets.add(s)
      s.once('close', () => this.#sockets.delete(s))
    })
  }

  async listen(): Promise<void> {
    this.port = await listenLocal(this.#server)
  }

  /** Sends `bytes` on a fresh connection: the requests the handler saw whole. */
  async run(bytes: Buffer, quietMs = 250): Promise<Seen[]> {
    let localPort = 0
    const seen: Seen[] = []
    await clientExchange(this.port, bytes, {
      expected: expectedResponses(bytes),
      quietMs,
      deadlineMs: 3000,
      onConnect: (p) => {
        localPort = p
        this.#seen.set(p, seen)
      },
    })
    for (let i = 0; i < 3; i++) await turn()
    this.#seen.delete(localPort)
    return seen
  }

  close(): Promise<void> {
    return closeServer(this.#server, this.#sockets)
  }
}

export interface LanesOptions {
  /** Listeners (each with its own backend) per engine; inputs run this many at a time per engine. */
  readonly lanes: number
  /** Per input: the client's read, then again the wait for the listener and backend to settle. */
  readonly deadlineMs?: number
  /**
   * How long a client whose bytes hold no whole request (or a cut-short one after them) waits for
   * more from the listener before it leaves (four times that while responses are still owed).
   * Default 250.
   */
  readonly quietMs?: number
  /**
   * Every other lane (the same ones for both engines) has `http2: true`, so that HTTP/1.1 requests
   * also take the way through the HTTP/2 preface sniffer, which reads a connection's first bytes
   * and hands them back. Default true.
   */
  readonly http2Lanes?: boolean
}

interface Lane {
  readonly engine: EngineName
  readonly listener: string
  readonly backend: RecordingBackend
  readonly http2: boolean
  port: number
}

/** Listeners of both engines, each in front of its own recording backend. */
export class Lanes {
  readonly lb: LoadBalancer
  readonly #lanes: Lane[]
  readonly #deadlineMs: number
  readonly #quietMs: number

  private constructor(lb: LoadBalancer, lanes: Lane[], options: LanesOptions) {
    this.lb = lb
    this.#lanes = lanes
    this.#deadlineMs = options.deadlineMs ?? 3000
    this.#quietMs = options.quietMs ?? 250
  }

  static async start(options: LanesOptions): Promise<Lanes> {
    const lanes: Lane[] = []
    for (const engine of ENGINES)
      for (let i = 0; i < options.lanes; i++) {
        const backend = new RecordingBackend()
        await backend.listen()
        const http2 = (options.http2Lanes ?? true) && i % 2 === 1
        lanes.push({ engine, listener: `${engine}${i}`, backend, http2, port: 0 })
      }
    const config: ConfigInput = {
      listeners: lanes.map((l) => ({
        name: l.listener,
        listen: '127.0.0.1:0',
        engine: l.engine,
        http2: l.http2,
        routes: [{ pool: l.listener }],
        // The framing is what is compared: paths go upstream as sent (their normalization has its own
        // table, in test/security.test.ts), so that the backend's request is byte for byte the client's.
        paths: { normalize: false },
      })),
      pools: lanes.map((l) => ({
        name: l.listener,
        engine: l.engine,
        servers: [`http://127.0.0.1:${l.backend.port}`],
        // Exactly one try per request: a retry would send it twice.
        retries: { attempts: 0, keepAliveRace: false },
        ejectOnConnectFailure: false,
      })),
    }
    const lb = createLoadBalancer(config, { logger: silentLogger })
    await lb.start()
    const addresses = lb.addresses()
    for (const l of lanes) l.port = addresses[l.listener]?.port ?? 0
    const ready = new Lanes(lb, lanes, options)
    // One request per lane first, so that every input finds a pooled upstream connection: whether a
    // request goes upstream before its client's connection fails must not hang on a connect.
    const warm = Buffer.from('GET /warm HTTP/1.1\r\nHost: a.test\r\n\r\n', 'latin1')
    await Promise.all(lanes.map((l, i) => ready.run(l.engine, i % ready.perEngine, warm)))
    return ready
  }

  /** The lanes of each engine. */
  get perEngine(): number {
    return this.#lanes.length / ENGINES.length
  }

  /**
   * The lanes (indices per engine) input `index` may run on: with http2 lanes, the plain ones for an
   * even index and the http2 ones for an odd one, so that which way an input takes is fixed by its
   * place in the list; else all.
   */
  lanesFor(index: number): number[] {
    const all = Array.from({ length: this.perEngine }, (_, i) => i)
    if (!this.#lanes.some((l) => l.http2)) return all
    return all.filter((i) => this.#lanes[i]?.http2 === (index % 2 === 1))
  }

  /** Whether input `index` runs on a listener with `http2: true`. */
  http2For(index: number): boolean {
    return this.#lanes[this.lanesFor(index)[0] ?? 0]?.http2 ?? false
  }

  /** Runs `bytes` on lane `index` of `engine`. The lane must be idle. */
  async run(engine: EngineName, index: number, bytes: Buffer): Promise<Observation> {
    const lane = this.#lanes[ENGINES.indexOf(engine) * this.perEngine + index]
    if (lane === undefined) throw new Error(`no lane ${engine}${index}`)
    const received = lane.backend.begin()
    const { data, closed } = await clientExchange(lane.port, bytes, {
      expected: expectedResponses(bytes),
      quietMs: this.#quietMs,
      deadlineMs: this.#deadlineMs,
    })
    const settled = await this.#settle(lane)
    return { engine, statuses: statusesOf(data), closed, received, settled }
  }

  /**
   * Waits until the lane's listener has no request in flight and its backend no message cut short.
   * Bytes written to a loopback socket are delivered by the time the write returns, so a few turns
   * of the event loop after that let the backend read whatever the listener sent before it finished.
   */
  async #settle(lane: Lane): Promise<boolean> {
    const deadline = performance.now() + this.#deadlineMs
    const inFlight = () => this.lb.status().listeners.find((l) => l.name === lane.listener)?.inFlight ?? 0
    for (;;) {
      if (inFlight() === 0) {
        for (let i = 0; i < 3; i++) await turn()
        if (inFlight() === 0 && lane.backend.busy() === 0) return true
      }
      if (performance.now() >= deadline) return false
      await new Promise((r) => setTimeout(r, 2))
    }
  }

  /** Upstream connections open to every backend (the pools keep idle ones). */
  backendConnections(): number {
    return this.#lanes.reduce((n, l) => n + l.backend.open(), 0)
  }

  async close(): Promise<void> {
    await this.lb.close({ gracePeriodMs: 1000 })
    await Promise.all(this.#lanes.map((l) => l.backend.close()))
  }
}

/** Malformed requests are the point here: their log lines are not. */
const silentLogger = pino({ level: 'silent' })

// --- decisions -------------------------------------------------------------------------------------

/** Headers Switchyard adds or frames itself on the upstream side: not part of what the client sent. */
const PROXY_HEADERS = new Set([
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-forwarded-port',
  'forwarded',
  'via',
  'content-length',
  'connection',
  'keep-alive',
])

/**
 * One forwarded request as compared: method, target, the client's headers (by name, the Host that
 * names a backend's own address with its port left out, since each lane has its own), body, trailers.
 */
export function forwardedText(m: Message): string {
  const headers = m.headers
    .filter(
      ([n, v]) => !PROXY_HEADERS.has(n.toLowerCase()) && !(n.toLowerCase() === 'transfer-encoding' && v === 'chunked'),
    )
    .map(([n, v]) => {
      const name = n.toLowerCase()
      return [name, name === 'host' ? v.replace(/^127\.0\.0\.1:[0-9]+$/, '127.0.0.1:PORT') : v] as const
    })
    // By name, keeping the order of repeated names: field order across names carries no meaning.
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
  return JSON.stringify([m.method, m.target, headers, m.body.toString('latin1'), m.trailers])
}

/**
 * The decision an engine made for one input: `rejected` when no whole request reached the backend,
 * else the requests it forwarded, sorted (pipelined requests may go upstream at once, on several
 * connections, so their arrival order is a race). Messages cut short are left out (whether a head went
 * upstream before the client left is a race too); the backend assertions check them instead.
 */
export function decisionOf(o: Observation): string {
  const r = o.received
  const extra = [...(r.garbage.length > 0 ? [`garbage ${r.garbage.length}`] : []), ...(o.settled ? [] : ['unsettled'])]
  if (r.messages.length === 0) return ['rejected', ...extra].join(' ')
  return [`forwarded ${r.messages.length}`, ...r.messages.map(forwardedText).sort(), ...extra].join('\n  ')
}

/** A request as the backend should see it: method, origin-form target, body. */
function sentKey(m: Message): string {
  return JSON.stringify([m.method, originForm(m.target), m.body.toString('latin1')])
}

function receivedKey(m: Message): string {
  return JSON.stringify([m.method, m.target, m.body.toString('latin1')])
}

/**
 * What must hold whatever the engine, measured against the strict reading of the client's bytes
 * (framing.ts): no request reaches the backend as two, none with a body other than the one the client
 * framed, none the strict reader would not find in them, nothing the backend cannot frame, and every
 * exchange ends. Requests are matched without regard to order (see `decisionOf`).
 */
export function violationsOf(input: Buffer, o: Observation): string[] {
  const out: string[] = []
  const ref = readRequests(input)
  const r = o.received
  if (!o.settled) out.push('did not settle: a request still in flight or a message cut short held open')
  for (const g of r.garbage) out.push(`the backend could not frame what it received (${g.reason}): ${g.bytes}`)
  if (r.messages.length > ref.messages.length)
    out.push(
      `${r.messages.length} requests reached the backend; the client's bytes hold ${ref.messages.length} (${ref.tail.kind}${'reason' in ref.tail ? `: ${ref.tail.reason}` : ''})`,
    )
  const sent = ref.messages.map(sentKey)
  /** Which of the client's requests the backend served. */
  const served = sent.map(() => false)
  for (const m of r.messages) {
    const key = receivedKey(m)
    const i = sent.findIndex((k, j) => !served[j] && k === key)
    if (i >= 0) served[i] = true
    else out.push(`the backend received ${key}, which is none of the client's requests: ${JSON.stringify(sent)}`)
  }
  // Each request the backend served was answered 200, and responses come in request order: the client
  // must read that 200 in the request's place. An answer of the listener's own (a 417) may come
  // before it; none may take its place.
  const finals = o.statuses.filter((s) => s >= 200)
  if (served.some((yes, i) => yes && finals[i] !== 200))
    out.push(
      `the backend served ${r.messages.length} requests, but the client read ${JSON.stringify(o.statuses)}: a response was lost or another took its place`,
    )
  // A message cut short must be the start of one the client sent: a whole one (its exchange ended
  // early) or the one the client's bytes break off in.
  const starts: { method: string; target: string; body: Buffer }[] = ref.messages.map((m) => ({
    method: m.method,
    target: originForm(m.target),
    body: m.body,
  }))
  const tail = ref.tail
  if ((tail.kind === 'incomplete' || tail.kind === 'error') && tail.head !== undefined)
    starts.push({ method: tail.head.method, target: originForm(tail.head.target), body: tail.bodySoFar })
  for (const p of r.partials) {
    const fits = starts.some(
      (s) =>
        (p.head === undefined || (p.head.method === s.method && p.head.target === s.target)) &&
        p.bodySoFar.length <= s.body.length &&
        s.body.subarray(0, p.bodySoFar.length).equals(p.bodySoFar),
    )
    if (!fits)
      out.push(
        `a message cut short at the backend (${p.head?.method} ${p.head?.target}, body ${JSON.stringify(p.bodySoFar.toString('latin1'))}) is the start of none the client sent`,
      )
  }
  return out
}

// --- running many --------------------------------------------------------------------------------

/** Runs `task(0..count-1)` with at most `limit` running at once; `task` gets a worker number. */
export async function bounded(
  count: number,
  limit: number,
  task: (i: number, worker: number) => Promise<void>,
): Promise<void> {
  let next = 0
  const worker = async (w: number): Promise<void> => {
    while (next < count) await task(next++, w)
  }
  await Promise.all(Array.from({ length: Math.min(limit, count) }, (_, w) => worker(w)))
}

export interface Compared {
  readonly index: number
  readonly bytes: Buffer
  readonly observations: Record<EngineName, Observation>
}

/**
 * Runs every input on both engines, `lanes.perEngine` at a time each (each input on the lanes
 * `lanes.lanesFor` gives it); `onResult` sees each as it ends.
 */
export async function compareEngines(
  lanes: Lanes,
  inputs: readonly Buffer[],
  onResult: (c: Compared) => void,
): Promise<void> {
  const groups = new Map<string, { lanes: number[]; inputs: number[] }>()
  for (let i = 0; i < inputs.length; i++) {
    const mine = lanes.lanesFor(i)
    const key = mine.join()
    const g = groups.get(key) ?? { lanes: mine, inputs: [] }
    g.inputs.push(i)
    groups.set(key, g)
  }
  await Promise.all(
    [...groups.values()].map((g) =>
      bounded(g.inputs.length, g.lanes.length, async (j, worker) => {
        const index = g.inputs[j] as number
        const lane = g.lanes[worker] as number
        const bytes = inputs[index] as Buffer
        const [native, node] = await Promise.all(ENGINES.map((e) => lanes.run(e, lane, bytes)))
        onResult({ index, bytes, observations: { native: native as Observation, node: node as Observation } })
      }),
    ),
  )
}

// --- the whole run -------------------------------------------------------------------------------

/**
 * A bug both engines have today, recognised from the strict reading of the input and the violation
 * it causes: the violations it explains are tallied under it (and reported by a TODO test) rather than
 * failing the run.
 */
export interface KnownBug {
  readonly id: string
  readonly what: string
  /** The input shows what sets this bug off; `ref` is its strict reading. */
  matches(ref: Requests, input: Buffer): boolean
  /** The violation (as `violationsOf` words it) is this bug's doing. Default: any. */
  explains?(violation: string): boolean
}

/**
 * None today. The framing bugs this harness found (a response lost behind a pipelined error, a
 * request line without a version read as HTTP/0.9, an empty Transfer-Encoding beside a
 * Content-Length, codings before chunked, HTTP/1.0 with both keep-alive and close, HTTP/2.0 on an
 * HTTP/1 connection) are fixed on both engines; a new one goes here, with a TODO test, until it is.
 */
export const KNOWN_BUGS: readonly KnownBug[] = []

/** The known bug that explains `violation` for `input`, if one does. */
export function knownBugOf(input: Buffer, violation: string): KnownBug | undefined {
  const ref = readRequests(input)
  // "engine: violation" as runDifferential words it, or the bare violation.
  const bare = violation.replace(/^(native|node): /, '')
  return KNOWN_BUGS.find((b) => b.matches(ref, input) && (b.explains?.(bare) ?? true))
}

export interface Labelled {
  /** How a failure names the input: a corpus probe, or a mutant's seed, index and edits. */
  readonly label: string
  readonly bytes: Buffer
}

/** What the run found for one input. */
export interface InputResult {
  readonly input: Labelled
  /** It ran on listeners with `http2: true` (through the preface sniffer). */
  readonly http2: boolean
  /** The first run's observations. */
  readonly observations: Record<EngineName, Observation>
  /** The engines decided differently, every time the input ran: both decisions. */
  readonly disagreement: string | undefined
  /** Backend assertions broken every time the input ran, that no known bug explains. */
  readonly violations: readonly string[]
  /** The same, that a known bug explains: by bug id. */
  readonly explained: ReadonlyMap<string, readonly string[]>
  /** A problem of the first run that did not come back when the input ran again alone. */
  readonly unstable: string | undefined
}

export interface DifferentialReport {
  readonly results: readonly InputResult[]
  readonly ms: number
}

/** The problems one run of an input shows: a disagreement between the engines, and each one's violations. */
function problemsOf(c: Compared): { disagreement: string | undefined; violations: string[] } {
  const native = decisionOf(c.observations.native)
  const node = decisionOf(c.observations.node)
  const disagreement = native === node ? undefined : `native: ${native}\n  node: ${node}`
  const violations = ENGINES.flatMap((e) => violationsOf(c.bytes, c.observations[e]).map((v) => `${e}: ${v}`))
  return { disagreement, violations }
}

/**
 * Runs every input on both engines and checks each: the engines decide alike, and each passes the
 * backend assertions. An input that shows a problem no known bug explains runs again twice, alone:
 * the problem counts when it comes back every time, and is reported as unstable otherwise.
 */
export async function runDifferential(lanes: Lanes, inputs: readonly Labelled[]): Promise<DifferentialReport> {
  const start = performance.now()
  const firsts: Compared[] = []
  await compareEngines(
    lanes,
    inputs.map((i) => i.bytes),
    (c) => {
      firsts[c.index] = c
    },
  )
  const results: InputResult[] = []
  for (const [index, input] of inputs.entries()) {
    const first = firsts[index] as Compared
    const runs = [first]
    const problems = [problemsOf(first)]
    // Only what would fail the run is run again: not what a known bug explains.
    const failing = (p: (typeof problems)[number]) =>
      p.disagreement !== undefined || p.violations.some((v) => knownBugOf(input.bytes, v) === undefined)
    if (failing(problems[0]!))
      for (let i = 0; i < 2; i++) {
        const lane = lanes.lanesFor(index)[0] ?? 0
        const [native, node] = await Promise.all(ENGINES.map((e) => lanes.run(e, lane, input.bytes)))
        const again: Compared = { index, bytes: input.bytes, observations: { native: native!, node: node! } }
        runs.push(again)
        problems.push(problemsOf(again))
      }
    const p0 = problems[0]!
    const disagreement = problems.every((p) => p.disagreement !== undefined) ? p0.disagreement : undefined
    // A violation counts when every run shows it.
    const lasting = p0.violations.filter((v) => problems.every((p) => p.violations.includes(v)))
    const violations: string[] = []
    const explained = new Map<string, string[]>()
    for (const v of lasting) {
      const bug = knownBugOf(input.bytes, v)
      if (bug === undefined) violations.push(v)
      else explained.set(bug.id, [...(explained.get(bug.id) ?? []), v])
    }
    const flickered =
      (p0.disagreement !== undefined && disagreement === undefined) || lasting.length < p0.violations.length
    const unstable = flickered ? (p0.disagreement ?? p0.violations.join('; ')) : undefined
    const http2 = lanes.http2For(index)
    results.push({ input, http2, observations: first.observations, disagreement, violations, explained, unstable })
  }
  return { results, ms: Math.round(performance.now() - start) }
}

/** An input and what is wrong with it, for a failure message. */
export function describeProblem(r: InputResult, problem: string): string {
  const lane = r.http2 ? ' (on a listener with http2: true)' : ''
  return `${r.input.label}${lane}\n  bytes ${JSON.stringify(r.input.bytes.toString('latin1'))}\n  ${problem.replaceAll('\n', '\n  ')}`
}

/** The first `n` of `items` for a failure message, and how many more there are. */
export function firstOf(items: readonly string[], n = 10): string {
  const more = items.length > n ? `\n... and ${items.length - n} more` : ''
  return items.slice(0, n).join('\n') + more
}

/** A report as lists of failure texts. */
export interface Summary {
  readonly disagreements: string[]
  readonly violations: string[]
  readonly unstable: string[]
  /** By known bug id. */
  readonly known: Map<string, string[]>
  /** Inputs the node engine refused: no request reached the backend. */
  readonly rejected: number
}

export function summarize(results: readonly InputResult[]): Summary {
  const s = {
    disagreements: [] as string[],
    violations: [] as string[],
    unstable: [] as string[],
    known: new Map<string, string[]>(),
    rejected: 0,
  }
  for (const r of results) {
    if (r.observations.node.received.messages.length === 0) s.rejected++
    if (r.disagreement !== undefined) s.disagreements.push(describeProblem(r, r.disagreement))
    if (r.violations.length > 0) s.violations.push(describeProblem(r, r.violations.join('\n')))
    if (r.unstable !== undefined) s.unstable.push(describeProblem(r, r.unstable))
    for (const [id, vs] of r.explained) s.known.set(id, [...(s.known.get(id) ?? []), describeProblem(r, vs.join('\n'))])
  }
  return s
}
