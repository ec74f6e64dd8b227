// The access log's own encoder: every line it writes must parse as JSON and give back the values it
// was given, on both of its ways out (a descriptor written directly, a destination given strings).
import assert from 'node:assert/strict'
import { closeSync, mkdtempSync, openSync, readFileSync, renameSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { pino } from 'pino'
import { createLogger } from '../core/logger.js'
import { headFields, timeLocal } from './access-combined.js'
import { AccessFile } from './access-file.js'
import { type AccessEntry, type AccessFormat, AccessLog, sampledIn } from './access-log.js'

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
function stringLog(maxWrite?: number, format: AccessFormat = 'json'): { log: AccessLog; writes: string[] } {
  const writes: string[] = []
  const dest = { write: (s: string) => writes.push(s), ...(maxWrite === undefined ? {} : { maxWrite }) }
  const logger = pino({ base: { name: 'switchyard' }, formatters: { level: (label) => ({ level: label }) } }, dest)
  const log = AccessLog.of(logger, format)
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

/** `$time_local` as a pattern: `24/Nov/2026:14:36:57 +0000`. */
const TIME_LOCAL = String.raw`\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}`

describe('access log text formats', () => {
  it('writes combined lines exactly as NGINX does', () => {
    const { log, writes } = stringLog(undefined, 'combined')
    log.write(entry({ referer: 'https://shop.example/', userAgent: 'curl/8.5.0', user: 'alice', bytesOut: 612 }))
    log.write(entry({ method: 'POST', url: '/p?q=1', status: 502, protocol: 'h2', bytesOut: 0 }))
    log.write(entry({ protocol: 'http/1.0' }))
    log.flush()
    const lines = writes.join('').split('\n')
    assert.equal(lines.pop(), '', 'ends with a newline')
    assert.match(
      lines[0]!,
      new RegExp(
        `^127\\.0\\.0\\.1 - alice \\[${TIME_LOCAL}\\] "GET / HTTP/1\\.1" 200 612 "https://shop\\.example/" "curl/8\\.5\\.0"$`,
      ),
    )
    assert.match(lines[1]!, /^127\.0\.0\.1 - - \[[^\]]+\] "POST \/p\?q=1 HTTP\/2\.0" 502 0 "-" "-"$/)
    assert.match(lines[2]!, /"GET \/ HTTP\/1\.0" 200 10 /)
    assert.equal(lines.length, 3)
  })

  it('escapes quotes, backslashes, controls and non-ASCII as \\xHH', () => {
    const { log, writes } = stringLog(undefined, 'combined')
    log.write(entry({ url: '/a"b\\c\u0001\u007f\u00e9\u20ac\u{1f600}', userAgent: 'x "y"', referer: '' }))
    log.flush()
    const line = writes.join('')
    assert.ok(line.includes('"GET /a\\x22b\\x5Cc\\x01\\x7F\\xE9\\xE2\\x82\\xAC\\xF0\\x9F\\x98\\x80 HTTP/1.1"'), line)
    assert.ok(line.includes('"-" "x \\x22y\\x22"'), line)
  })

  it('appends the extended fields, `-` for each that is absent', () => {
    const { log, writes } = stringLog(undefined, 'combined-extended')
    log.write(entry({ durationMs: 1234.4, ttfbMs: 12.5, traceId: 'abc', code: undefined }))
    log.write(
      entry({ pool: undefined, upstream: undefined, ttfbMs: -1, durationMs: 0.4, code: 'SWY_NO_ROUTE', status: 404 }),
    )
    log.flush()
    const [a, b] = writes.join('').split('\n')
    assert.match(a!, /" 1\.234 "web" "127\.0\.0\.1:8080" 0\.013 "8f0b2c1e-4b7a-4f0e-9a55-2e0c4c1d7a11" "-" "abc"$/)
    assert.match(b!, /" 404 10 "-" "-" 0\.000 "-" "-" - "8f0b2c1e-[^"]+" "SWY_NO_ROUTE" "-"$/)
  })

  it('writes TCP connection lines in the stream format', () => {
    const tcp = {
      listener: 'db',
      client: '::1',
      pool: 'pg',
      upstream: '127.0.0.1:5432' as string | undefined,
      bytesIn: 5,
      bytesOut: 7,
      connectMs: 1.5,
      durationMs: 2500,
      code: undefined as string | undefined,
      error: undefined,
    }
    const { log, writes } = stringLog(undefined, 'combined-extended')
    log.writeTcp(tcp)
    log.writeTcp({ ...tcp, upstream: undefined, connectMs: -1, code: 'SWY_UPSTREAM_CONNECT', error: 'refused' }, 'warn')
    log.writeTcp({ ...tcp, code: 'SWY_CLIENT_ABORTED' })
    log.flush()
    const [ok, failed, aborted] = writes.join('').split('\n')
    assert.match(
      ok!,
      new RegExp(`^::1 \\[${TIME_LOCAL}\\] TCP 200 7 5 2\\.500 "pg" "127\\.0\\.0\\.1:5432" 0\\.002 "-"$`),
    )
    assert.match(failed!, /\] TCP 502 7 5 2\.500 "pg" "-" - "SWY_UPSTREAM_CONNECT"$/)
    assert.match(aborted!, /\] TCP 499 /)
    const plain = stringLog(undefined, 'combined')
    plain.log.writeTcp(tcp)
    plain.log.flush()
    assert.match(plain.writes.join(''), /\] TCP 200 7 5 2\.500\n$/)
  })

  it('adds the trace and span ids to JSON lines', () => {
    const { log, writes } = stringLog()
    log.write(entry({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7' }))
    log.write(entry())
    log.flush()
    const [traced, plain] = parsed(writes)
    assert.equal(traced!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736')
    assert.equal(traced!.spanId, '00f067aa0ba902b7')
    assert.equal('traceId' in plain!, false)
  })

  it('formats $time_local in the local time zone', () => {
    const ms = Date.UTC(2026, 10, 4, 9, 5, 7)
    const d = new Date(ms)
    const text = timeLocal(ms)
    assert.match(text, new RegExp(`^${TIME_LOCAL}$`))
    assert.equal(text.slice(0, 11), `${String(d.getDate()).padStart(2, '0')}/Nov/2026`)
    const off = -d.getTimezoneOffset()
    const sign = off < 0 ? '-' : '+'
    assert.ok(
      text.endsWith(
        `${sign}${String(Math.floor(Math.abs(off) / 60)).padStart(2, '0')}${String(Math.abs(off) % 60).padStart(2, '0')}`,
      ),
    )
  })

  it('reads Referer, User-Agent and the Basic user of a request head', () => {
    const basic = `Basic ${Buffer.from('bob:s3cr:et').toString('base64')}`
    assert.deepEqual(headFields(['Referer', '/r', 'User-Agent', 'ua', 'Authorization', basic]), {
      referer: '/r',
      userAgent: 'ua',
      user: 'bob',
    })
    for (const auth of ['Bearer abc', 'Basic !!!', `Basic ${Buffer.from('nocolon').toString('base64')}`])
      assert.equal(headFields(['authorization', auth]).user, undefined, auth)
    assert.deepEqual(headFields([]), { referer: undefined, userAgent: undefined, user: undefined })
  })
})

describe('access log file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'swy-access-file-'))
  const logger = pino({ base: { name: 'switchyard' } })

  it('appends; on reopen, batched lines go to the renamed file and later ones to the new file', () => {
    const path = join(dir, 'a.log')
    const file = new AccessFile(path, () => {})
    const log = AccessLog.on(file, logger, 'json')
    for (let i = 0; i < 5; i++) log.write(entry({ url: `/before/${i}` }))
    renameSync(path, `${path}.1`)
    log.write(entry({ url: '/after-rename' }))
    // What AccessLogs.reopen does: flush, then reopen.
    log.flush()
    file.reopen()
    log.write(entry({ url: '/after-reopen' }))
    log.flush()
    file.close()
    const urls = (f: string) =>
      readFileSync(f, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { url: string; name: string }).url)
    assert.deepEqual(urls(`${path}.1`), [
      '/before/0',
      '/before/1',
      '/before/2',
      '/before/3',
      '/before/4',
      '/after-rename',
    ])
    assert.deepEqual(urls(path), ['/after-reopen'])
  })

  it('appends batches written after close by opening the file for them', () => {
    const path = join(dir, 'b.log')
    const file = new AccessFile(path, () => {})
    const log = AccessLog.on(file, logger, 'combined')
    log.write(entry({ url: '/open' }))
    log.flush()
    file.close()
    log.write(entry({ url: '/closed' }))
    log.flush()
    const text = readFileSync(path, 'utf8')
    assert.match(text, /"GET \/open HTTP\/1\.1"[^\n]*\n[^\n]*"GET \/closed HTTP\/1\.1"[^\n]*\n$/)
  })

  it('tells once when writes start failing and once when they work again', () => {
    const path = join(dir, 'c.log')
    const told: (string | undefined)[] = []
    const file = new AccessFile(path, (err) => told.push(err === undefined ? undefined : err.message))
    file.close()
    renameSync(dir, `${dir}-moved`)
    try {
      file.write('lost 1\n')
      file.write('lost 2\n')
    } finally {
      renameSync(`${dir}-moved`, dir)
    }
    file.write('kept\n')
    assert.equal(told.length, 2)
    assert.match(told[0]!, /ENOENT/)
    assert.equal(told[1], undefined)
    assert.equal(readFileSync(path, 'utf8'), 'kept\n')
  })

  it('tells that writes work again when the next batch goes to the descriptor whole', () => {
    const path = join(dir, 'd.log')
    const told: (string | undefined)[] = []
    const file = new AccessFile(path, (err) => told.push(err === undefined ? undefined : err.message))
    const log = AccessLog.on(file, logger, 'combined')
    file.close()
    renameSync(dir, `${dir}-moved`)
    try {
      log.write(entry({ url: '/lost' }))
      log.flush()
    } finally {
      renameSync(`${dir}-moved`, dir)
    }
    assert.equal(told.length, 1)
    file.reopen() // as SIGUSR1 does: batches go to the descriptor again
    log.write(entry({ url: '/kept' }))
    log.flush()
    assert.deepEqual(told.slice(1), [undefined])
    log.write(entry({ url: '/kept-2' }))
    log.flush()
    assert.equal(told.length, 2, 'told once')
    assert.match(readFileSync(path, 'utf8'), /GET \/kept HTTP[^\n]*\n[^\n]*GET \/kept-2 HTTP/)
    file.close()
  })

  it('cannot open a file in a missing directory', () => {
    assert.throws(() => new AccessFile(join(dir, 'missing', 'x.log'), () => {}), /ENOENT/)
  })
})

describe('sampling', () => {
  it('keeps everything at 1, nothing at 0, and about the share in between', () => {
    let half = 0
    for (let i = 0; i < 2000; i++) {
      assert.equal(sampledIn(1), true)
      assert.equal(sampledIn(0), false)
      if (sampledIn(0.25)) half++
    }
    // Binomial(2000, 0.25): outside 380..620 with a probability below 1e-9.
    assert.ok(half > 380 && half < 620, `${half} of 2000`)
  })
})
