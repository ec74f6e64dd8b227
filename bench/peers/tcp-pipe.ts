// The bare Node TCP pipe: the floor for Switchyard's layer 4 mode. Each connection is piped to the next
// backend in rotation; nothing else (no timeouts, metrics or logs).
// Usage: node --import tsx bench/peers/tcp-pipe.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import net from 'node:net'

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number)
if (listenPort === undefined || backendPorts.length === 0 || [listenPort, ...backendPorts].some((p) => !(p > 0))) {
  process.stderr.write('usage: tcp-pipe.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}

let next = 0
net
  .createServer({ noDelay: true }, (client) => {
    const port = backendPorts[next]!
    next = (next + 1) % backendPorts.length
    const upstream = net.connect({ host: '127.0.0.1', port, noDelay: true })
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  .listen(listenPort, '127.0.0.1')
