/**
 * Mutated request heads for the differential framing tests: well-framed base requests, each changed by
 * one to three edits where framing is decided (line ends, separators, digits, `chunked`, header lines).
 * Deterministic: mutant `index` of `seed` is always the same bytes, so a failure is reproduced from
 * the two numbers it is reported with (`mutant(seed, index)`).
 */
import { seeded } from '../../src/balancer/conformance.js'

const H = 'Host: a.test\r\n'
const NEXT = `GET /next HTTP/1.1\r\n${H}\r\n`

/** The requests the mutations start from: each well framed, each exercising one kind of framing. */
export const BASES: readonly { readonly name: string; readonly text: string }[] = [
  { name: 'get', text: `GET /b?q=1 HTTP/1.1\r\n${H}Accept: */*\r\n\r\n` },
  { name: 'post-length', text: `POST /b HTTP/1.1\r\n${H}Content-Length: 5\r\n\r\nhello` },
  {
    name: 'post-chunked',
    text: `POST /b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n`,
  },
  {
    name: 'chunked-ext-trailer',
    text: `PUT /b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n3;e=1\r\nabc\r\n0\r\nX-T: v\r\n\r\n`,
  },
  { name: 'pipelined', text: `GET /a HTTP/1.1\r\n${H}\r\n${NEXT}` },
  { name: 'length-then-next', text: `POST /b HTTP/1.1\r\n${H}Content-Length: 4\r\n\r\nbody${NEXT}` },
  {
    name: 'chunked-then-next',
    text: `POST /b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n${NEXT}`,
  },
  {
    name: 'http10-keepalive',
    text: `POST /b HTTP/1.0\r\n${H}Connection: keep-alive\r\nContent-Length: 3\r\n\r\nabc${NEXT}`,
  },
  { name: 'expect', text: `POST /b HTTP/1.1\r\n${H}Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc` },
  { name: 'zero-length-then-next', text: `POST /b HTTP/1.1\r\n${H}Content-Length: 0\r\n\r\n${NEXT}` },
  { name: 'absolute-form', text: `GET http://a.test/abs HTTP/1.1\r\n${H}\r\n` },
  { name: 'length-body-holds-request', text: `GET /b HTTP/1.1\r\n${H}Content-Length: ${NEXT.length}\r\n\r\n${NEXT}` },
  {
    name: 'chunk-holds-request',
    text: `POST /b HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n${NEXT.length.toString(16)}\r\n${NEXT}\r\n0\r\n\r\n`,
  },
  {
    name: 'both-framings-split',
    text: `POST /b HTTP/1.1\r\n${H}Content-Length: 5\r\nX-Pad: Transfer-Encoding: chunked\r\n\r\nhello`,
  },
]

/** Bytes that decide framing, inserted and substituted. */
const PALETTE = [
  '\r',
  '\n',
  ' ',
  '\t',
  ':',
  ',',
  ';',
  '0',
  '1',
  '5',
  '9',
  'a',
  'f',
  'F',
  'x',
  '-',
  '+',
  '"',
  '\x00',
  '\x01',
  '\x0b',
  '\x0c',
  '\x7f',
  '\x80',
  '\xa0',
  '\xff',
]

/** Strings inserted whole. */
const TOKENS = ['chunked', ', chunked', 'chunked, ', 'identity', ' ', '\r\n', '\r\n\r\n', '0\r\n\r\n', ';x', '00', '\\']

/** Header lines added or that replace a line. */
const LINES = [
  'Content-Length: 0',
  'Content-Length: 3',
  'Content-Length: 5',
  'Content-Length: 05',
  'Content-Length: +5',
  'Content-Length : 5',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: chunked, identity',
  'Transfer-Encoding: identity',
  'Transfer-Encoding : chunked',
  ' Transfer-Encoding: chunked',
  'Transfer-Encoding: xchunked',
  'Transfer-Encoding:\tchunked',
  'Transfer-encoding: CHUNKED',
  'Connection: close',
  'Connection: keep-alive',
  'Expect: 100-continue',
  'Host: b.test',
  'Upgrade: h2c',
]

const VERSIONS = ['HTTP/1.0', 'HTTP/1.1', 'HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.', 'HTTP/11', 'http/1.1']

/** Bytes where framing is decided: line ends, separators, digits and hex digits. */
const FRAMING = new Set([...'\r\n \t:,;0123456789abcdefABCDEF'].map((c) => c.charCodeAt(0)))

export interface Mutant {
  readonly seed: number
  readonly index: number
  readonly base: string
  /** The edits, in the order applied, for the report. */
  readonly ops: readonly string[]
  readonly bytes: Buffer
}

/** A PRNG state per (seed, index), so that any one mutant is made without the ones before it. */
function stateOf(seed: number, index: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0
  h = Math.imul(h ^ index, 0x85ebca6b) >>> 0
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0
  return (h ^ (h >>> 16)) >>> 0
}

/** Mutant `index` of `seed`. */
export function mutant(seed: number, index: number): Mutant {
  const rand = seeded(stateOf(seed, index))
  const int = (n: number) => Math.floor(rand() * n)
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)] as T
  const base = pick(BASES)
  let text = base.text
  const ops: string[] = []

  // A position: mostly next to a byte that decides framing, sometimes anywhere.
  const position = (): number => {
    if (rand() < 0.25 || text.length === 0) return int(text.length + 1)
    const candidates: number[] = []
    for (let i = 0; i < text.length; i++) if (FRAMING.has(text.charCodeAt(i))) candidates.push(i)
    const at = candidates.length > 0 ? pick(candidates) : int(text.length)
    return at + int(2)
  }
  // The header lines of the first head, and what comes after them.
  const headLines = (): { lines: string[]; rest: string } | undefined => {
    const end = text.indexOf('\r\n\r\n')
    if (end < 0) return undefined
    const lines = text.slice(0, end).split('\r\n')
    return { lines, rest: text.slice(end) }
  }
  const withLines = (f: (lines: string[]) => string | undefined): void => {
    const h = headLines()
    if (!h || h.lines.length < 2) return
    const op = f(h.lines)
    if (op === undefined) return
    text = h.lines.join('\r\n') + h.rest
    ops.push(op)
  }

  const count = 1 + int(3)
  for (let n = 0; n < count; n++) {
    const kind = int(12)
    switch (kind) {
      case 0: {
        const at = position()
        const c = pick(PALETTE)
        text = text.slice(0, at) + c + text.slice(at)
        ops.push(`insert ${JSON.stringify(c)} at ${at}`)
        break
      }
      case 1: {
        const at = Math.min(position(), text.length - 1)
        ops.push(`delete ${JSON.stringify(text[at])} at ${at}`)
        text = text.slice(0, at) + text.slice(at + 1)
        break
      }
      case 2: {
        const at = Math.min(position(), text.length - 1)
        ops.push(`duplicate ${JSON.stringify(text[at])} at ${at}`)
        text = text.slice(0, at + 1) + text.slice(at)
        break
      }
      case 3: {
        const at = Math.min(position(), text.length - 1)
        const c = pick(PALETTE)
        ops.push(`replace ${JSON.stringify(text[at])} at ${at} by ${JSON.stringify(c)}`)
        text = text.slice(0, at) + c + text.slice(at + 1)
        break
      }
      case 4: {
        const at = position()
        const t = pick(TOKENS)
        text = text.slice(0, at) + t + text.slice(at)
        ops.push(`insert ${JSON.stringify(t)} at ${at}`)
        break
      }
      case 5:
        withLines((lines) => {
          const i = 1 + int(lines.length - 1)
          const line = lines[i] ?? ''
          const colon = line.indexOf(':')
          if (colon <= 0) return undefined
          const name = line.slice(0, colon)
          const flipped = [...name].map((c) => (rand() < 0.5 ? c.toUpperCase() : c.toLowerCase())).join('')
          lines[i] = flipped + line.slice(colon)
          return `case of ${JSON.stringify(name)} to ${JSON.stringify(flipped)}`
        })
        break
      case 6:
        withLines((lines) => {
          if (lines.length < 3) return undefined
          const i = 1 + int(lines.length - 1)
          const j = 1 + int(lines.length - 1)
          const a = lines[i] ?? ''
          lines[i] = lines[j] ?? ''
          lines[j] = a
          return `swap lines ${i} and ${j}`
        })
        break
      case 7:
        withLines((lines) => {
          // Prefer a framing line: the duplicate Content-Length / Transfer-Encoding cases.
          const framing = lines.findIndex((l) => /^(content-length|transfer-encoding)/i.test(l))
          const i = framing > 0 && rand() < 0.7 ? framing : 1 + int(lines.length - 1)
          lines.splice(i + int(2), 0, lines[i] ?? '')
          return `duplicate line ${i}`
        })
        break
      case 8:
        withLines((lines) => {
          const line = pick(LINES)
          const i = 1 + int(lines.length)
          lines.splice(i, 0, line)
          return `add line ${JSON.stringify(line)} at ${i}`
        })
        break
      case 9:
        withLines((lines) => {
          const i = 1 + int(lines.length - 1)
          const [gone] = lines.splice(i, 1)
          return `drop line ${JSON.stringify(gone)}`
        })
        break
      case 10:
        withLines((lines) => {
          const v = pick(VERSIONS)
          lines[0] = (lines[0] ?? '').replace(/HTTP\/1\.[01]$/, v)
          return `version ${v}`
        })
        break
      case 11: {
        // Rarely: the bytes end early, mid-head or mid-body.
        if (rand() < 0.5) break
        const at = int(text.length)
        text = text.slice(0, at)
        ops.push(`truncate at ${at}`)
        break
      }
      default:
        throw new Error(`no mutation ${kind}`)
    }
  }
  return { seed, index, base: base.name, ops, bytes: Buffer.from(text, 'latin1') }
}

/** `count` mutants of `seed`, from index `from`. */
export function mutants(seed: number, count: number, from = 0): Mutant[] {
  return Array.from({ length: count }, (_, i) => mutant(seed, from + i))
}

/** A mutant as a failure report shows it: enough to reproduce it and to read it. */
export function describeMutant(m: Mutant): string {
  return `seed ${m.seed} index ${m.index} (base ${m.base}; ${m.ops.join('; ')}): ${JSON.stringify(m.bytes.toString('latin1'))}`
}
