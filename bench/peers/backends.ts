// Minimal keep-alive HTTP backends for the bench: one server per port given on argv, all on
// 127.0.0.1, each answering every request with the same 100-byte body.
// Usage: node --import tsx bench/peers/backends.ts PORT [PORT ...]
import http from 'node:http'

/** Exactly 100 bytes; the last one is a newline. */
const BODY = Buffer.from(`${'switchyard bench backend '.repeat(4).slice(0, 99)}\n`)

/** Longer than any proxy's idle timeout, so the proxy, not the backend, closes idle sockets. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000

const ports = process.argv.slice(2).map(Number)
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  process.stderr.write('usage: backends.ts PORT [PORT ...]\n')
  process.exit(2)
}

for (const port of ports) {
  const server = http.createServer((req, res) => {
    req.resume()
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': BODY.length })
    res.end(BODY)
  })
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS
  server.listen(port, '127.0.0.1')
}
