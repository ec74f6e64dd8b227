/**
 * Request bodies: read whole (small bodies with a known length, so that a retry can send them again),
 * or streamed to the upstream as they arrive. HTTP/2 bodies are counted as they are read, since their
 * bytes share a socket with other streams.
 */
import type { Readable } from 'node:stream'
import type { ClientSide } from './client.js'

/**
 * Reads the client's body whole, then calls `done` with it. An aborted upload calls nothing: the
 * exchange ends through the client's own lifecycle (see ClientSide#watch).
 */
export function readWholeBody(client: ClientSide, done: (body: Buffer) => void): void {
  const chunks: Buffer[] = []
  const body = client.body
  body.on('data', (chunk: Buffer) => chunks.push(chunk))
  body.once('end', () => {
    const whole = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)
    client.countBody(whole.length)
    done(whole)
  })
  body.once('error', () => {})
}

/**
 * The body to stream upstream: the request itself (HTTP/1 with a Content-Length, already checked
 * against the limit), or an iterator that counts it (HTTP/2, whose bytes share a socket; a chunked
 * HTTP/1 body under a limit). `maxBytes` > 0: when the body crosses it, `onOver` runs before the chunk
 * that crosses it is passed on, and the iterator throws, so that the upstream request ends incomplete.
 */
export function streamedBody(
  client: ClientSide,
  maxBytes: number,
  onOver: () => void,
): Readable | AsyncIterable<Buffer> {
  if (client.protocol === 'h2') return countedBody(client, maxBytes, onOver, true)
  return maxBytes > 0 && isChunked(client) ? countedBody(client, maxBytes, onOver, false) : client.body
}

/** An HTTP/1 body with no Content-Length: chunked (the request path refuses any other framing). */
function isChunked(client: ClientSide): boolean {
  const raw = client.rawHeaders
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string
    if (name.length === 14 && name.toLowerCase() === 'content-length') return false
  }
  return true
}

export class BodyTooLarge extends Error {
  override readonly name = 'BodyTooLarge'
}

async function* countedBody(
  client: ClientSide,
  maxBytes: number,
  onOver: () => void,
  h2: boolean,
): AsyncGenerator<Buffer> {
  let seen = 0
  for await (const chunk of client.body as AsyncIterable<Buffer>) {
    seen += chunk.length
    if (maxBytes > 0 && seen > maxBytes) {
      onOver()
      throw new BodyTooLarge(`request body over ${maxBytes} bytes`)
    }
    if (h2) client.countBody(chunk.length)
    yield chunk
  }
}
