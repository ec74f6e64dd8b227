/**
 * Embedding Switchyard: two backends and a load balancer in one Node process.
 *   npx tsx examples/embed.ts
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLoadBalancer, createLogger } from '../src/index.js'

async function backend(name: string): Promise<string> {
  const server = createServer((_req, res) => res.end(`hello from ${name}\n`))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  server.unref()
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const servers = [await backend('one'), await backend('two')]
const lb = createLoadBalancer(
  {
    listeners: [{ name: 'public', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', balance: 'round-robin', servers }],
  },
  { logger: createLogger({ level: 'warn' }) },
)
await lb.start()
const url = `http://127.0.0.1:${lb.addresses().public!.port}/`
for (let i = 0; i < 4; i++) process.stdout.write(await (await fetch(url)).text())

// Swap the pool at runtime: only server two from now on.
await lb.reload({
  listeners: [{ name: 'public', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
  pools: [{ name: 'web', servers: [servers[1]!] }],
})
process.stdout.write(await (await fetch(url)).text())
await lb.close()
