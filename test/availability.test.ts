/**
 * Availability under operations: a backend process killed mid-response never yields a truncated 200
 * that looks complete, and reloads under load fail no request and leak neither descriptors nor memory.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { createServer } from 'node:http'
import { type AddressInfo, connect } from 'node:net'
import { describe, it } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Agent, request } from 'undici'
import { type ConfigInput, createLoadBalancer } from '../src/index.js'

function lbPort(lb: ReturnType<typeof createLoadBalancer>): number {
  return Object.values(lb.addresses())[0]!.port
}

/**
 * A backend in its own process that streams a 64 MiB body slowly (1 MiB every 10 ms), with a
 * Content-Length or chunked. Prints its port.
 */
function startStreamingProcess(chunked: boolean): Promise<{ child: ChildProcess; port: number }> {
  const script = `
    const http = require('node:http')
    const chunk = Buffer.alloc(1 << 20, 97)
    const server = http.createServer((req, res) => {
      res.writeHead(200, ${chunked} ? {} : { 'content-length': String(64 << 20) })
      let sent = 0
      const timer = setInterval(() => {
        res.write(chunk)
        if (++sent === 64) { clearInterval(timer); res.end() }
      }, 10)
    })
    server.listen(0, '127.0.0.1', () => console.log(server.address().port))`
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', (d: Buffer) => resolve({ child, port: Number(d.toString().trim()) }))
    child.once('exit', (code) => reject(new Error(`backend exited with ${code}`)))
  })
}

/** A raw GET: every byte the client receives until the connection closes. */
function rawGet(port: number, onBytes: (total: number) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const socket = connect(port, '127.0.0.1', () => {
      socket.write('GET /big HTTP/1.1\r\nHost: test\r\n\r\n')
    })
    socket.on('data', (c: Buffer) => {
      chunks.push(c)
      total += c.length
      onBytes(total)
    })
    socket.on('error', () => {})
    socket.on('close', () => resolve(Buffer.concat(chunks)))
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('the connection stayed open'))
    }, 20_000)
    socket.on('close', () => clearTimeout(timer))
  })
}

describe('a backend killed during a large response', () => {
  for (const chunked of [false, true]) {
    it(`aborts the client connection, never ends the response (${chunked ? 'chunked' : 'Content-Length'})`, async () => {
      const { child, port } = await startStreamingProcess(chunked)
      const lb = createLoadBalancer({
        listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: [`http://127.0.0.1:${port}`] }],
      })
      await lb.start()
      let child2: ChildProcess | undefined
      try {
        let killed = false
        const bytes = await rawGet(lbPort(lb), (total) => {
          if (!killed && total > 4 << 20) {
            killed = true
            child.kill('SIGKILL')
          }
        })
        assert.ok(killed)
        const text = bytes.subarray(0, 200).toString('latin1')
        assert.match(text, /^HTTP\/1\.1 200 /)
        const headEnd = bytes.indexOf('\r\n\r\n')
        const body = bytes.subarray(headEnd + 4)
        if (chunked) {
          assert.match(text, /transfer-encoding: chunked/i)
          // No last-chunk: a client reading chunked framing knows the body is incomplete.
          assert.ok(!bytes.subarray(-5).equals(Buffer.from('0\r\n\r\n')), 'the response was ended with a last-chunk')
        } else {
          assert.match(text, /content-length: 67108864/i)
          assert.ok(body.length < 64 << 20, 'the whole body arrived?')
        }
        // undici, as a client, sees an error rather than a complete body.
        const second = await startStreamingProcess(chunked)
        child2 = second.child
        const port2 = second.port
        // (The listener's config is unchanged: the reload keeps it, port included.)
        await lb.reload({
          listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
          pools: [{ name: 'p', servers: [`http://127.0.0.1:${port2}`] }],
        })
        const res = await request(`http://127.0.0.1:${lbPort(lb)}/big`)
        assert.equal(res.statusCode, 200)
        let received = 0
        await assert.rejects(async () => {
          for await (const c of res.body) {
            received += (c as Buffer).length
            if (received > 4 << 20 && child2?.exitCode === null) child2.kill('SIGKILL')
          }
        })
      } finally {
        child.kill('SIGKILL')
        child2?.kill('SIGKILL')
        await lb.close({ gracePeriodMs: 200 })
      }
    })
  }
})

function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

function heapAfterGc(): number {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

describe('reloads under load', () => {
  it('20 reloads in 10 s while clients send requests: none fails, no descriptor or memory growth', async (t) => {
    // Plain servers: the shared test backend keeps every request it saw, which would read as growth.
    const backends = await Promise.all(
      ['r1', 'r2', 'r3', 'r4'].map(async (name) => {
        const server = createServer((req, res) => {
          req.resume()
          setTimeout(() => res.end(name), 1)
        })
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
        const { port } = server.address() as AddressInfo
        return { name, url: `http://127.0.0.1:${port}`, server }
      }),
    )
    // Alternate between two configs: a server removed and added back, a weight and an algorithm changed,
    // a pool added and removed, a listener's routes changed. The listener's own config is the same in
    // both, so it is kept (with its port) across reloads.
    const config = (variant: number): ConfigInput => ({
      logging: { accessLog: false, level: 'warn' },
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: variant === 0 ? [{ pool: 'p' }] : [{ match: { path: '/other' }, pool: 'q' }, { pool: 'p' }],
        },
      ],
      pools: [
        {
          name: 'p',
          balance: variant === 0 ? 'round-robin' : 'least-request',
          servers: backends
            .slice(0, variant === 0 ? 4 : 3)
            .map((b, i) => ({ url: b.url, name: b.name, weight: variant === 1 && i === 0 ? 3 : 1 })),
          retries: { on: ['connect-failure', 'reset'] },
        },
        ...(variant === 1 ? [{ name: 'q', servers: [backends[3]!.url] }] : []),
      ],
    })
    const lb = createLoadBalancer(config(0))
    await lb.start()
    const url = `http://127.0.0.1:${lbPort(lb)}/`
    const agent = new Agent({ connections: 8 })
    let stop = false
    let sent = 0
    const failures: string[] = []
    const load = async () => {
      while (!stop && sent < 200_000) {
        sent++
        try {
          const res = await request(url, { dispatcher: agent })
          const body = await res.body.text()
          if (res.statusCode !== 200) failures.push(`${res.statusCode} ${body}`)
        } catch (err) {
          failures.push(String(err))
        }
      }
    }
    const warmUp = async (ms: number) => {
      stop = false
      const workers = Array.from({ length: 8 }, load)
      await new Promise((r) => setTimeout(r, ms))
      stop = true
      await Promise.all(workers)
    }
    try {
      // Warm up (connections, JIT, both configs once), then measure at rest.
      await warmUp(300)
      await lb.reload(config(1))
      await warmUp(300)
      await lb.reload(config(0))
      await warmUp(300)
      await new Promise((r) => setTimeout(r, 200))
      const fdsBefore = openFds()
      const heapBefore = heapAfterGc()
      const sentBefore = sent

      stop = false
      const workers = Array.from({ length: 8 }, load)
      for (let i = 1; i <= 20; i++) {
        await new Promise((r) => setTimeout(r, 500))
        await lb.reload(config(i % 2))
      }
      stop = true
      await Promise.all(workers)
      // The last reload's retired pools close once their requests are done.
      await new Promise((r) => setTimeout(r, 300))
      const fdsAfter = openFds()
      const heapAfter = heapAfterGc()
      const requests = sent - sentBefore
      t.diagnostic(
        `${requests} requests during 20 reloads, ${failures.length} failed; ` +
          `descriptors ${fdsBefore} → ${fdsAfter}; heap after GC ${(heapBefore / 1e6).toFixed(1)} → ${(heapAfter / 1e6).toFixed(1)} MB`,
      )
      assert.deepEqual(failures.slice(0, 5), [])
      assert.ok(requests > 1000, `only ${requests} requests`)
      assert.equal(lb.status().generation, 23)
      // Every reload builds pools and may open connections; none may be left behind. A few descriptors
      // of slack: the client and backends are in this process too, and keep-alive sockets come and go.
      assert.ok(fdsAfter <= fdsBefore + 6, `descriptors grew from ${fdsBefore} to ${fdsAfter}`)
      assert.ok(heapAfter < heapBefore + 8e6, `heap grew from ${heapBefore} to ${heapAfter}`)
    } finally {
      stop = true
      await agent.close()
      await lb.close({ gracePeriodMs: 200 })
      for (const b of backends) {
        b.server.closeAllConnections()
        b.server.close()
      }
    }
  })
})
