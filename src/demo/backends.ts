/**
 * Sample backends for `switchyard demo`: small HTTP servers that say who answered, so a user can watch
 * traffic spread. Each one serves:
 *
 *   GET /                 JSON: server name, method, path, request id, X-Forwarded-For
 *   GET /slow?ms=N        the same, after N milliseconds (try it against the timeouts)
 *   GET /bytes?n=N        N bytes of body, streamed
 *   GET /status/N         an empty response with status N
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface SampleBackend {
  readonly name: string
  readonly url: string
  close(): Promise<void>
}

export async function startSampleBackends(count: number, host = '127.0.0.1'): Promise<SampleBackend[]> {
  const out: SampleBackend[] = []
  for (let i = 1; i <= count; i++) out.push(await startOne(`sample-${i}`, host))
  return out
}

function startOne(name: string, host: string): Promise<SampleBackend> {
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    const status = /^\/status\/(\d{3})$/.exec(url.pathname)
    if (status) {
      res.writeHead(Number(status[1]), { 'x-served-by': name })
      return res.end()
    }
    if (url.pathname === '/bytes') {
      let left = Math.min(Number(url.searchParams.get('n') ?? 1024) || 0, 1 << 30)
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': left, 'x-served-by': name })
      const chunk = Buffer.alloc(64 * 1024, 120)
      const pump = () => {
        while (left > 0) {
          const n = Math.min(left, chunk.length)
          left -= n
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump)
        }
        res.end()
      }
      return pump()
    }
    const delayMs = url.pathname === '/slow' ? Math.min(Number(url.searchParams.get('ms') ?? 1000) || 0, 120_000) : 0
    const answer = () => {
      const body = JSON.stringify({
        server: name,
        method: req.method,
        path: req.url,
        requestId: req.headers['x-request-id'],
        forwardedFor: req.headers['x-forwarded-for'],
      })
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': name })
      res.end(`${body}\n`)
    }
    req.resume()
    req.on('end', () => (delayMs > 0 ? setTimeout(answer, delayMs) : answer()))
  })
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, host, () => {
      const { port } = server.address() as AddressInfo
      resolve({
        name,
        url: `http://${host}:${port}`,
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r())
            server.closeAllConnections()
          }),
      })
    })
  })
}
