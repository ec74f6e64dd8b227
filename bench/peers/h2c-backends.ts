// HTTP/2 (h2c, prior knowledge) backends for the bench: one server per port given on argv, on
// 127.0.0.1, answering GET / with 100 bytes and GET /16k with 16,384 bytes (bench/lib/bodies.ts), the
// bodies of peers/backends.ts; any other path is a 404.
// Usage: node --import tsx bench/peers/h2c-backends.ts PORT [PORT ...]
import http2 from 'node:http2'
import { BODIES } from '../lib/bodies.js'

const ports = process.argv.slice(2).map(Number)
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  process.stderr.write('usage: h2c-backends.ts PORT [PORT ...]\n')
  process.exit(2)
}

for (const port of ports) {
  const server = http2.createServer({ settings: { maxConcurrentStreams: 1000 } })
  server.on('stream', (stream, headers) => {
    stream.on('error', () => {})
    stream.resume()
    const body = BODIES.get(String(headers[':path']))
    if (body === undefined) {
      stream.respond({ ':status': 404 })
      stream.end('not found\n')
      return
    }
    stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-length': body.length })
    stream.end(body)
  })
  server.listen(port, '127.0.0.1')
}
