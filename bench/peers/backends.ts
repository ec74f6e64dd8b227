// Minimal keep-alive HTTP backends for the bench when nginx is not installed: one server per port
// given on argv, all on 127.0.0.1, answering GET / with 100 bytes and GET /16k with 16,384 bytes
// (bench/lib/bodies.ts); any other path is a 404.
// Usage: node --import tsx bench/peers/backends.ts PORT [PORT ...]
import http from 'node:http'
import { BODIES } from '../lib/bodies.js'

/** Longer than any proxy's idle timeout, so the proxy, not the backend, closes idle sockets. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000

const ports = process.argv.slice(2).map(Number)
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  process.stderr.write('usage: backends.ts PORT [PORT ...]\n')
  process.exit(2)
}

const NOT_FOUND = Buffer.from('not found\n')

for (const port of ports) {
  const server = http.createServer((req, res) => {
    req.resume()
    const body = BODIES.get(req.url ?? '/')
    if (body === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': NOT_FOUND.length })
      res.end(NOT_FOUND)
      return
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length })
    res.end(body)
  })
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.listen(port, '127.0.0.1')
}
