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

/** The body to stream upstream: the request itself (HTTP/1), or a counting iterator over it (HTTP/2). */
export function streamedBody(client: ClientSide): Readable | AsyncIterable<Buffer> {
  return client.protocol === 'h2' ? countedBody(client) : client.body
}

async function* countedBody(client: ClientSide): AsyncGenerator<Buffer> {
  for await (const chunk of client.body as AsyncIterable<Buffer>) {
    client.countBody(chunk.length)
    yield chunk
  }
}
