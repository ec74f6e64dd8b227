// The access log's own encoder: every line it writes must parse as JSON and give back the values it
// was given, on both of its ways out (a descriptor written directly, a destination given strings).
import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { createLogger } from '../core/logger.js'
import { type AccessEntry, AccessLog } from './access-log.js'

function entry(over: Partial<AccessEntry> = {}): AccessEntry {
  return {
    requestId: '8f0b2c1e-4b7a-4f0e-9a55-2e0c4c1d7a11',
    listener: 'main',
    client: '127.0.0.1',
    method: 'GET',
    url: '/',
    status: 200,
    pool: 'web',
    upstream: '127.0.0.1:8080',
    bytesIn: 0,
    bytesOut: 10,
    ttfbMs: 0.5,
    durationMs: 1.25,
    code: undefined,
    error: undefined,
    aborted: false,
    protocol: 'http/1.1',
    ...over,
  }
}

/** An access log on a destination that records each string it is given. */
function stringLog(maxWrite?: number): { log: AccessLog; writes: string[] } {
  const writes: string[] = []
  const dest = { write: (s: string) => writes.push(s), ...(maxWrite === undefined ? {} : { maxWrite }) }
  const logger = pino({ base: { name: 'switchyard' }, formatters: { level: (label) => ({ level: label }) } }, dest)
  const log = AccessLog.of(logger)
  assert.ok(log)
  return { log, writes }
}

function parsed(writes: readonly string[]): Record<string, unknown>[] {
  const text = writes.join('')
  assert.ok(text.endsWith('\n'), 'every write ends with a whole line')
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('access log encoder', () => {
  it('gives back strings that need escaping, and non-ASCII, exactly', () => {
    const { log, writes } = stringLog()
    const urls = [
      '/plain?a=1&b=2',
      '/q"uote\\back',
      '/ctl\u0001\u001f\u007f',
      '/latin1-\u00e9\u00ff',
      '/emoji-\u{1f600}',
    ]
    for (const url of urls) log.write(entry({ url, error: `bad "${url}"` }))
    log.flush()
    const lines = parsed(writes)
    assert.deepEqual(
      lines.map((l) => l.url),
      urls,
    )
    assert.deepEqual(
      lines.map((l) => l.error),
      urls.map((u) => `bad "${u}"`),
    )
    assert.equal(lines[0]!.name, 'switchyard')
    assert.equal(lines[0]!.type, 'access')
  })

  it('writes numbers as String(Math.round(ms * 100) / 100) and integers as their digits', () => {
    const { log, writes } = stringLog()
    const ms = [0, 0.004, 0.005, 0.05, 0.1, 0.999, 1, 1.005, 9.99, 10.5, 123.456, 65_432.1, 1e12 + 0.07]
    const counts = [0, 7, 10, 99, 100, 12_345, 9_007_199_254_740_991]
    ms.forEach((m, i) => {
      log.write(
        entry({ ttfbMs: m, durationMs: m * 3, bytesIn: counts[i % counts.length]!, bytesOut: i, status: 200 + i }),
      )
    })
    log.write(entry({ ttfbMs: -1 }))
    log.flush()
    const lines = parsed(writes)
    const round = (x: number) => Math.round(x * 100) / 100
    ms.forEach((m, i) => {
      const l = lines[i]!
      assert.equal(l.ttfbMs, round(m), `ttfbMs for ${m}`)
      assert.equal(l.durationMs, round(m * 3), `durationMs for ${m * 3}`)
      assert.equal(l.bytesIn, counts[i % counts.length])
      assert.equal(l.bytesOut, i)
      assert.equal(l.status, 200 + i)
    })
    assert.equal('ttfbMs' in lines.at(-1)!, false, 'no ttfbMs without a response head')
    // The raw text too: the same digits JSON.stringify would write.
    assert.match(writes.join(''), /"ttfbMs":0\.05,"durationMs":0\.15,/)
    assert.match(writes.join(''), /"ttfbMs":10\.5,/)
  })

  it('fits a line far larger than a batch, and keeps each line within one write', () => {
    const { log, writes } = stringLog(4096)
    const big = `/${'x'.repeat(100_000)}`
    for (let i = 0; i < 50; i++) log.write(entry({ url: i === 20 ? big : `/${i}` }))
    log.flush()
    for (const w of writes) {
      assert.ok(w.endsWith('\n'), 'a write ends with a whole line')
      if (!w.includes(big)) assert.ok(Buffer.byteLength(w) <= 4096, `a write of ${Buffer.byteLength(w)} bytes`)
    }
    const lines = parsed(writes)
    assert.deepEqual(
      lines.map((l) => l.url),
      Array.from({ length: 50 }, (_, i) => (i === 20 ? big : `/${i}`)),
    )
  })

  it('writes a failed request at once, as warn, and the lines before it first', () => {
    const { log, writes } = stringLog()
    log.write(entry({ url: '/ok' }))
    assert.equal(writes.length, 0, 'an info line waits in the batch')
    log.write(entry({ url: '/bad', status: 502, code: 'SWY_UPSTREAM_RESET', error: 'reset' }), 'warn')
    const lines = parsed(writes)
    assert.deepEqual(
      lines.map((l) => [l.url, l.level, l.code]),
      [
        ['/ok', 'info', undefined],
        ['/bad', 'warn', 'SWY_UPSTREAM_RESET'],
      ],
    )
  })

  it('writes TCP connection lines', () => {
    const { log, writes } = stringLog()
    log.writeTcp({
      listener: 'db',
      client: '::1',
      pool: 'pg',
      upstream: undefined,
      bytesIn: 5,
      bytesOut: 0,
      connectMs: -1,
      durationMs: 2.5,
      code: 'SWY_CONNECT_FAILED',
      error: 'connect ECONNREFUSED',
    })
    log.flush()
    const [line] = parsed(writes)
    assert.equal(line!.type, 'tcp')
    assert.equal(line!.client, '::1')
    assert.equal('connectMs' in line!, false)
    assert.equal(line!.durationMs, 2.5)
    assert.equal(line!.code, 'SWY_CONNECT_FAILED')
  })

  it("writes batches straight to a synchronous logger's descriptor", () => {
    const file = join(mkdtempSync(join(tmpdir(), 'swy-access-')), 'access.log')
    const fd = openSync(file, 'a')
    try {
      const logger = createLogger({ fd, sync: true })
      const log = AccessLog.of(logger.child({ worker: 1 }))
      assert.ok(log)
      for (let i = 0; i < 200; i++) log.write(entry({ url: `/${i}\u00e9` }))
      logger.info('between')
      log.flush()
      const lines = readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
      const access = lines.filter((l) => l.type === 'access')
      assert.deepEqual(
        access.map((l) => l.url),
        Array.from({ length: 200 }, (_, i) => `/${i}\u00e9`),
      )
      assert.equal(access[0]!.worker, 1, "the child logger's bindings are on every line")
      assert.ok(
        lines.some((l) => l.msg === 'between'),
        'the logger and the access log share the file',
      )
    } finally {
      closeSync(fd)
    }
  })
})
