// The npm `http-proxy` package as a bench peer: round-robin over the backends with a keep-alive
// agent, the way it is usually deployed. Answers 502 when a backend fails.
// Usage: node --import tsx bench/peers/http-proxy.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import http from 'node:http'
import httpProxy from 'http-proxy'

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number)
if (listenPort === undefined || backendPorts.length === 0 || [listenPort, ...backendPorts].some((p) => !(p > 0))) {
  process.stderr.write('usage: http-proxy.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}

const targets = backendPorts.map((port) => `http://127.0.0.1:${port}`)
const proxy = httpProxy.createProxyServer({ agent: new http.Agent({ keepAlive: true, maxSockets: 256 }) })
proxy.on('error', (_err, _req, res) => {
  if (res instanceof http.ServerResponse && !res.headersSent) {
    res.writeHead(502, { 'content-type': 'text/plain' })
    res.end('bad gateway\n')
  } else {
    res.destroy()
  }
})

let next = 0
http
  .createServer((req, res) => {
    const target = targets[next]!
    next = (next + 1) % targets.length
    proxy.web(req, res, { target })
  })
  .listen(listenPort, '127.0.0.1')
