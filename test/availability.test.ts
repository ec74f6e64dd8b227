/**
 * Availability under operations: a backend process killed mid-response never yields a truncated 200
 * that looks complete. (Reloads under load: test/slow/reload-soak.test.ts.)
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { connect } from 'node:net'
import { describe, it } from 'node:test'
import { request } from 'undici'
import { createLoadBalancer } from '../src/index.js'

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
