/**
 * A streamed request body, written to an upstream socket as it is read: raw when its length is known
 * (the client's Content-Length, checked byte for byte), else chunked. Backpressure: when the socket's
 * buffer is full the source is paused (a Readable) or not read further (an async iterable) until the
 * socket drains.
 *
 * Contract: `sink.bodyWritten()` once the last byte (the last chunk) was handed to the socket, or
 * `sink.bodyFailed(err)` once, never both. `stop()` ends it silently, leaving the source paused and
 * unread: whoever owns the client's request decides what becomes of the rest (node:http discards it
 * after the response). The source is never destroyed here, since destroying a client's request would
 * close its connection under the response.
 */
import type { Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { SwitchyardError } from '../core/errors.js'

export interface BodySink {
  bodyWritten(): void
  bodyFailed(err: SwitchyardError): void
}

const LAST_CHUNK = '0\r\n\r\n'

export class BodyPump {
  readonly #socket: Socket
  readonly #sink: BodySink
  /** The announced length; -1: chunked. */
  readonly #length: number
  #sent = 0
  #stopped = false
  /** Waiting for the socket to drain. */
  #blocked = false
  readonly #readable: Readable | undefined
  readonly #iterator: AsyncIterator<Buffer> | undefined

  /**
   * Starts reading `source` into `socket`, whose request head was just written (corked: the head leaves
   * with the body bytes the source already holds, in one write).
   */
  constructor(socket: Socket, source: Readable | AsyncIterable<Buffer>, length: number, sink: BodySink) {
    this.#socket = socket
    this.#sink = sink
    this.#length = length
    if (isReadable(source)) {
      this.#readable = source
      this.#iterator = undefined
      if (source.readableEnded) {
        queueMicrotask(this.#onEnd)
        return
      }
      if (source.destroyed) {
        queueMicrotask(this.#onClose)
        return
      }
      source.on('data', this.#onData)
      source.on('end', this.#onEnd)
      source.on('error', this.#onError)
      source.on('close', this.#onClose)
      source.resume()
    } else {
      this.#readable = undefined
      this.#iterator = source[Symbol.asyncIterator]()
      this.#step()
    }
  }

  /** The socket drained: reading goes on. */
  drained(): void {
    if (!this.#blocked || this.#stopped) return
    this.#blocked = false
    if (this.#readable !== undefined) this.#readable.resume()
    else this.#step()
  }

  /** Stops writing (the response ended first, or the call failed); nothing is reported. */
  stop(): void {
    if (this.#stopped) return
    this.#stopped = true
    this.#detach()
    this.#readable?.pause()
  }

  /** Writes one chunk; false when the socket is full. */
  #write(chunk: Buffer): boolean {
    const socket = this.#socket
    if (this.#length >= 0) return socket.write(chunk)
    socket.cork()
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1')
    socket.write(chunk)
    const ok = socket.write('\r\n', 'latin1')
    socket.uncork()
    return ok
  }

  /** Takes one chunk from the source; false when it stops the pump (full socket, or a failure). */
  #take(chunk: Buffer): boolean {
    if (this.#stopped) return false
    if (chunk.length === 0) return true // an empty chunk would end a chunked body
    this.#sent += chunk.length
    if (this.#length >= 0 && this.#sent > this.#length) {
      this.#fail(mismatch(this.#sent, this.#length, 'more'))
      return false
    }
    if (this.#socket.destroyed) return false
    if (this.#write(chunk)) return true
    this.#blocked = true
    return false
  }

  readonly #onData = (chunk: Buffer | string): void => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk
    if (!this.#take(bytes) && this.#blocked) this.#readable?.pause()
  }

  readonly #onEnd = (): void => {
    if (this.#stopped) return
    if (this.#length >= 0 && this.#sent !== this.#length) return this.#fail(mismatch(this.#sent, this.#length, 'fewer'))
    this.#stopped = true
    this.#detach()
    if (this.#length < 0 && !this.#socket.destroyed) this.#socket.write(LAST_CHUNK, 'latin1')
    this.#sink.bodyWritten()
  }

  readonly #onError = (err: Error): void => {
    this.#fail(new SwitchyardError('SWY_CLIENT_ABORTED', 'the request body failed', { cause: err }))
  }

  readonly #onClose = (): void => {
    // 'close' before 'end': the client's request was cut short (an aborted upload).
    if (this.#readable?.readableEnded === true) return
    this.#fail(new SwitchyardError('SWY_CLIENT_ABORTED', 'the request body ended early'))
  }

  #step(): void {
    const iterator = this.#iterator
    if (iterator === undefined || this.#stopped) return
    iterator.next().then(
      (r) => {
        if (this.#stopped) return
        if (r.done === true) return this.#onEnd()
        if (this.#take(r.value)) this.#step()
      },
      (err: unknown) => this.#onError(err instanceof Error ? err : new Error(String(err))),
    )
  }

  #detach(): void {
    const source = this.#readable
    if (source === undefined) return
    source.off('data', this.#onData)
    source.off('end', this.#onEnd)
    source.off('close', this.#onClose)
    // A late error must find a listener, or it would be thrown.
    source.off('error', this.#onError)
    source.on('error', ignore)
  }

  #fail(err: SwitchyardError): void {
    if (this.#stopped) return
    this.stop()
    this.#sink.bodyFailed(err)
  }
}

function isReadable(source: Readable | AsyncIterable<Buffer>): source is Readable {
  return typeof (source as Readable).pause === 'function' && typeof (source as Readable).on === 'function'
}

function mismatch(sent: number, length: number, which: 'more' | 'fewer'): SwitchyardError {
  return new SwitchyardError(
    'SWY_CLIENT_ABORTED',
    `the request body had ${which} bytes (${sent}) than its Content-Length (${length})`,
  )
}

function ignore(): void {}
