/** Upstream failures map to 502/503/504 with stable codes, are logged once, and never look like success. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer } from '../src/index.js'
import { deadPort, startBackend, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

interface ErrorBody {
  error: { code: string; status: number; message: string; requestId: string }
}

describe('upstream failures', () => {
  let misbehaving: TestBackend
  let deadUrl: string
  let lbUrl: string
  let lbClose: () => Promise<void>
  const log = memoryLogger()

  before(async () => {
    misbehaving = await startBackend('bad', (req, res) => {
      req.resume()
      switch (req.url) {
        case '/slow-headers':
          setTimeout(() => res.end('late'), 3000)
          return
        case '/reset':
          req.socket.destroy()
          return
        case '/die-mid-body-length':
          res.writeHead(200, { 'content-length': '100000' })
          res.write(Buffer.alloc(1000, 97))
          setTimeout(() => req.socket.destroy(), 50)
          return
        case '/die-mid-body-chunked':
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write('first part;')
          setTimeout(() => req.socket.destroy(), 50)
          return
        case '/stall-mid-body':
          res.writeHead(200, { 'content-type': 'text/plain' })
          res.write('then nothing')
          return
        case '/upload-then-abort':
          req.on('end', () => res.end('got it all'))
          return
        case '/slow-total':
          setTimeout(() => res.end('late'), 3000)
          return
        default:
          res.end('ok')
      }
    })
    deadUrl = `http://127.0.0.1:${await deadPort()}`
    const lb = createLoadBalancer(
      {
        listeners: [
          {
            name: 'main',
            listen: '127.0.0.1:0',
            routes: [
              { match: { pathPrefix: '/dead' }, pool: 'dead' },
              { match: { pathPrefix: '/slow-total' }, pool: 'bad' },
              { pool: 'bad-fast-timeouts' },
            ],
          },
          {
            name: 'total',
            listen: '127.0.0.1:0',
            timeouts: { total: '400ms' },
            routes: [{ pool: 'bad' }],
          },
        ],
        pools: [
          { name: 'dead', servers: [deadUrl] },
          { name: 'bad', servers: [misbehaving.url] },
          {
            name: 'bad-fast-timeouts',
            servers: [misbehaving.url],
            timeouts: { responseHeaders: '300ms', idle: '300ms' },
          },
        ],
      },
      { logger: log.logger },
    )
    await lb.start()
    const addrs = lb.addresses()
    lbUrl = `http://127.0.0.1:${addrs.main!.port}`
    totalUrl = `http://127.0.0.1:${addrs.total!.port}`
    lbClose = () => lb.close({ gracePeriodMs: 500 })
  })
  let totalUrl: string
  after(async () => {
    await lbClose()
    await misbehaving.close()
  })

  async function expectError(url: string, status: number, code: string): Promise<string> {
    const res = await fetch(url)
    assert.equal(res.status, status)
    assert.equal(res.headers.get('content-type'), 'application/json')
    const body = (await res.json()) as ErrorBody
    assert.equal(body.error.code, code)
    assert.equal(body.error.status, status)
    assert.equal(body.error.requestId, res.headers.get('x-request-id'))
    return body.error.requestId
  }

  it('a dead upstream gives 502 SWY_UPSTREAM_CONNECT, logged once with the request id', async () => {
    const id = await expectError(`${lbUrl}/dead`, 502, 'SWY_UPSTREAM_CONNECT')
    await waitFor(() => log.lines.some((l) => l.requestId === id), 'the log line of the failed request')
    // Exactly one: a second line would be written right behind the first. The wait is the assertion.
    await new Promise((r) => setTimeout(r, 20))
    const mine = log.lines.filter((l) => l.requestId === id)
    assert.equal(mine.length, 1, 'exactly one log line for the failed request')
    assert.equal(mine[0]!.code, 'SWY_UPSTREAM_CONNECT')
    assert.equal(mine[0]!.status, 502)
    assert.equal(mine[0]!.level, 'warn', 'logged at warn level')
  })

  it('an upstream that resets the connection before answering gives 502 SWY_UPSTREAM_RESET', async () => {
    await expectError(`${lbUrl}/reset`, 502, 'SWY_UPSTREAM_RESET')
  })

  it('a slow upstream gives 504 SWY_UPSTREAM_TIMEOUT after responseHeaders', async () => {
    await expectError(`${lbUrl}/slow-headers`, 504, 'SWY_UPSTREAM_TIMEOUT')
  })

  it('the total timeout gives 504 SWY_TIMEOUT', async () => {
    await expectError(`${totalUrl}/slow-total`, 504, 'SWY_TIMEOUT')
  })

  for (const kind of ['length', 'chunked'] as const) {
    it(`an upstream that dies mid-body (${kind}) aborts the client response, never a complete one`, async () => {
      const res = await fetch(`${lbUrl}/die-mid-body-${kind}`)
      assert.equal(res.status, 200, 'the head was already relayed')
      await assert.rejects(res.arrayBuffer(), 'reading the body must fail, not end cleanly')
      await waitFor(() => log.lines.some((l) => l.url === `/die-mid-body-${kind}`), 'its log line')
      const line = log.lines.find((l) => l.url === `/die-mid-body-${kind}`)
      assert.equal(line?.code, 'SWY_UPSTREAM_RESET')
      assert.equal(line?.aborted, true)
    })
  }

  it('an upstream that stalls mid-body past the idle timeout aborts the client response', async () => {
    const res = await fetch(`${lbUrl}/stall-mid-body`)
    assert.equal(res.status, 200)
    await assert.rejects(res.text())
    await waitFor(() => log.lines.some((l) => l.url === '/stall-mid-body'), 'its log line')
    assert.equal(log.lines.find((l) => l.url === '/stall-mid-body')?.code, 'SWY_UPSTREAM_BODY_TIMEOUT')
  })

  it('a pool whose servers all have weight 0 gives 503 SWY_NO_SERVER', async () => {
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [{ url: misbehaving.url, weight: 0 }] }],
    })
    await lb.start()
    try {
      await expectError(`http://127.0.0.1:${lb.addresses().l!.port}/`, 503, 'SWY_NO_SERVER')
    } finally {
      await lb.close()
    }
  })

  it('a client that aborts mid-upload is logged as 499 SWY_CLIENT_ABORTED, not as an upstream failure', async () => {
    const { connect } = await import('node:net')
    const port = Number(new URL(lbUrl).port)
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write('POST /upload-then-abort HTTP/1.1\r\nHost: a\r\nContent-Length: 10000000\r\n\r\n')
    socket.write(Buffer.alloc(100_000, 98))
    // Mid-upload: the request has reached the backend, its body has not all been sent.
    await waitFor(() => misbehaving.requests.some((r) => r.url === '/upload-then-abort'), 'the upload at the backend')
    socket.destroy()
    await waitFor(() => log.lines.some((l) => l.url === '/upload-then-abort'), 'the log line of the aborted upload')
    const line = log.lines.find((l) => l.url === '/upload-then-abort')
    assert.equal(line?.status, 499)
    assert.equal(line?.code, 'SWY_CLIENT_ABORTED')
    assert.equal(log.lines.filter((l) => l.url === '/upload-then-abort').length, 1)
  })

  it('keeps serving after all of the above', async () => {
    const res = await fetch(`${lbUrl}/fine`)
    assert.equal(await res.text(), 'ok')
  })
})
