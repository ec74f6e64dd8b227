/**
 * Driving an upstream engine directly, without the exchange: a recording handler, a request with
 * defaults, and a raw TCP server that reads HTTP/1.1 requests and answers with exactly the bytes a test
 * gives it (to misbehave as servers do: leftover bytes, early answers, silent closes).
 */
import { createServer, type Server, type Socket } from 'node:net'
import type { ServerConnections, UpstreamHandler, UpstreamRequest, UpstreamTry } from '../../src/l7/upstream.js'
import { closeServer, listenLocal } from './backends.js'

export const GET: UpstreamRequest = {
  method: 'GET',
  path: '/',
  headers: [],
  body: null,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 10_000,
  closeAfter: false,
}

export interface RecorderOptions {
  /** The answer to the head (false pauses the body until `resume()`). */
  onHead?(status: number): boolean
  /** The answer to each chunk. */
  onData?(chunk: Buffer): boolean
  onSocket?(socket: Socket, uses: number): void
  /** Keep no body chunks (large bodies). */
  discard?: boolean
}

/** Records what an engine reports; `done` resolves at the end, rejects with the error. */
export class Recorder implements UpstreamHandler {
  status = 0
  statusText = ''
  heads = 0
  headers: readonly string[] = []
  readonly chunks: Buffer[] = []
  trailers: readonly string[] = []
  socket: Socket | undefined
  uses = -1
  /** performance.now() at each report. */
  socketAtMs = 0
  lastDataAtMs = 0
  errors = 0
  ends = 0
  readonly done: Promise<Recorder>
  #resolve!: (r: Recorder) => void
  #reject!: (e: Error) => void
  readonly #options: RecorderOptions

  constructor(options: RecorderOptions = {}) {
    this.#options = options
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve
      this.#reject = reject
    })
    this.done.catch(() => {})
  }

  get body(): string {
    return Buffer.concat(this.chunks).toString('latin1')
  }

  header(name: string): string | undefined {
    for (let i = 0; i < this.headers.length; i += 2)
      if (this.headers[i]!.toLowerCase() === name) return this.headers[i + 1]
    return undefined
  }

  onUpstreamHead(status: number, rawHeaders: readonly string[], statusText: string): boolean {
    this.heads++
    this.status = status
    this.statusText = statusText
    this.headers = rawHeaders
    return this.#options.onHead?.(status) ?? true
  }

  onUpstreamData(chunk: Buffer): boolean {
    this.lastDataAtMs = performance.now()
    if (this.#options.discard !== true) this.chunks.push(chunk)
    return this.#options.onData?.(chunk) ?? true
  }

  onUpstreamEnd(trailers: readonly string[]): void {
    this.ends++
    this.trailers = trailers
    this.#resolve(this)
  }

  onUpstreamError(err: Error): void {
    this.errors++
    this.#reject(err)
  }

  onUpstreamSocket(socket: Socket, uses: number): void {
    this.socketAtMs = performance.now()
    this.socket = socket
    this.uses = uses
    this.#options.onSocket?.(socket, uses)
  }
}

/** Sends `request` (GET / by default) through `conns`. */
export function send(
  conns: ServerConnections,
  request: Partial<UpstreamRequest> = {},
  options: RecorderOptions = {},
): { call: UpstreamTry; rec: Recorder } {
  const rec = new Recorder(options)
  const call = conns.call(rec)
  call.send({ ...GET, ...request })
  return { call, rec }
}

/** The error a promise rejects with. */
export async function failure(p: Promise<unknown>): Promise<Error & { code?: string }> {
  try {
    await p
  } catch (err) {
    return err as Error & { code?: string }
  }
  throw new Error('expected a failure, the call succeeded')
}

/** One request as a raw server read it. */
export interface RawRequest {
  readonly method: string
  readonly path: string
  /** Lower-case names. */
  readonly headers: ReadonlyMap<string, string>
  /** The head as received, blank line included. */
  readonly head: string
  /** The body bytes as received (chunked framing included). */
  readonly rawBody: Buffer
  readonly conn: RawConnection
}

export interface RawConnection {
  readonly id: number
  readonly socket: Socket
  readonly requests: RawRequest[]
  /** The client ended its side (FIN) before the connection closed. */
  clientEnded: boolean
  closed: boolean
  write(text: string | Buffer): void
}

export interface RawServer {
  readonly port: number
  readonly connections: RawConnection[]
  /** Every request, in arrival order. */
  readonly requests: RawRequest[]
  close(): Promise<void>
}

/** What a raw server does as requests arrive; it answers nothing unless these write. */
export interface RawHandlers {
  /** A whole request arrived, body included. */
  onRequest?(req: RawRequest): void
  /** A request head is complete, before its body has arrived (for early answers). */
  onHead?(req: Omit<RawRequest, 'rawBody'>): void
}

/**
 * A TCP server that parses HTTP/1.1 requests (Content-Length and chunked bodies) and calls `onRequest`
 * with each; it answers nothing itself. `onHead` is called as soon as a head is complete, before its
 * body has arrived (for early answers).
 */
export async function rawServer(handlers: RawHandlers): Promise<RawServer> {
  const connections: RawConnection[] = []
  const requests: RawRequest[] = []
  const sockets = new Set<Socket>()
  const server: Server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    const conn: RawConnection = {
      id: connections.length,
      socket,
      requests: [],
      clientEnded: false,
      closed: false,
      write: (t) => {
        if (!socket.destroyed) socket.write(t)
      },
    }
    connections.push(conn)
    let buf = Buffer.alloc(0)
    /** Chunks not yet joined into `buf` (a long Content-Length body is joined once, when complete). */
    let pending: Buffer[] = []
    let pendingBytes = 0
    let head: Omit<RawRequest, 'rawBody'> | undefined
    const join = (): void => {
      if (pending.length === 0) return
      buf = Buffer.concat([buf, ...pending])
      pending = []
      pendingBytes = 0
    }
    const parse = (): void => {
      for (;;) {
        if (head === undefined) {
          join()
          const end = buf.indexOf('\r\n\r\n')
          if (end < 0) return
          const text = buf.subarray(0, end + 4).toString('latin1')
          buf = buf.subarray(end + 4)
          const [line = '', ...lines] = text.slice(0, -4).split('\r\n')
          const [method = '', path = ''] = line.split(' ')
          const headers = new Map<string, string>()
          for (const l of lines) {
            const at = l.indexOf(':')
            headers.set(l.slice(0, at).toLowerCase(), l.slice(at + 1).trim())
          }
          head = { method, path, headers, head: text, conn }
          handlers.onHead?.(head)
        }
        const h = head
        let bodyLength: number
        if (h.headers.get('transfer-encoding') === 'chunked') {
          join()
          const end = buf.indexOf('0\r\n\r\n')
          if (end < 0 || (end > 0 && buf.subarray(end - 2, end).toString() !== '\r\n')) return
          bodyLength = end + 5
        } else bodyLength = Number(h.headers.get('content-length') ?? 0)
        if (buf.length + pendingBytes < bodyLength) return
        join()
        const req: RawRequest = { ...h, rawBody: buf.subarray(0, bodyLength) }
        buf = buf.subarray(bodyLength)
        head = undefined
        conn.requests.push(req)
        requests.push(req)
        handlers.onRequest?.(req)
      }
    }
    socket.on('data', (chunk: Buffer) => {
      pending.push(chunk)
      pendingBytes += chunk.length
      parse()
    })
    socket.on('end', () => {
      conn.clientEnded = true
      socket.end()
    })
    socket.on('close', () => {
      conn.closed = true
      sockets.delete(socket)
    })
  })
  const port = await listenLocal(server)
  return {
    port,
    connections,
    requests,
    close: () => closeServer(server, sockets),
  }
}

/** Runs `run` with a raw server (see `rawServer`), and closes the server after it, pass or fail. */
export async function withRawServer(handlers: RawHandlers, run: (server: RawServer) => Promise<void>): Promise<void> {
  const server = await rawServer(handlers)
  try {
    await run(server)
  } finally {
    await server.close()
  }
}

/** A complete response with a Content-Length body. */
export function ok(body = 'ok', extra = ''): string {
  return `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`
}
