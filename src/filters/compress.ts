/**
 * The `compress` route rule: compresses response bodies with zstd, brotli or gzip, as the client's
 * Accept-Encoding allows (RFC 9110 §12.5.3), for the configured content types. It works in the
 * `responseBody` phase: it rewrites the head (Content-Encoding, Content-Length, Vary, ETag) and returns
 * a zlib Transform that the body streams through, flushed after every upstream chunk so that event
 * streams and other slow responses keep flowing. The options are compiled once, in `create()`.
 */
import type { Transform } from 'node:stream'
import zlib from 'node:zlib'
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter, FilterContext, ResponseDraft } from './types.js'

/** The content codings this filter can produce, by their Accept-Encoding token. */
export const ENCODINGS = ['zstd', 'br', 'gzip'] as const
export type Encoding = (typeof ENCODINGS)[number]

type ZstdFactory = (options: { flush?: number; params?: Record<number, number> }) => Transform
const createZstd = (zlib as unknown as { createZstdCompress?: ZstdFactory }).createZstdCompress
/** The running Node's zlib has zstd (Node 22.15+, 23.8+). Without it `zstd` is never chosen. */
export const ZSTD_AVAILABLE = typeof createZstd === 'function'

/**
 * Compressed by default: text of every kind (HTML, CSS, JavaScript, plain, CSV, XML, event streams),
 * JSON and XML with their `+json`/`+xml` suffix types, JavaScript, SVG and WebAssembly. Images, video,
 * fonts in WOFF/WOFF2 and archives are already compressed and are left out.
 */
export const DEFAULT_TYPES = [
  'text/*',
  'application/json',
  'application/*+json',
  'application/x-ndjson',
  'application/javascript',
  'application/xml',
  'application/*+xml',
  'application/wasm',
  'image/svg+xml',
] as const

/** Bodies with a known length below this many bytes are sent as they are. */
export const DEFAULT_MIN_SIZE = 1024

/**
 * Levels for compressing on the fly, where every response pays the CPU (measured in docs/compression.md):
 * gzip 5 is within 2% of level 6's size at less CPU; brotli 4 and zstd 3 cost about what gzip 5 does.
 */
const GZIP_LEVEL = 5
const BROTLI_QUALITY = 4
/** Brotli window: 2^18 = 256 KiB per stream (Envoy's default), instead of 4 MiB. */
const BROTLI_LGWIN = 18
const ZSTD_LEVEL = 3

const TOKEN = "[a-z0-9!#$&^_.+'~-]+"
const TYPE_PATTERN = new RegExp(`^(\\*/\\*|${TOKEN}/(\\*|\\*\\+${TOKEN}|${TOKEN}))$`, 'i')

const optionsSchema = z.strictObject({
  encodings: z
    .array(z.enum(ENCODINGS))
    .min(1)
    .default([...ENCODINGS])
    .describe(
      'Content codings to offer, most preferred first; a client that accepts several equally gets the first. `zstd` needs Node 22.15+ or 23.8+ and is skipped on older versions (a config naming it is still valid). Levels: zstd 3, brotli quality 4, gzip 5. Default: `[zstd, br, gzip]`, the order of least CPU for the same size on the bodies measured in docs/compression.md.',
    ),
  types: z
    .array(
      z
        .string()
        .regex(TYPE_PATTERN, { error: 'expected a media type such as text/html, text/* or application/*+json' }),
    )
    .min(1)
    .default([...DEFAULT_TYPES])
    .describe(
      'Media types to compress, compared with the Content-Type without its parameters, ignoring case. `text/*` matches a whole type, `application/*+json` a suffix, `*/*` everything. A response without a Content-Type is not compressed.',
    ),
  minSize: z
    .number()
    .int()
    .min(0)
    .default(DEFAULT_MIN_SIZE)
    .describe(
      'Bodies whose Content-Length is below this many bytes are not compressed (below 1 KiB the saving is a few hundred bytes for the CPU of a compressor). Bodies of unknown length (chunked) are compressed.',
    ),
})

export type CompressOptions = z.output<typeof optionsSchema>

export const schema = z
  .union([z.boolean(), optionsSchema])
  .describe(
    'Compress responses for clients that accept it: `true` for the defaults, or an object with `encodings`, `types` and `minSize`. `false`: off. See docs/compression.md.',
  )

/** The defaults that `compress: true` stands for. */
export const DEFAULT_OPTIONS: CompressOptions = optionsSchema.parse({})

/**
 * The coding to use for a request's Accept-Encoding among `offered` (lower-case, most preferred first),
 * or undefined when the client accepts none of them (or sent no header). RFC 9110 §12.5.3: the highest
 * q-value wins, `q=0` forbids, `*` stands for every coding not listed, tokens ignore case, `x-gzip`
 * means `gzip`; ties go to the earlier entry of `offered`. Malformed elements are skipped, never thrown
 * on; a token listed twice counts the first time.
 */
export function chooseEncoding<T extends string>(
  acceptEncoding: string | undefined,
  offered: readonly T[],
): T | undefined {
  if (acceptEncoding === undefined) return undefined
  const q: (number | undefined)[] = new Array(offered.length)
  let star: number | undefined
  let start = 0
  const length = acceptEncoding.length
  while (start < length) {
    let end = acceptEncoding.indexOf(',', start)
    if (end === -1) end = length
    const element = acceptEncoding.slice(start, end)
    start = end + 1
    const semi = element.indexOf(';')
    let token = (semi === -1 ? element : element.slice(0, semi)).trim().toLowerCase()
    if (token === '') continue
    if (token === 'x-gzip') token = 'gzip'
    const weight = semi === -1 ? 1 : qValue(element.slice(semi + 1))
    if (weight === undefined) continue
    if (token === '*') {
      star ??= weight
      continue
    }
    const index = offered.indexOf(token as T)
    if (index !== -1 && q[index] === undefined) q[index] = weight
  }
  let best: T | undefined
  let bestQ = 0
  for (let i = 0; i < offered.length; i++) {
    const weight = q[i] ?? star ?? 0
    if (weight > bestQ) {
      bestQ = weight
      best = offered[i]
    }
  }
  return best
}

/** The `q` of an element's parameters (`;q=0.5;...`), 1 when absent, clamped to 0..1; undefined when malformed. */
function qValue(params: string): number | undefined {
  let start = 0
  while (start < params.length) {
    let end = params.indexOf(';', start)
    if (end === -1) end = params.length
    const eq = params.indexOf('=', start)
    if (eq !== -1 && eq < end && params.slice(start, eq).trim().toLowerCase() === 'q') {
      const text = params.slice(eq + 1, end).trim()
      const value = text === '' ? Number.NaN : Number(text)
      return Number.isNaN(value) ? undefined : Math.min(1, Math.max(0, value))
    }
    start = end + 1
  }
  return 1
}

type TypeMatcher = (mediaType: string) => boolean

/** Compiles `types` into one test of a lower-case media type (no parameters). */
function compileTypes(types: readonly string[]): TypeMatcher {
  const exact = new Set<string>()
  const prefixes: string[] = []
  const suffixes: [prefix: string, suffix: string][] = []
  let any = false
  for (const raw of types) {
    const type = raw.toLowerCase()
    if (type === '*/*') any = true
    else if (type.endsWith('/*')) prefixes.push(type.slice(0, -1))
    else if (type.includes('/*+')) {
      const slash = type.indexOf('/')
      suffixes.push([type.slice(0, slash + 1), type.slice(slash + 2)])
    } else exact.add(type)
  }
  if (any) return () => true
  return (mediaType) => {
    if (exact.has(mediaType)) return true
    for (const prefix of prefixes) if (mediaType.startsWith(prefix)) return true
    for (const [prefix, suffix] of suffixes)
      if (
        mediaType.startsWith(prefix) &&
        mediaType.endsWith(suffix) &&
        mediaType.length > prefix.length + suffix.length
      )
        return true
    return false
  }
}

/** `Content-Type` without parameters, trimmed, lower-case. */
function mediaTypeOf(contentType: string): string {
  const semi = contentType.indexOf(';')
  return (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase()
}

/** A comma-separated header value lists `token` (lower-case), ignoring case and spaces. */
function listsToken(value: string, token: string): boolean {
  const lower = value.toLowerCase()
  if (!lower.includes(token)) return false
  return lower.split(',').some((item) => item.trim() === token)
}

/** Statuses whose responses have no content (or, for 206, a part that must not be re-encoded). */
function bodyless(status: number): boolean {
  return status < 200 || status === 204 || status === 205 || status === 206 || status === 304
}

/** The Content-Length as a number, or undefined when absent or not a plain decimal. */
function contentLengthOf(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const text = value.trim()
  return /^\d+$/.test(text) ? Number(text) : undefined
}

/**
 * Adds `Accept-Encoding` to Vary unless it is listed already or Vary is `*`. `ResponseDraft.header()`
 * shows only the first Vary value, so the token goes in as a value of its own (`addHeader`), which keeps
 * any further Vary lines: `Vary: Origin` + `Vary: Accept-Encoding` means the same as one merged line.
 */
function addVary(response: ResponseDraft): void {
  const vary = response.header('vary')
  if (vary === undefined || vary.trim() === '') response.setHeader('vary', 'Accept-Encoding')
  else if (!listsToken(vary, 'accept-encoding') && !listsToken(vary, '*')) response.addHeader('vary', 'Accept-Encoding')
}

/** A strong ETag becomes weak (`"x"` → `W/"x"`), as the compressed bytes differ; a malformed one is removed (nginx). */
function weakenEtag(response: ResponseDraft): void {
  const etag = response.header('etag')
  if (etag === undefined) return
  const text = etag.trim()
  if (text.startsWith('W/')) return
  if (text.startsWith('"')) response.setHeader('etag', `W/${text}`)
  else response.removeHeader('etag')
}

const Z = zlib.constants
const ZSTD_C_LEVEL = (Z as unknown as Record<string, number>).ZSTD_c_compressionLevel ?? 100
const ZSTD_E_FLUSH = (Z as unknown as Record<string, number>).ZSTD_e_flush ?? 1

/**
 * The compressor for one response. Every write is flushed (Z_SYNC_FLUSH / BROTLI_OPERATION_FLUSH /
 * ZSTD_e_flush), so each upstream chunk leaves compressed before the next arrives; `length`, when
 * known, sizes brotli's buffers.
 */
export function compressor(encoding: Encoding, length: number | undefined): Transform {
  switch (encoding) {
    case 'gzip':
      return zlib.createGzip({ level: GZIP_LEVEL, flush: Z.Z_SYNC_FLUSH })
    case 'br': {
      const params: Record<number, number> = {
        [Z.BROTLI_PARAM_QUALITY]: BROTLI_QUALITY,
        [Z.BROTLI_PARAM_LGWIN]: BROTLI_LGWIN,
      }
      if (length !== undefined) params[Z.BROTLI_PARAM_SIZE_HINT] = length
      return zlib.createBrotliCompress({ flush: Z.BROTLI_OPERATION_FLUSH, params })
    }
    case 'zstd':
      if (createZstd === undefined) throw new Error('zstd is not available in this Node.js')
      return createZstd({ flush: ZSTD_E_FLUSH, params: { [ZSTD_C_LEVEL]: ZSTD_LEVEL } })
    default: {
      const unknown: never = encoding
      throw new Error(`unknown encoding ${String(unknown)}`)
    }
  }
}

/**
 * Builds the filter. `options` is the route's `compress` value as parsed by `schema` (plain JSON: it may
 * have crossed to a worker). `false` gives a filter with no hooks.
 */
export function create(options: z.output<typeof schema>, _env: FilterEnv): Filter {
  if (options === false) return { name: 'compress' }
  const { encodings, types, minSize } = options === true ? DEFAULT_OPTIONS : options
  const offered: readonly Encoding[] = [...new Set(encodings)].filter((e) => e !== 'zstd' || ZSTD_AVAILABLE)
  const compressible = compileTypes(types)

  return {
    name: 'compress',
    responseBody(ctx: FilterContext, response: ResponseDraft): Transform | undefined {
      // What the response itself rules out: then it never varies by Accept-Encoding.
      if (ctx.request.method === 'HEAD' || bodyless(response.status)) return undefined
      const encoded = response.header('content-encoding')
      if (encoded !== undefined && encoded.trim() !== '' && encoded.trim().toLowerCase() !== 'identity')
        return undefined
      if (response.header('content-range') !== undefined) return undefined
      const cacheControl = response.header('cache-control')
      if (cacheControl !== undefined && listsToken(cacheControl, 'no-transform')) return undefined
      const contentType = response.header('content-type')
      if (contentType === undefined || !compressible(mediaTypeOf(contentType))) return undefined
      const length = contentLengthOf(response.header('content-length'))
      if (length !== undefined && length < minSize) return undefined

      // Compressible: whatever this client accepts, caches must key on Accept-Encoding (nginx gzip_vary).
      addVary(response)
      // HTTP/1.0 has no chunked framing: a compressed body would end the connection (nginx gzip_http_version).
      if (ctx.request.protocol === 'http/1.0' || offered.length === 0) return undefined
      const encoding = chooseEncoding(ctx.request.header('accept-encoding'), offered)
      if (encoding === undefined) return undefined

      response.setHeader('content-encoding', encoding)
      response.removeHeader('content-length')
      // A range of the compressed body cannot be served from the upstream's ranges (nginx drops it too).
      response.removeHeader('accept-ranges')
      weakenEtag(response)
      return compressor(encoding, length)
    },
  }
}
