// The floor for HTTP/2 to servers in Node: an HTTP/1.1 server whose every request goes out on one of
// a few node:http2 client sessions (h2c), round-robin, with no feature at all (no forwarding headers,
// no timeouts, no retries, no log), the counterpart of undici-dispatch.ts for HTTP/1.1.
// Usage: node --import tsx bench/peers/h2-dispatch.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import http from 'node:http'
import http2 from 'node:http2'

const [listen, ...backends] = process.argv.slice(2).map(Number)
if (listen === undefined || backends.length === 0) {
  process.stderr.write('usage: h2-dispatch.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}
// Connected on first use (the backends may start after this), and again once closed.
const sessions: (http2.ClientHttp2Session | undefined)[] = backends.map(() => undefined)
function sessionTo(i: number): http2.ClientHttp2Session {
  const open = sessions[i]
  if (open !== undefined && !open.closed && !open.destroyed) return open
  const made = http2.connect(`http://127.0.0.1:${backends[i]}`)
  made.on('error', () => {})
  sessions[i] = made
  return made
}
let next = 0
http
  .createServer((req, res) => {
    const session = sessionTo(next++ % sessions.length)
    const stream = session.request(
      { ':method': req.method ?? 'GET', ':path': req.url ?? '/', ':authority': req.headers.host ?? 'localhost' },
      { endStream: true },
    )
    stream.on('response', (h) => {
      res.writeHead(Number(h[':status']), { 'content-type': String(h['content-type'] ?? 'text/plain') })
    })
    stream.on('data', (chunk: Buffer) => res.write(chunk))
    stream.on('end', () => res.end())
    stream.on('error', () => res.destroy())
  })
  .listen(listen, '127.0.0.1')
