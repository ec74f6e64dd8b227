// Which llhttp the native engine should parse with: Node's own binding (src/http1/parser.ts, reached
// through the private `_http_common` module) or the public route, the WebAssembly build of llhttp that
// undici ships (`undici/lib/llhttp/llhttp_simd-wasm.js`, else the plain wasm). The rule: prefer
// the public route if it costs less than 10% more. Both parse the same messages the same way here
// (head fields handed over as latin1 strings, a Content-Length body stopped after the head so that the
// caller slices it), interleaved A B A B, and the median round's ns per message is reported.
// Usage: npm run bench:parser [-- --rounds N --iterations N]
import { createRequire } from 'node:module'
import { parseArgs } from 'node:util'
import { BODY_SELF, Http1Parser } from '../src/http1/parser.js'
import { BROWSER_REQUEST } from './lib/browser-request.js'

const { values } = parseArgs({
  options: { rounds: { type: 'string', default: '9' }, iterations: { type: 'string', default: '200000' } },
})
const ROUNDS = Number(values.rounds)
const ITERATIONS = Number(values.iterations)

function requestText(): Buffer {
  let text = 'GET /catalog/item?id=42 HTTP/1.1\r\n'
  for (let i = 0; i < BROWSER_REQUEST.length; i += 2) text += `${BROWSER_REQUEST[i]}: ${BROWSER_REQUEST[i + 1]}\r\n`
  return Buffer.from(`${text}\r\n`, 'latin1')
}

const RESPONSE = Buffer.from(
  'HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 24 Nov 2026 16:00:00 GMT\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: 100\r\nConnection: keep-alive\r\nCache-Control: no-cache\r\nETag: "64f1-64"\r\n\r\n' +
    'x'.repeat(100),
  'latin1',
)
const REQUEST = requestText()

/** What both parsers produce per message, kept observable so that nothing is optimised away. */
let sink = 0

function nativeParse(kind: 'request' | 'response', message: Buffer): () => void {
  const parser = new Http1Parser(kind, {
    onHead(head) {
      sink += head.rawHeaders.length + head.url.length + head.status
      return BODY_SELF
    },
    onBody() {},
    onComplete() {},
  })
  return () => {
    const n = parser.execute(message)
    if (typeof n !== 'number') throw n
    sink += n
    parser.reset()
  }
}

/** The slice of the WebAssembly API this bench uses (the project's TypeScript lib has no DOM types). */
declare const WebAssembly: {
  Module: new (bytes: Buffer) => object
  Instance: new (module: object, imports: object) => { readonly exports: unknown }
}

interface Wasm {
  readonly memory: { readonly buffer: ArrayBuffer }
  llhttp_alloc(type: number): number
  llhttp_init?(parser: number, type: number, settings: number): void
  llhttp_reset(parser: number): void
  llhttp_execute(parser: number, data: number, len: number): number
  llhttp_get_error_pos(parser: number): number
  llhttp_get_method(parser: number): number
  malloc(size: number): number
}

const PAUSED_UPGRADE = 22

/** undici's wasm llhttp, with callbacks that build what the native binding hands over. */
function wasmParse(kind: 'request' | 'response', message: Buffer): () => void {
  const require = createRequire(import.meta.url)
  let module: object
  try {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp_simd-wasm.js') as Buffer)
  } catch {
    module = new WebAssembly.Module(require('undici/lib/llhttp/llhttp-wasm.js') as Buffer)
  }
  let base = 0
  let current = message
  let headers: string[] = []
  let url = ''
  let field = ''
  const text = (at: number, len: number) => current.toString('latin1', at - base, at - base + len)
  const instance = new WebAssembly.Instance(module, {
    env: {
      wasm_on_url: (_p: number, at: number, len: number) => {
        url += text(at, len)
        return 0
      },
      wasm_on_status: () => 0,
      wasm_on_message_begin: () => 0,
      wasm_on_header_field: (_p: number, at: number, len: number) => {
        field += text(at, len)
        return 0
      },
      wasm_on_header_value: (_p: number, at: number, len: number) => {
        headers.push(field, text(at, len))
        field = ''
        return 0
      },
      wasm_on_headers_complete: (_p: number, status: number) => {
        sink += headers.length + url.length + status
        return 2
      },
      wasm_on_body: () => 0,
      wasm_on_message_complete: () => 0,
    },
  })
  const llhttp = instance.exports as unknown as Wasm
  const parser = llhttp.llhttp_alloc(kind === 'request' ? 1 : 2)
  const size = Math.ceil(message.length / 4096) * 4096
  base = llhttp.malloc(size)
  return () => {
    headers = []
    url = ''
    // The wasm parser reads its own memory: every chunk is copied in first, as undici does.
    new Uint8Array(llhttp.memory.buffer, base, size).set(message)
    current = message
    const ret = llhttp.llhttp_execute(parser, base, message.length)
    if (ret !== PAUSED_UPGRADE) throw new Error(`wasm llhttp: error ${ret}`)
    sink += llhttp.llhttp_get_error_pos(parser) - base
    llhttp.llhttp_reset(parser)
  }
}

function roundNs(run: () => void): number {
  const start = process.hrtime.bigint()
  for (let i = 0; i < ITERATIONS; i++) run()
  return Number(process.hrtime.bigint() - start) / ITERATIONS
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN
}

function compare(name: string, kind: 'request' | 'response', message: Buffer): void {
  const native = nativeParse(kind, message)
  const wasm = wasmParse(kind, message)
  for (let i = 0; i < ITERATIONS / 10; i++) {
    native()
    wasm()
  }
  const a: number[] = []
  const b: number[] = []
  for (let r = 0; r < ROUNDS; r++) {
    a.push(roundNs(native))
    b.push(roundNs(wasm))
  }
  const n = median(a)
  const w = median(b)
  console.log(`| ${name} | ${message.length} B | ${n.toFixed(0)} | ${w.toFixed(0)} | ${(w / n).toFixed(2)}× |`)
}

console.log(`Node ${process.version}, ${ROUNDS} interleaved rounds of ${ITERATIONS} messages, median ns per message`)
console.log('| message | size | node binding (ns) | undici wasm (ns) | wasm / binding |')
console.log('|---|---|---|---|---|')
compare('browser request head (13 headers)', 'request', REQUEST)
compare('response head (7 headers) + 100 B body', 'response', RESPONSE)
if (sink === 0) console.log('(nothing parsed)')
