/**
 * The `node` engine's upgrade requests: node:http hands an `Upgrade` request over through its
 * `upgrade` event, with the raw socket and no response object. Such a request is answered here with
 * the native engine's response writer (NativeClient, which frames and checks the head as for any
 * request) on a port that writes straight to that socket, so both engines answer upgrades alike: a
 * 101 gives the socket to a tunnel, any other answer is written whole and the connection closes.
 *
 * An upgrade request with a Content-Length body cannot switch (a tunnel would start inside the body):
 * node:http left the body unread, so the port reads it here, and the request goes on as a plain one,
 * as on the native engine. What follows the body is never read as another request.
 */
import type { Socket } from 'node:net'
import { bareIp } from '../core/address.js'
import type { SwitchedConnection } from '../l7/client.js'
import { peerAddress } from '../listeners/proxy-protocol.js'
import { type ClientPort, NativeClient, type Piece } from './client-side.js'

/** How long an answered connection may stay open for the client to read the answer, before it is destroyed. */
const LINGER_MS = 5000

export interface UpgradeRequestFacts {
  readonly method: string
  readonly url: string
  readonly rawHeaders: string[]
  readonly versionMajor: number
  readonly versionMinor: number
  /** The request's Content-Length; 0 without a body. */
  readonly bodyLength: number
}

class UpgradePort implements ClientPort {
  readonly keepAliveHint = ''
  readonly draining = false
  readonly #socket: Socket
  readonly #head: Buffer
  #client: NativeClient | undefined
  /** Body bytes still to read. */
  #bodyLeft: number

  constructor(socket: Socket, head: Buffer, bodyLength: number) {
    this.#socket = socket
    this.#head = head
    this.#bodyLeft = bodyLength
    socket.on('error', this.#onError)
    socket.on('drain', this.#onDrain)
    socket.once('close', this.#onClose)
  }

  attach(client: NativeClient): void {
    this.#client = client
    client.activate()
    if (this.#bodyLeft === 0) return
    this.#onBody(this.#head)
    if (this.#bodyLeft === 0) return
    this.#socket.on('data', this.#onBody)
    this.#socket.once('end', this.#onEnd)
    this.#socket.resume()
  }

  readonly #onBody = (chunk: Buffer): void => {
    const client = this.#client
    if (client === undefined || this.#bodyLeft === 0 || chunk.length === 0) return
    const n = Math.min(chunk.length, this.#bodyLeft)
    this.#bodyLeft -= n
    client.countIn(n)
    const room = client.pushBody(n === chunk.length ? chunk : chunk.subarray(0, n))
    if (this.#bodyLeft === 0) {
      this.#socket.removeListener('data', this.#onBody)
      this.#socket.removeListener('end', this.#onEnd)
      this.#socket.pause()
      client.endBody([])
    } else if (!room) this.#socket.pause()
  }

  /** The client's FIN before its body was whole: the request cannot be answered. */
  readonly #onEnd = (): void => {
    this.#client?.goneNow()
    this.#socket.destroy()
  }

  get socket(): Socket {
    return this.#socket
  }

  get destroyed(): boolean {
    return this.#socket.destroyed
  }

  send(pieces: readonly Piece[]): boolean {
    const socket = this.#socket
    if (socket.destroyed || socket.writableEnded) return true
    let room = true
    socket.cork()
    for (const p of pieces) room = typeof p === 'string' ? socket.write(p, 'latin1') : socket.write(p)
    socket.uncork()
    return room
  }

  ended(): void {
    const socket = this.#socket
    socket.end(() => setTimeout(() => socket.destroy(), LINGER_MS).unref())
    // The client's bytes after the answer are read and dropped until it closes.
    socket.resume()
  }

  abort(): void {
    this.#socket.destroy()
  }

  bodyWanted(): void {
    if (this.#bodyLeft > 0) this.#socket.resume()
  }

  abandoned(): void {
    this.#socket.destroy()
  }

  switchTo(client: NativeClient, head: Buffer): SwitchedConnection | undefined {
    const socket = this.#socket
    if (client !== this.#client || socket.destroyed || socket.writableEnded) return undefined
    this.#client = undefined
    socket.removeListener('error', this.#onError)
    socket.removeListener('drain', this.#onDrain)
    socket.removeListener('close', this.#onClose)
    socket.write(head)
    return { socket, head: this.#head }
  }

  readonly #onError = (): void => {
    this.#socket.destroy()
  }

  readonly #onDrain = (): void => {
    this.#client?.drained()
  }

  readonly #onClose = (): void => {
    this.#client?.goneNow()
  }
}

/**
 * The client side of an upgrade request that node:http gave up (`socket` and `head` from its `upgrade`
 * event). A chunked body is refused before this (listeners/http.ts).
 */
export function upgradeClient(socket: Socket, head: Buffer, facts: UpgradeRequestFacts): NativeClient {
  const port = new UpgradePort(socket, head, facts.bodyLength)
  const client = new NativeClient(port, {
    method: facts.method,
    url: facts.url,
    rawHeaders: facts.rawHeaders,
    versionMajor: facts.versionMajor,
    versionMinor: facts.versionMinor,
    peerIp: bareIp(peerAddress(socket)),
    hasBody: facts.bodyLength > 0,
    upgrade: true,
    closeAfter: true,
  })
  client.countIn(Math.max(0, socket.bytesRead - head.length))
  port.attach(client)
  return client
}
