import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { Readable, type Transform, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { describe, it } from 'node:test'
import zlib from 'node:zlib'
import { z } from 'zod'
import { silentLogger } from '../core/logger.js'
import {
  chooseEncoding,
  create,
  DEFAULT_MIN_SIZE,
  DEFAULT_OPTIONS,
  DEFAULT_TYPES,
  ENCODINGS,
  type Encoding,
  schema,
  ZSTD_AVAILABLE,
} from './compress.js'
import type { FilterEnv } from './env.js'
import type { FilterContext, ResponseDraft } from './types.js'

const TEST_ENV: FilterEnv = {
  listener: 'test',
  logger: silentLogger(),
  pools: new Map(),
  pathPrefix: undefined,
  level: 'route',
}

/** A response head as the pipeline would hand it over: header lines in order, names case-insensitive. */
class FakeDraft implements ResponseDraft {
  status: number
  readonly lines: [string, string][]
  constructor(status: number, headers: Record<string, string | string[]>) {
    this.status = status
    this.lines = Object.entries(headers).flatMap(([n, v]) =>
      (Array.isArray(v) ? v : [v]).map((x): [string, string] => [n, x]),
    )
  }
  header(name: string): string | undefined {
    return this.lines.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1]
  }
  /** Every value of a header, in order. */
  all(name: string): string[] {
    return this.lines.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v)
  }
  setHeader(name: string, value: string): void {
    const at = this.lines.findIndex(([n]) => n.toLowerCase() === name.toLowerCase())
    this.removeHeader(name)
    this.lines.splice(at === -1 ? this.lines.length : at, 0, [name, value])
  }
  addHeader(name: string, value: string): void {
    this.lines.push([name, value])
  }
  removeHeader(name: string): void {
    for (let i = this.lines.length - 1; i >= 0; i--)
      if (this.lines[i]![0].toLowerCase() === name.toLowerCase()) this.lines.splice(i, 1)
  }
}

interface Exchange {
  status?: number
  headers?: Record<string, string | string[]>
  accept?: string | undefined
  method?: string
  protocol?: 'http/1.0' | 'http/1.1' | 'h2'
  options?: z.input<typeof schema>
}

function context(accept: string | undefined, method: string, protocol: Exchange['protocol']): FilterContext {
  const request = {
    method,
    protocol,
    header: (name: string) => (name.toLowerCase() === 'accept-encoding' ? accept : undefined),
  }
  return { listener: 'test', request, state: {} } as unknown as FilterContext
}

/** Runs the filter's responseBody on one exchange; the transform, if any, is destroyed unless kept. */
function exchange(x: Exchange = {}, keep = false): { draft: FakeDraft; body: Transform | undefined } {
  const filter = create(schema.parse(x.options ?? true), TEST_ENV)
  const draft = new FakeDraft(x.status ?? 200, x.headers ?? { 'content-type': 'text/html', 'content-length': '5000' })
  const ctx = context('accept' in x ? x.accept : 'gzip', x.method ?? 'GET', x.protocol ?? 'http/1.1')
  const body = filter.responseBody!(ctx, draft)
  if (!keep) body?.destroy()
  return { draft, body }
}

/** The exchange was left exactly as it came: no transform, no header changed. */
function assertUntouched(x: Exchange): void {
  const before = new FakeDraft(x.status ?? 200, x.headers ?? {})
  const { draft, body } = exchange(x)
  assert.equal(body, undefined)
  assert.deepEqual(draft.lines, before.lines)
}

const all = [...ENCODINGS] as Encoding[]
const withoutZstd: Encoding[] = ['br', 'gzip']

describe('chooseEncoding', () => {
  const table: [header: string | undefined, offered: Encoding[], expected: Encoding | undefined][] = [
    [undefined, all, undefined],
    ['', all, undefined],
    ['gzip', all, 'gzip'],
    ['gzip, deflate, br, zstd', all, 'zstd'],
    ['gzip, deflate, br, zstd', withoutZstd, 'br'],
    ['gzip, deflate, br', all, 'br'],
    ['gzip, br', ['gzip', 'br'], 'gzip'],
    ['br;q=0.5, gzip', all, 'gzip'],
    ['br;q=0.9, gzip;q=0.8, *;q=0.1', all, 'br'],
    ['gzip;q=0.001', all, 'gzip'],
    ['gzip;q=0', all, undefined],
    ['gzip;q=0.000', all, undefined],
    ['deflate', all, undefined],
    ['*', all, 'zstd'],
    ['*', withoutZstd, 'br'],
    ['*;q=0', all, undefined],
    ['gzip;q=0, *', withoutZstd, 'br'],
    ['br;q=0, zstd;q=0, *;q=0.5', all, 'gzip'],
    ['*, gzip;q=0', ['gzip'], undefined],
    ['*;q=0, gzip', all, 'gzip'],
    ['*;q=0.2, gzip;q=0.5', all, 'gzip'],
    ['identity', all, undefined],
    ['identity;q=0', all, undefined],
    ['identity;q=0, gzip;q=0.1', all, 'gzip'],
    ['GZIP', all, 'gzip'],
    ['Br;Q=0.8, GZip;q=0.9', all, 'gzip'],
    ['  gzip ; q=0.9 ,  br ; q=1 ', all, 'br'],
    ['x-gzip', all, 'gzip'],
    ['br;level=5;q=0.1, gzip;q=0.05', all, 'br'],
    ['gzip;q=0, gzip', all, undefined],
    // Malformed: skipped or clamped, never thrown on.
    [',,; ;,', all, undefined],
    ['gzip;q=abc', all, undefined],
    ['gzip;q=', all, undefined],
    ['gzip;q=abc, br;q=0.1', all, 'br'],
    ['gzip;q=2', all, 'gzip'],
    ['gzip;q=-1', all, undefined],
    ['gzip;q', all, 'gzip'],
    ['=;q=1', all, undefined],
    ['gz\u00efp, \u0000br', all, undefined],
    [`${'x, '.repeat(2000)}gzip`, all, 'gzip'],
  ]
  for (const [header, offered, expected] of table)
    it(`${JSON.stringify(header)?.slice(0, 60)} of [${offered}] → ${expected}`, () => {
      assert.equal(chooseEncoding(header, offered), expected)
    })
})

describe('compress config', () => {
  it('takes true, false and an object, filling the defaults', () => {
    assert.equal(schema.parse(true), true)
    assert.equal(schema.parse(false), false)
    assert.deepEqual(schema.parse({}), DEFAULT_OPTIONS)
    assert.deepEqual(DEFAULT_OPTIONS, {
      encodings: ['zstd', 'br', 'gzip'],
      types: [...DEFAULT_TYPES],
      minSize: DEFAULT_MIN_SIZE,
    })
  })

  it('accepts zstd whatever this Node has, and type wildcards', () => {
    assert.deepEqual(schema.parse({ encodings: ['zstd'] }), { ...DEFAULT_OPTIONS, encodings: ['zstd'] })
    const types = ['text/*', 'application/*+json', '*/*', 'Application/JSON', 'application/vnd.api+json']
    assert.deepEqual(schema.parse({ types }), { ...DEFAULT_OPTIONS, types })
  })

  it('rejects what it cannot honour', () => {
    for (const bad of [
      { encodings: ['deflate'] },
      { encodings: [] },
      { types: ['text'] },
      { types: ['text/html; charset=utf-8'] },
      { types: ['*/html'] },
      { types: [] },
      { minSize: -1 },
      { minSize: 1.5 },
      { level: 5 },
      'yes',
    ])
      assert.equal(schema.safeParse(bad).success, false, JSON.stringify(bad))
  })

  it('exports as JSON Schema with its descriptions', () => {
    const json = JSON.stringify(z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }))
    for (const key of ['encodings', 'types', 'minSize', 'Node 22.15']) assert.ok(json.includes(key), key)
  })

  it('false gives a filter that does nothing', () => {
    const filter = create(false, TEST_ENV)
    assert.equal(filter.name, 'compress')
    assert.equal(filter.responseBody, undefined)
  })

  it('compiles its options once: later changes to the input do not reach it', () => {
    const options = schema.parse({ encodings: ['gzip'], types: ['text/html'] })
    assert.ok(options !== true && options !== false)
    const filter = create(options, TEST_ENV)
    options.encodings.splice(0, 1, 'br')
    options.types.splice(0, 1, 'image/png')
    const draft = new FakeDraft(200, { 'content-type': 'text/html' })
    const body = filter.responseBody!(context('gzip, br', 'GET', 'http/1.1'), draft)
    assert.ok(body)
    body.destroy()
    assert.equal(draft.header('content-encoding'), 'gzip')
  })
})

describe('compress head rules', () => {
  it('compresses: Content-Encoding set, Content-Length and Accept-Ranges removed, Vary added', () => {
    const { draft, body } = exchange({
      headers: { 'Content-Type': 'text/html', 'Content-Length': '5000', 'Accept-Ranges': 'bytes' },
    })
    assert.ok(body)
    assert.equal(draft.header('content-encoding'), 'gzip')
    assert.equal(draft.header('content-length'), undefined)
    assert.equal(draft.header('accept-ranges'), undefined)
    assert.deepEqual(draft.all('vary'), ['Accept-Encoding'])
  })

  it('leaves responses that are already encoded', () => {
    assertUntouched({ headers: { 'content-type': 'text/html', 'content-encoding': 'br' } })
    assertUntouched({ headers: { 'content-type': 'text/html', 'content-encoding': 'GZIP' } })
  })

  it('treats Content-Encoding: identity as not encoded, and replaces it', () => {
    const { draft, body } = exchange({ headers: { 'content-type': 'text/html', 'content-encoding': 'identity' } })
    assert.ok(body)
    assert.deepEqual(draft.all('content-encoding'), ['gzip'])
  })

  it('leaves Cache-Control: no-transform', () => {
    assertUntouched({ headers: { 'content-type': 'text/html', 'cache-control': 'public, No-Transform, max-age=60' } })
    const { body } = exchange({ headers: { 'content-type': 'text/html', 'cache-control': 'public, max-age=60' } })
    assert.ok(body)
  })

  it('leaves ranges: 206, and any Content-Range', () => {
    assertUntouched({ status: 206, headers: { 'content-type': 'text/html', 'content-range': 'bytes 0-99/5000' } })
    assertUntouched({ status: 206, headers: { 'content-type': 'text/html' } })
    assertUntouched({ status: 200, headers: { 'content-type': 'text/html', 'content-range': 'bytes 0-99/5000' } })
  })

  it('leaves HEAD requests and responses without content (1xx, 204, 205, 304)', () => {
    assertUntouched({ method: 'HEAD', headers: { 'content-type': 'text/html', 'content-length': '5000' } })
    for (const status of [101, 103, 204, 205, 304])
      assertUntouched({ status, headers: { 'content-type': 'text/html', etag: '"x"' } })
  })

  it('compresses other statuses with content: 201, 404, 500', () => {
    for (const status of [201, 404, 500]) assert.ok(exchange({ status, headers: { 'content-type': 'text/html' } }).body)
  })

  it('compares Content-Type without parameters, ignoring case', () => {
    for (const type of ['text/html; charset=utf-8', 'TEXT/HTML', ' text/html ;charset="utf-8"', 'Application/JSON'])
      assert.ok(exchange({ headers: { 'content-type': type } }).body, type)
  })

  it('default types: text/*, +json and +xml suffixes, JavaScript, SVG, wasm; not images or archives', () => {
    const yes = [
      'text/css',
      'text/csv',
      'text/event-stream',
      'application/problem+json',
      'application/vnd.api+json',
      'application/atom+xml',
      'application/javascript',
      'application/wasm',
      'image/svg+xml',
    ]
    for (const type of yes) assert.ok(exchange({ headers: { 'content-type': type } }).body, type)
    for (const type of ['image/png', 'application/zip', 'application/octet-stream', 'font/woff2', 'application/+json'])
      assertUntouched({ headers: { 'content-type': type } })
    assertUntouched({ headers: { 'content-length': '5000' } })
  })

  it('configured types replace the defaults; */* matches everything', () => {
    const options = { types: ['text/*'] }
    assert.ok(exchange({ options, headers: { 'content-type': 'text/plain' } }).body)
    assertUntouched({ options, headers: { 'content-type': 'application/json' } })
    assert.ok(exchange({ options: { types: ['*/*'] }, headers: { 'content-type': 'image/png' } }).body)
    assert.ok(
      exchange({ options: { types: ['Application/*+JSON'] }, headers: { 'content-type': 'application/ld+json' } }).body,
    )
  })

  it('minSize: a known length below it is left; an unknown length is compressed', () => {
    assertUntouched({ headers: { 'content-type': 'text/html', 'content-length': '1023' } })
    assert.ok(exchange({ headers: { 'content-type': 'text/html', 'content-length': '1024' } }).body)
    assert.ok(exchange({ headers: { 'content-type': 'text/html' } }).body)
    assertUntouched({ options: { minSize: 100 }, headers: { 'content-type': 'text/html', 'content-length': '99' } })
    assert.ok(
      exchange({ options: { minSize: 100 }, headers: { 'content-type': 'text/html', 'content-length': '100' } }).body,
    )
  })

  it('merges Vary: adds Accept-Encoding once, keeps other values, leaves Vary: *', () => {
    const vary = (value: string | string[]) =>
      exchange({ headers: { 'content-type': 'text/html', vary: value } }).draft.all('vary')
    assert.deepEqual(vary('Origin'), ['Origin', 'Accept-Encoding'])
    assert.deepEqual(vary('Origin, accept-encoding'), ['Origin, accept-encoding'])
    assert.deepEqual(vary('ACCEPT-ENCODING'), ['ACCEPT-ENCODING'])
    assert.deepEqual(vary('*'), ['*'])
    assert.deepEqual(vary(''), ['Accept-Encoding'])
    assert.deepEqual(vary(['Origin', 'Cookie']), ['Origin', 'Cookie', 'Accept-Encoding'])
  })

  it('weakens a strong ETag, keeps a weak one, drops a malformed one', () => {
    const etag = (value: string) =>
      exchange({ headers: { 'content-type': 'text/html', etag: value } }).draft.all('etag')
    assert.deepEqual(etag('"abc"'), ['W/"abc"'])
    assert.deepEqual(etag('W/"abc"'), ['W/"abc"'])
    assert.deepEqual(etag('abc'), [])
  })

  it('not compressed only because of the client: Vary added, nothing else changes', () => {
    const headers = { 'content-type': 'text/html', 'content-length': '5000', etag: '"abc"' }
    for (const x of [
      { accept: undefined },
      { accept: 'identity' },
      { accept: 'gzip;q=0' },
      { accept: 'br', options: { encodings: ['gzip'] as Encoding[] } },
      { accept: 'gzip', protocol: 'http/1.0' as const },
    ]) {
      const { draft, body } = exchange({ ...x, headers })
      assert.equal(body, undefined, JSON.stringify(x))
      assert.deepEqual(draft.lines, [...Object.entries(headers), ['vary', 'Accept-Encoding']], JSON.stringify(x))
    }
  })

  it('not compressed because of the response: no Vary either', () => {
    assertUntouched({ accept: undefined, headers: { 'content-type': 'image/png' } })
    assertUntouched({ accept: 'gzip', headers: { 'content-type': 'text/html', 'content-length': '10' } })
  })

  it('follows the configured preference among codings the client accepts equally', () => {
    const pick = (encodings: Encoding[], accept: string) =>
      exchange({ options: { encodings }, accept, headers: { 'content-type': 'text/html' } }).draft.header(
        'content-encoding',
      )
    assert.equal(pick(['gzip', 'br'], 'br, gzip'), 'gzip')
    assert.equal(pick(['br', 'gzip'], 'br, gzip'), 'br')
    assert.equal(pick(['br', 'gzip'], 'br;q=0.5, gzip'), 'gzip')
    assert.equal(pick(['zstd', 'gzip'], 'zstd, gzip'), ZSTD_AVAILABLE ? 'zstd' : 'gzip')
    assert.equal(pick(['zstd'], 'zstd'), ZSTD_AVAILABLE ? 'zstd' : undefined)
  })
})

/** A compressing transform from the filter for `encoding`, and the matching decompressor. */
function pair(encoding: Encoding, headers: Record<string, string> = { 'content-type': 'text/plain' }) {
  const { draft, body } = exchange({ options: { encodings: [encoding] }, accept: encoding, headers }, true)
  assert.ok(body, `no transform for ${encoding}`)
  assert.equal(draft.header('content-encoding'), encoding)
  return { compress: body, decompress: decompressor(encoding) }
}

function decompressor(encoding: Encoding): Transform {
  if (encoding === 'gzip') return zlib.createGunzip()
  if (encoding === 'br') return zlib.createBrotliDecompress()
  return (zlib as unknown as { createZstdDecompress(): Transform }).createZstdDecompress()
}

/** Resolves once `received()` reaches `bytes`; throws after `timeoutMs`. */
async function until(received: () => number, bytes: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (received() < bytes) {
    if (Date.now() > deadline) throw new Error(`${received()} of ${bytes} bytes came out of the compressor`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** Deterministic text of words, compressible about 3:1, in `chunk`-byte pieces. */
function* text(total: number, chunk: number): Generator<Buffer> {
  const words = ['upstream', 'listener', 'backend', 'route', 'pool', 'health', 'retry', 'drain', 'sticky', 'weight']
  let seed = 1
  for (let sent = 0; sent < total; sent += chunk) {
    let s = ''
    while (s.length < chunk) {
      seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
      s += `${words[seed % 10]}${seed % 7 === 0 ? '\n' : ' '}${seed % 1000} `
    }
    yield Buffer.from(s.slice(0, Math.min(chunk, total - sent)))
  }
}

describe('compress streaming', () => {
  for (const encoding of ENCODINGS) {
    const skip = encoding === 'zstd' && !ZSTD_AVAILABLE ? 'zstd is not in this Node.js zlib' : false

    it(`${encoding}: chunks decompress to the original bytes`, { skip }, async () => {
      const { compress } = pair(encoding)
      const chunks = [...text(300_000, 7_001), Buffer.from('{"end":true}\n'), Buffer.alloc(0)]
      const out: Buffer[] = []
      compress.on('data', (c: Buffer) => out.push(c))
      const done = new Promise((resolve, reject) => compress.on('end', resolve).on('error', reject))
      for (const c of chunks) compress.write(c)
      compress.end()
      await done
      const compressed = Buffer.concat(out)
      assert.ok(compressed.length < 300_000 / 2, `${compressed.length} bytes: not compressed`)
      const decompressed = await collect(Readable.from([compressed]).pipe(decompressor(encoding)))
      assert.ok(decompressed.equals(Buffer.concat(chunks)))
    })

    it(`${encoding}: each chunk is flushed out before the next one comes, and before the end`, { skip }, async () => {
      const { compress, decompress } = pair(encoding, { 'content-type': 'text/event-stream' })
      const plain: Buffer[] = []
      compress.pipe(decompress).on('data', (c: Buffer) => plain.push(c))
      const received = () => plain.reduce((n, c) => n + c.length, 0)
      const events = ['data: {"n":1}\n\n', 'data: {"n":2,"text":"a slightly longer event"}\n\n', 'data: {"n":3}\n\n']
      let expected = 0
      for (const event of events) {
        compress.write(event)
        expected += event.length
        await until(received, expected, 2000)
        assert.equal(Buffer.concat(plain).toString(), events.slice(0, events.indexOf(event) + 1).join(''))
      }
      assert.equal(compress.writableEnded, false)
      compress.end()
      await new Promise((r) => decompress.on('end', r))
      assert.equal(Buffer.concat(plain).toString(), events.join(''))
    })

    it(`${encoding}: an 8 MiB body streams with backpressure, buffering a bounded amount`, { skip }, async () => {
      const total = 8 * 1024 * 1024
      const { compress } = pair(encoding)
      const hashIn = createHash('sha256')
      const source = Readable.from(
        (function* () {
          for (const c of text(total, 64 * 1024)) {
            hashIn.update(c)
            yield c
          }
        })(),
      )
      let sawFalse = false
      const write = compress.write.bind(compress) as (chunk: Buffer) => boolean
      compress.write = ((chunk: Buffer) => {
        const ok = write(chunk)
        if (!ok) sawFalse = true
        return ok
      }) as typeof compress.write
      let peak = 0
      const sample = () => {
        peak = Math.max(peak, compress.writableLength + compress.readableLength + source.readableLength)
      }
      source.on('data', sample)
      const out: Buffer[] = []
      let writes = 0
      const slow = new Writable({
        highWaterMark: 16 * 1024,
        write(chunk: Buffer, _encoding, callback) {
          out.push(chunk)
          sample()
          // Slower than the compressor: every fourth write waits for a timer.
          if (++writes % 4 === 0) setTimeout(callback, 1)
          else setImmediate(callback)
        },
      })
      await pipeline(source, compress, slow)
      assert.ok(sawFalse, 'write() never returned false: no backpressure reached the source')
      assert.ok(peak < 1024 * 1024, `peak buffered ${peak} bytes`)
      const plain = await collect(Readable.from(out).pipe(decompressor(encoding)))
      assert.equal(plain.length, total)
      assert.equal(createHash('sha256').update(plain).digest('hex'), hashIn.digest('hex'))
    })
  }
})

async function collect(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const c of stream) parts.push(c as Buffer)
  return Buffer.concat(parts)
}
