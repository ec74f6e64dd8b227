// `@fastify/http-proxy` as a bench peer, deployed the way its users do: one Fastify instance, logger
// off, the plugin registered for every path. The plugin takes one `upstream`; round-robin over the
// backends comes from handing its @fastify/reply-from layer an undici `BalancedPool` of all of them
// (the same pool reply-from builds itself when given several bases), keep-alive on, 128 connections
// per backend (reply-from's default).
// Usage: node --import tsx bench/peers/fastify-http-proxy.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import proxy from '@fastify/http-proxy'
import Fastify from 'fastify'
import { BalancedPool } from 'undici'

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number)
if (listenPort === undefined || backendPorts.length === 0 || [listenPort, ...backendPorts].some((p) => !(p > 0))) {
  process.stderr.write('usage: fastify-http-proxy.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}

const origins = backendPorts.map((port) => `http://127.0.0.1:${port}`)
const app = Fastify({ logger: false })
await app.register(proxy, {
  upstream: origins[0]!,
  undici: new BalancedPool(origins, { connections: 128, pipelining: 1, keepAliveTimeout: 60_000 }),
})
await app.listen({ host: '127.0.0.1', port: listenPort })
