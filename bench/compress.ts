// What response compression costs per request, in-process, on the real filter:
// - `chooseEncoding()` on the Accept-Encoding values of current browsers and tools, and the whole
//   `responseBody()` decision on a compressible response (headers only: the transform it returns is
//   destroyed unused), in nanoseconds;
// - compressing a 10 KiB JSON body through the filter's own transform (create, write, end, read all),
//   per encoding, in microseconds of wall and CPU time and as a ratio to gzip's in the same run;
// - the per-chunk flush: a 100 KiB body written in 1, 4 and 16 KiB chunks with the filter's flush
//   against the same compressor without it (size and time ratios).
// Usage: npm run bench:compress

import { once } from 'node:events'
import type { Transform } from 'node:stream'
import zlib from 'node:zlib'
import { silentLogger } from '../src/core/logger.js'
import {
  chooseEncoding,
  compressor,
  create,
  ENCODINGS,
  type Encoding,
  ZSTD_AVAILABLE,
} from '../src/filters/compress.js'
import type { FilterEnv } from '../src/filters/env.js'
import type { FilterContext, ResponseDraft } from '../src/filters/types.js'

const TEST_ENV: FilterEnv = {
  listener: 'test',
  logger: silentLogger(),
  pools: new Map(),
  pathPrefix: undefined,
  level: 'route',
}

const ROUNDS = 7

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}

/** A deterministic JSON document of about `bytes` bytes: records as an API would return them. */
export function jsonBody(bytes: number): Buffer {
  let seed = 42
  const next = () => {
    seed = (seed * 1_103_515_245 + 12_345) & 0x7fffffff
    return seed
  }
  const words = ['alpha', 'bravo', 'charlie', 'delta', 'echo', 'foxtrot', 'golf', 'hotel', 'india', 'juliet']
  const items: object[] = []
  let text = '[]'
  for (let i = 0; text.length < bytes; i++) {
    items.push({
      id: 100_000 + i,
      uuid: next().toString(16).padStart(8, '0') + next().toString(16).padStart(8, '0'),
      name: `${words[next() % 10]} ${words[next() % 10]}`,
      email: `user${next() % 10_000}@example.com`,
      active: next() % 2 === 0,
      score: (next() % 10_000) / 100,
      createdAt: new Date(1_700_000_000_000 + (next() % 1e9)).toISOString(),
      tags: [words[next() % 10], words[next() % 10]],
    })
    text = JSON.stringify(items)
  }
  return Buffer.from(text.slice(0, bytes))
}

const ACCEPT = [
  ['Chrome', 'gzip, deflate, br, zstd'],
  ['Safari', 'gzip, deflate, br'],
  ['curl', 'gzip'],
  ['q-values', 'br;q=0.9, gzip;q=0.8, *;q=0.1, identity;q=0'],
] as const

function nsPerCall(fn: () => unknown, calls: number): number {
  const rounds: number[] = []
  for (let r = 0; r <= ROUNDS; r++) {
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < calls; i++) fn()
    const ns = Number(process.hrtime.bigint() - t0) / calls
    if (r > 0) rounds.push(ns) // round 0 warms up
  }
  return median(rounds)
}

/** Writes `chunks` into `t`, ends it, and resolves with the compressed size. */
async function drain(t: Transform, chunks: readonly Buffer[]): Promise<number> {
  let size = 0
  t.on('data', (c: Buffer) => {
    size += c.length
  })
  for (const c of chunks) if (!t.write(c)) await once(t, 'drain')
  t.end()
  await once(t, 'end')
  return size
}

interface Cost {
  wallUs: number
  cpuUs: number
  size: number
}

/** One timed batch: `bodies` bodies, each through a fresh transform from `make`. */
async function batch(make: () => Transform, chunks: readonly Buffer[], bodies: number): Promise<Cost> {
  let size = 0
  const c0 = process.cpuUsage()
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < bodies; i++) size = await drain(make(), chunks)
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000 / bodies
  const cpu = process.cpuUsage(c0)
  return { wallUs, cpuUs: (cpu.user + cpu.system) / bodies, size }
}

/**
 * The medians of ROUNDS batches of each contender, run in turn within every round (after one warm-up
 * round), so that a change in the machine's load falls on all of them alike.
 */
async function interleaved(makers: readonly (() => Transform)[], chunks: readonly Buffer[], bodies: number) {
  const runs: Cost[][] = makers.map(() => [])
  for (let r = 0; r <= ROUNDS; r++)
    for (const [i, make] of makers.entries()) {
      const cost = await batch(make, chunks, bodies)
      if (r > 0) runs[i]!.push(cost)
    }
  return runs.map(
    (costs): Cost => ({
      wallUs: median(costs.map((c) => c.wallUs)),
      cpuUs: median(costs.map((c) => c.cpuUs)),
      size: costs[0]!.size,
    }),
  )
}

function split(body: Buffer, chunk: number): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < body.length; i += chunk) out.push(body.subarray(i, i + chunk))
  return out
}

/** The same compressor as the filter's, without the per-write flush. */
function unflushed(encoding: Encoding): Transform {
  const Z = zlib.constants
  if (encoding === 'gzip') return zlib.createGzip({ level: 5 })
  if (encoding === 'br')
    return zlib.createBrotliCompress({ params: { [Z.BROTLI_PARAM_QUALITY]: 4, [Z.BROTLI_PARAM_LGWIN]: 18 } })
  const make = (zlib as unknown as { createZstdCompress: (o: object) => Transform }).createZstdCompress
  return make({ params: { [(Z as unknown as Record<string, number>).ZSTD_c_compressionLevel!]: 3 } })
}

const available = ENCODINGS.filter((e) => e !== 'zstd' || ZSTD_AVAILABLE)
const fmt = (n: number, digits = 1) => n.toFixed(digits)

console.log(`Node ${process.version}, ${process.platform}/${process.arch}; zstd ${ZSTD_AVAILABLE ? 'yes' : 'no'}`)
console.log('\nchooseEncoding(header, [zstd, br, gzip])')
console.log('| client | Accept-Encoding | chosen | ns/call |\n|---|---|---|---|')
for (const [client, header] of ACCEPT) {
  const chosen = chooseEncoding(header, available)
  const ns = nsPerCall(() => chooseEncoding(header, available), 1_000_000)
  console.log(`| ${client} | \`${header}\` | ${chosen} | ${fmt(ns, 0)} |`)
}

// The whole header decision, on a fresh draft per call, against building that draft alone.
const filter = create(true, TEST_ENV)
function draft(): ResponseDraft {
  const headers = new Map<string, string>([
    ['content-type', 'application/json; charset=utf-8'],
    ['content-length', '10240'],
    ['etag', '"abc"'],
  ])
  return {
    status: 200,
    header: (n) => headers.get(n.toLowerCase()),
    setHeader: (n, v) => void headers.set(n.toLowerCase(), v),
    addHeader: (n, v) => void headers.set(n.toLowerCase(), v),
    removeHeader: (n) => void headers.delete(n.toLowerCase()),
  }
}
const ctx = (accept: string | undefined) =>
  ({
    request: {
      method: 'GET',
      protocol: 'http/1.1',
      header: (n: string) => (n === 'accept-encoding' ? accept : undefined),
    },
  }) as unknown as FilterContext
const noAccept = ctx(undefined)
const chrome = ctx(ACCEPT[0][1])
const draftNs = nsPerCall(draft, 1_000_000)
const skipNs = nsPerCall(() => filter.responseBody!(noAccept, draft()), 1_000_000)
const chosenNs = nsPerCall(() => filter.responseBody!(chrome, draft())?.destroy(), 2_000)
console.log('\nresponseBody() on a 10 KiB application/json response (the draft is built per call)')
console.log('| case | ns/call |\n|---|---|')
console.log(`| building the draft alone (reference) | ${fmt(draftNs, 0)} |`)
console.log(`| no Accept-Encoding: Vary only | ${fmt(skipNs, 0)} |`)
console.log(`| Chrome: head rewritten, transform created and destroyed | ${fmt(chosenNs, 0)} |`)

const body10k = jsonBody(10 * 1024)
const measured = await interleaved(
  available.map((e) => () => compressor(e, body10k.length)),
  [body10k],
  500,
)
const costs = new Map(available.map((e, i) => [e, measured[i]!]))
const gzip = costs.get('gzip')!
console.log(`\nCompressing a ${body10k.length}-byte JSON body in one chunk, through the filter's transform`)
console.log(
  '| encoding | level | wall µs/body | CPU µs/body | CPU vs gzip | bytes out | ratio |\n|---|---|---|---|---|---|---|',
)
const LEVEL: Record<Encoding, string> = { gzip: '5', br: 'quality 4', zstd: '3' }
for (const [e, c] of costs)
  console.log(
    `| ${e} | ${LEVEL[e as Encoding]} | ${fmt(c.wallUs)} | ${fmt(c.cpuUs)} | ${fmt(c.cpuUs / gzip.cpuUs, 2)} | ${c.size} | ${fmt(body10k.length / c.size, 2)} |`,
  )

const body100k = jsonBody(100 * 1024)
console.log(`\nPer-chunk flush on a ${body100k.length}-byte JSON body: flushed (the filter) vs not flushed`)
console.log(
  '| encoding | chunk | bytes out, flushed | bytes out, not | size ratio | CPU µs, flushed | CPU µs, not | CPU ratio |\n|---|---|---|---|---|---|---|---|',
)
for (const e of available)
  for (const chunk of [1024, 4096, 16_384]) {
    const chunks = split(body100k, chunk)
    const [f, n] = (await interleaved([() => compressor(e, undefined), () => unflushed(e)], chunks, 20)) as [Cost, Cost]
    console.log(
      `| ${e} | ${chunk / 1024} KiB | ${f.size} | ${n.size} | ${fmt(f.size / n.size, 2)} | ${fmt(f.cpuUs, 0)} | ${fmt(n.cpuUs, 0)} | ${fmt(f.cpuUs / n.cpuUs, 2)} |`,
    )
  }
