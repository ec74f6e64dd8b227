/**
 * Bodies stream both ways in bounded memory: 100 MiB up and 100 MiB down through the real CLI process,
 * with a stall on the far side so that only working backpressure keeps the proxy small.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { request } from 'node:http'
import type { Readable } from 'node:stream'
import { after, before, describe, it, type TestContext } from 'node:test'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { type CliProcess, configFiles, rssBytes, runCli } from '../helpers/cli.js'

const MiB = 1024 * 1024
const TOTAL = 100 * MiB
const BLOCK = randomBytes(MiB)
const EXPECTED_SHA = (() => {
  const h = createHash('sha256')
  for (let i = 0; i < TOTAL / MiB; i++) h.update(BLOCK)
  return h.digest('hex')
})()
const RSS_BUDGET = 64 * MiB
/**
 * The stalled side waits until the sender has pushed everything or this long has passed. Through a proxy
 * with working backpressure the sender blocks, so the wait runs its course; through one without, the
 * sender finishes and the proxy holds the remaining ~90 MiB, which fails the budget.
 */
const STALL_MS = 5000
/** Bytes the backend has handed to its socket for the current download. */
let downloadSent = 0
/** Bytes the client has handed to its socket for the current upload. */
let uploadWritten = 0

/** Bytes the sender had pushed when the stalled side resumed, for the last stall. */
let sentAtResume = 0

function stallUntil(sent: () => number, resume: () => void): void {
  const started = Date.now()
  const check = () => {
    if (sent() < TOTAL && Date.now() - started < STALL_MS) return void setTimeout(check, 20)
    sentAtResume = sent()
    resume()
  }
  check()
}

/**
 * Samples the process RSS every 20 ms until stopped. Returns the largest rise of RSS above the lowest
 * value seen before it (the starting RSS included), so garbage left over from earlier work that the GC
 * frees mid-transfer cannot hide growth.
 */
function sampleRss(pid: number, startBytes: number): { stop(): Promise<{ rise: number; peak: number }> } {
  let trough = startBytes
  let rise = 0
  let peak = startBytes
  let running = true
  const loop = (async () => {
    // A sampling period, not a wait: the loop ends when the transfer it samples does.
    while (running) {
      const v = await rssBytes(pid)
      trough = Math.min(trough, v)
      rise = Math.max(rise, v - trough)
      peak = Math.max(peak, v)
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  return {
    async stop() {
      running = false
      await loop
      return { rise, peak }
    },
  }
}

/**
 * Reads `stream` to its end, hashing it; after 10 MiB it stalls (see `stallUntil`) while the far sender's
 * progress is read from `sent`.
 */
function hashWithStall(stream: Readable, sent: () => number): Promise<{ bytes: number; sha: string }> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256')
    let bytes = 0
    let stalled = false
    stream.on('data', (c: Buffer) => {
      h.update(c)
      bytes += c.length
      if (!stalled && bytes > 10 * MiB) {
        stalled = true
        stream.pause()
        stallUntil(sent, () => stream.resume())
      }
    })
    stream.on('end', () => resolve({ bytes, sha: h.digest('hex') }))
    stream.on('error', reject)
  })
}

/** Runs a transfer while sampling the proxy's RSS; checks the budget and reports the figures. */
async function withinRssBudget<T>(t: TestContext, label: string, pid: number, transfer: () => Promise<T>): Promise<T> {
  const baseline = await rssBytes(pid)
  const sampler = sampleRss(pid, baseline)
  const result = await transfer()
  const { rise: growth } = await sampler.stop()
  assert.ok(growth < RSS_BUDGET, `${label}: proxy RSS grew by ${(growth / MiB).toFixed(1)} MiB (budget 64 MiB)`)
  t.diagnostic(
    `${label}: proxy RSS baseline ${(baseline / MiB).toFixed(1)} MiB, growth ${(growth / MiB).toFixed(1)} MiB`,
  )
  return result
}

const file = configFiles('switchyard-streaming-')

describe('streaming 100 MiB through the proxy', () => {
  let backend: TestBackend
  let proxy: CliProcess
  let port: number

  before(async () => {
    backend = await startBackend('stream', (req, res) => {
      if (req.url === '/upload') {
        hashWithStall(req, () => uploadWritten).then((r) => res.end(JSON.stringify(r)))
        return
      }
      req.resume()
      if (req.url !== '/download') return void res.end('warm')
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': TOTAL })
      downloadSent = 0
      const pump = () => {
        while (downloadSent < TOTAL) {
          downloadSent += MiB
          if (!res.write(BLOCK)) return void res.once('drain', pump)
        }
        res.end()
      }
      pump()
    })
    // No body limit: 100 MiB is over limits.maxBodySize's default of 10 MiB.
    const config = await file(
      'streaming.yaml',
      `listeners:\n  - name: default\n    listen: 127.0.0.1:0\n    limits: { maxBodySize: 0 }\n    routes: [{ pool: p }]\npools:\n  - name: p\n    servers: [${backend.url}]\n`,
    )
    proxy = runCli(['--config', config, '--log-level', 'info'])
    const ready = await proxy.waitForLog((l) => l.listener === 'default' && typeof l.address === 'string')
    port = Number(String(ready.address).split(':').pop())
    // Warm up so that the baseline includes loaded code and one upstream connection.
    for (let i = 0; i < 20; i++)
      await (await fetch(`http://127.0.0.1:${port}/warm`, { method: 'POST', body: 'x' })).arrayBuffer()
  })
  after(async () => {
    proxy.kill()
    await proxy.exited()
    await backend.close()
  })

  it('uploads 100 MiB with a matching sha256 and RSS growth under 64 MiB', async (t) => {
    const upload = () =>
      new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, method: 'POST', path: '/upload', headers: { 'content-length': TOTAL } },
          (res) => {
            let body = ''
            res.setEncoding('utf8')
            res.on('data', (c: string) => {
              body += c
            })
            res.on('end', () => resolve(JSON.parse(body) as { bytes: number; sha: string }))
          },
        )
        req.on('error', reject)
        uploadWritten = 0
        const write = () => {
          while (uploadWritten < TOTAL) {
            uploadWritten += MiB
            if (!req.write(BLOCK)) return void req.once('drain', write)
          }
          req.end()
        }
        write()
      })
    const result = await withinRssBudget(t, 'upload', proxy.pid, upload)
    assert.deepEqual(result, { bytes: TOTAL, sha: EXPECTED_SHA })
    assert.ok(sentAtResume < TOTAL, 'while the backend stalled, backpressure held the client back')
  })

  it('downloads 100 MiB with a matching sha256 and RSS growth under 64 MiB, though the client stalls', async (t) => {
    const download = () =>
      new Promise<{ bytes: number; sha: string }>((resolve, reject) => {
        request({ host: '127.0.0.1', port, path: '/download' }, (res) => {
          hashWithStall(res, () => downloadSent).then(resolve, reject)
        })
          .on('error', reject)
          .end()
      })
    const result = await withinRssBudget(t, 'download', proxy.pid, download)
    assert.deepEqual(result, { bytes: TOTAL, sha: EXPECTED_SHA })
    assert.ok(sentAtResume < TOTAL, 'while the client stalled, backpressure held the backend back')
  })
})
