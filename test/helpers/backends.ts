/** Real upstream servers for tests, on 127.0.0.1 with OS-assigned ports. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

export interface TestBackend {
  readonly name: string
  readonly port: number
  readonly url: string
  /** Requests seen, in order. */
  readonly requests: IncomingMessage[]
  readonly server: Server
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage, res: ServerResponse, backend: TestBackend) => void

/** Default handler: answers 200 with the backend's name. */
export const nameHandler: Handler = (req, res, b) => {
  req.resume()
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': b.name })
    res.end(b.name)
  })
}

export async function startBackend(name: string, handler: Handler = nameHandler): Promise<TestBackend> {
  const requests: IncomingMessage[] = []
  const sockets = new Set<Socket>()
  let self: TestBackend | undefined
  const server = createServer((req, res) => {
    requests.push(req)
    handler(req, res, self!)
  })
  server.on('connection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })
  const port = await listenLocal(server)
  self = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    requests,
    server,
    close: () => closeServer(server, sockets),
  }
  return self
}

/** Listens on a port of 127.0.0.1 that the OS hands out, and returns it. */
export async function listenLocal(server: {
  listen(port: number, host: string, cb: () => void): unknown
  address(): AddressInfo | string | null
}): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('listenLocal: no TCP address')
  return address.port
}

/** Stops `server` from accepting, destroys its open `sockets`, and resolves once it has closed. */
export function closeServer(server: { close(cb: () => void): unknown }, sockets: Iterable<Socket>): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve())
    for (const s of sockets) s.destroy()
  })
}

export async function startBackends(count: number, handler?: Handler): Promise<TestBackend[]> {
  return Promise.all(Array.from({ length: count }, (_, i) => startBackend(`b${i + 1}`, handler)))
}

/**
 * A port that nothing listens on: one below the kernel's ephemeral range (Linux: 32768 and up), found
 * free by binding it. Ports that `listen(0)` hands out come from that range, so no later listener of
 * the tests (or of Switchyard) can take this one, as could happen with a port released by `listen(0)`.
 */
export async function deadPort(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000)
    const s = createServer()
    const bound = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (!bound) continue
    await new Promise<void>((resolve) => s.close(() => resolve()))
    return port
  }
  throw new Error('no free port below the ephemeral range')
}
