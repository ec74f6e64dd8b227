// The bare undici `dispatch` proxy: the floor that the targets are stated against. No routing,
// no metrics, no logging, no forwarded headers, no error mapping beyond 502: node:http in, round-robin
// over one undici Pool per backend, raw header arrays both ways with hop-by-hop headers dropped.
// Usage: node --import tsx bench/peers/undici-dispatch.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import http from 'node:http'
import { Pool } from 'undici'

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number)
if (listenPort === undefined || backendPorts.length === 0 || [listenPort, ...backendPorts].some((p) => !(p > 0))) {
  process.stderr.write('usage: undici-dispatch.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}

const pools = backendPorts.map((port) => new Pool(`http://127.0.0.1:${port}`, { connections: 128, pipelining: 1 }))
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'proxy-connection'])

function filterRaw(raw: readonly (string | Buffer)[]): string[] {
  const out: string[] = []
  for (let i = 0; i < raw.length; i += 2) {
    const name = String(raw[i])
    if (!HOP.has(name.toLowerCase())) out.push(name, String(raw[i + 1]))
  }
  return out
}

let next = 0
http
  .createServer((req, res) => {
    const pool = pools[next]!
    next = (next + 1) % pools.length
    let resume: (() => void) | undefined
    const onDrain = () => resume?.()
    pool.dispatch(
      {
        path: req.url ?? '/',
        method: req.method ?? 'GET',
        headers: filterRaw(req.rawHeaders),
        body: req.headers['content-length'] || req.headers['transfer-encoding'] ? req : null,
      },
      {
        onConnect() {},
        onHeaders(status, rawHeaders, res_resume) {
          resume = res_resume
          res.writeHead(status, filterRaw(rawHeaders))
          return true
        },
        onData(chunk) {
          if (res.write(chunk)) return true
          res.once('drain', onDrain)
          return false
        },
        onComplete() {
          res.end()
        },
        onError() {
          if (res.headersSent) res.destroy()
          else {
            res.writeHead(502, { 'content-type': 'text/plain' })
            res.end('bad gateway\n')
          }
        },
      },
    )
  })
  .listen(listenPort, '127.0.0.1')
