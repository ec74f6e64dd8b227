/**
 * A tunnel: the two connections of an upgraded request (a WebSocket, or any protocol a server switched
 * to with `101 Switching Protocols`), piped both ways as bytes, with backpressure each way (a side
 * that cannot take more pauses the other), and half-close carried through (a FIN from one side ends
 * the other's write side; the tunnel closes when both connections have closed).
 *
 * Ends:
 * - either side closes or resets: the other is ended (a FIN after what was written), or destroyed
 *   when the first one failed;
 * - `idleMs` with no byte either way, or `maxAgeMs` from the start: closed as by `goAway()`;
 * - `goAway()` (a drain, the maximum age): a WebSocket gets a Close frame 1001 (going away) on each
 *   side, each put at the next frame boundary of its direction (ws-frames.ts), never inside a frame;
 *   what comes after it is dropped, and both connections end once the client answers with its own
 *   Close frame, or after CLOSE_WAIT_MS. Other protocols are ended (FIN) at once;
 * - a connection that does not close within LINGER_MS after it was ended is destroyed, so that a peer
 *   that never closes cannot hold a tunnel.
 * `onClosed` is called once, when both connections have closed, with the bytes each way and why.
 */
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { closeFrame, FrameTracker, GOING_AWAY } from './ws-frames.js'

/** After a Close frame was put on both sides: how long the client has to answer before both connections end. */
export const CLOSE_WAIT_MS = 2000

/** How long an ended connection may stay open before it is destroyed. */
export const LINGER_MS = 5000

/** The longest a Node timer waits (about 24.8 days); longer idle and age limits are cut to it. */
const MAX_TIMER_MS = 2 ** 31 - 1

/** Why a tunnel ended. */
export type TunnelEnd =
  /** The client closed (or half-closed, and the server followed). */
  | 'client-closed'
  /** The server closed first. */
  | 'server-closed'
  /** A connection failed (a reset, an error). */
  | 'client-error'
  | 'server-error'
  | 'idle'
  | 'max-age'
  /** `goAway()`: a drain. */
  | 'going-away'

export interface TunnelEnds {
  /** The client's connection, after the 101 head was written to it. */
  readonly client: Duplex
  /** Bytes the client sent after its request head, before the switch: they go to the server first. */
  readonly clientHead: Buffer
  /** The server's connection, after its 101 head was read. */
  readonly upstream: Socket
  /** Bytes the server sent after its 101 head: they go to the client first. */
  readonly upstreamHead: Buffer
}

export interface TunnelOptions {
  /** The protocol is WebSocket: `goAway()` sends Close frames. */
  readonly websocket: boolean
  /** Longest time with no byte either way; 0: none. */
  readonly idleMs: number
  /** Longest life; 0: none. */
  readonly maxAgeMs: number
}

export interface TunnelResult {
  readonly end: TunnelEnd
  /** Bytes read from the client (and sent on to the server, unless dropped while closing). */
  readonly bytesFromClient: number
  /** Bytes written to the client. */
  readonly bytesToClient: number
  readonly durationMs: number
}

export class Tunnel {
  readonly #client: Duplex
  readonly #upstream: Socket
  readonly #options: TunnelOptions
  readonly #onClosed: (result: TunnelResult) => void
  readonly #startMs = performance.now()
  #lastActivityMs = this.#startMs
  #bytesFromClient = 0
  #bytesToClient = 0
  #end: TunnelEnd | undefined
  #idleTimer: NodeJS.Timeout | undefined
  #ageTimer: NodeJS.Timeout | undefined
  #closeTimer: NodeJS.Timeout | undefined
  #lingerTimer: NodeJS.Timeout | undefined
  #clientClosed = false
  #upstreamClosed = false
  #reported = false
  // WebSocket close state.
  readonly #up: FrameTracker | undefined
  readonly #down: FrameTracker | undefined
  #goingAway = false
  /** A Close frame was put towards the server; client bytes are dropped from here on. */
  #upClosed = false
  /** A Close frame was put towards the client; server bytes are dropped from here on. */
  #downClosed = false
  #ending = false

  constructor(ends: TunnelEnds, options: TunnelOptions, onClosed: (result: TunnelResult) => void) {
    this.#client = ends.client
    this.#upstream = ends.upstream
    this.#options = options
    this.#onClosed = onClosed
    if (options.websocket) {
      this.#up = new FrameTracker()
      this.#down = new FrameTracker()
    }
    const client = this.#client
    const upstream = this.#upstream
    upstream.setNoDelay(true)
    client.on('data', this.#fromClient)
    upstream.on('data', this.#fromServer)
    client.on('drain', () => upstream.resume())
    upstream.on('drain', () => client.resume())
    client.on('end', () => this.#halfClosed('client-closed', upstream))
    upstream.on('end', () => this.#halfClosed('server-closed', client))
    client.on('error', (err: Error) => this.#failed('client-error', err, upstream))
    upstream.on('error', (err: Error) => this.#failed('server-error', err, client))
    client.once('close', () => this.#closed(true))
    upstream.once('close', () => this.#closed(false))
    if (options.idleMs > 0) this.#idleTimer = setTimeout(this.#idleCheck, Math.min(options.idleMs, MAX_TIMER_MS))
    if (options.maxAgeMs > 0)
      this.#ageTimer = setTimeout(
        () => {
          this.#ageTimer = undefined
          this.#goAway('max-age')
        },
        Math.min(options.maxAgeMs, MAX_TIMER_MS),
      )
    if (ends.upstreamHead.length > 0) this.#fromServer(ends.upstreamHead)
    if (ends.clientHead.length > 0) this.#fromClient(ends.clientHead)
    // A side that closed already ends the tunnel after the caller has it (never within this constructor).
    if (client.destroyed) queueMicrotask(() => this.#closed(true))
    if (upstream.destroyed) queueMicrotask(() => this.#closed(false))
    client.resume()
    upstream.resume()
  }

  get bytesFromClient(): number {
    return this.#bytesFromClient
  }

  get bytesToClient(): number {
    return this.#bytesToClient
  }

  /** Closes politely (a drain): see the module comment. */
  goAway(): void {
    this.#goAway('going-away')
  }

  /** Closes at once: both connections destroyed. */
  destroy(): void {
    this.#end ??= 'going-away'
    this.#client.destroy()
    this.#upstream.destroy()
  }

  // --- bytes ------------------------------------------------------------------------------------

  readonly #fromClient = (chunk: Buffer): void => {
    this.#lastActivityMs = performance.now()
    this.#bytesFromClient += chunk.length
    // Both sides ended (a drain), or the server's side is: what comes now has nowhere to go.
    if (this.#ending || this.#upstream.writableEnded) return
    const up = this.#up
    if (up === undefined || !this.#goingAway) {
      up?.scan(chunk)
      if (!this.#upstream.write(chunk)) this.#client.pause()
      return
    }
    if (this.#upClosed) return this.#watchClientClose(chunk, 0)
    // Going away: what comes before the next frame boundary still goes, then the Close frame.
    const boundary = up.scan(chunk, 0, true)
    if (boundary > 0) this.#upstream.write(boundary === chunk.length ? chunk : chunk.subarray(0, boundary))
    if (up.atBoundary) {
      this.#closeUp()
      this.#watchClientClose(chunk, boundary)
    }
  }

  readonly #fromServer = (chunk: Buffer): void => {
    this.#lastActivityMs = performance.now()
    if (this.#ending || this.#client.writableEnded) return
    const down = this.#down
    if (down === undefined || !this.#goingAway) {
      down?.scan(chunk)
      this.#toClient(chunk)
      return
    }
    if (this.#downClosed) return
    const boundary = down.scan(chunk, 0, true)
    if (boundary > 0) this.#toClient(boundary === chunk.length ? chunk : chunk.subarray(0, boundary))
    if (down.atBoundary) this.#closeDown()
  }

  #toClient(chunk: Buffer): void {
    this.#bytesToClient += chunk.length
    if (!this.#client.write(chunk)) this.#upstream.pause()
  }

  // --- closing ----------------------------------------------------------------------------------

  #goAway(why: TunnelEnd): void {
    if (this.#goingAway || this.#ending || this.#reported) return
    this.#end ??= why
    this.#goingAway = true
    if (this.#up === undefined) return this.#endBoth()
    // Each direction gets its Close frame now if it is between frames, else at its next boundary.
    if ((this.#down as FrameTracker).atBoundary) this.#closeDown()
    if (this.#up.atBoundary) this.#closeUp()
    // Both directions paused by backpressure would never reach a boundary: they are read on.
    this.#client.resume()
    this.#upstream.resume()
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined
      this.#endBoth()
    }, CLOSE_WAIT_MS)
  }

  #closeDown(): void {
    if (this.#downClosed) return
    this.#downClosed = true
    const frame = closeFrame(GOING_AWAY, false)
    this.#bytesToClient += frame.length
    this.#client.write(frame)
    // The client may have answered the server's side already: nothing more to wait for.
    if (this.#upClosed && (this.#up as FrameTracker).closes > this.#closesBefore) this.#endBoth()
  }

  #closeUp(): void {
    if (this.#upClosed) return
    this.#upClosed = true
    this.#closesBefore = (this.#up as FrameTracker).closes
    this.#upstream.write(closeFrame(GOING_AWAY, true))
  }

  /** Close frames the client had sent when ours went to the server. */
  #closesBefore = 0

  /** After our Close frame went to the server: the client's bytes are dropped, and its Close frame ends the tunnel. */
  #watchClientClose(chunk: Buffer, from: number): void {
    const up = this.#up as FrameTracker
    up.scan(chunk, from)
    if (up.closes > this.#closesBefore && this.#downClosed) this.#endBoth()
  }

  /** Ends both connections (FIN after what was written); destroys them after LINGER_MS. */
  #endBoth(): void {
    if (this.#ending) return
    this.#ending = true
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer)
    this.#closeTimer = undefined
    this.#client.end()
    this.#upstream.end()
    this.#linger()
  }

  #linger(): void {
    if (this.#lingerTimer !== undefined) return
    this.#lingerTimer = setTimeout(() => {
      this.#lingerTimer = undefined
      this.#client.destroy()
      this.#upstream.destroy()
    }, LINGER_MS)
  }

  /** One side sent its FIN: the other side's write side ends after what was written. */
  #halfClosed(why: TunnelEnd, other: Duplex): void {
    this.#end ??= why
    if (this.#goingAway) return this.#endBoth()
    other.end()
    this.#linger()
  }

  /** One side failed: the other is destroyed too, and reset when the failure was a reset. */
  #failed(why: TunnelEnd, err: Error, other: Duplex): void {
    this.#end ??= why
    const reset = (err as { code?: unknown }).code === 'ECONNRESET'
    const socket = other as Partial<Socket> & Duplex
    if (reset && typeof socket.resetAndDestroy === 'function' && !other.destroyed) socket.resetAndDestroy()
    else other.destroy()
    this.#client.destroy()
    this.#upstream.destroy()
  }

  #closed(client: boolean): void {
    if (client) {
      if (this.#clientClosed) return
      this.#clientClosed = true
      this.#end ??= 'client-closed'
      // Closed without an error but maybe without a FIN either: the other side ends after its bytes.
      if (!this.#upstream.destroyed) this.#upstream.end()
    } else {
      if (this.#upstreamClosed) return
      this.#upstreamClosed = true
      this.#end ??= 'server-closed'
      if (!this.#client.destroyed) this.#client.end()
    }
    if (!this.#clientClosed || !this.#upstreamClosed) return this.#linger()
    this.#report()
  }

  readonly #idleCheck = (): void => {
    this.#idleTimer = undefined
    const quietMs = performance.now() - this.#lastActivityMs
    const idleMs = this.#options.idleMs
    if (quietMs >= idleMs) return this.#goAway('idle')
    this.#idleTimer = setTimeout(this.#idleCheck, idleMs - quietMs)
  }

  #report(): void {
    if (this.#reported) return
    this.#reported = true
    for (const t of [this.#idleTimer, this.#ageTimer, this.#closeTimer, this.#lingerTimer])
      if (t !== undefined) clearTimeout(t)
    this.#onClosed({
      end: this.#end ?? 'client-closed',
      bytesFromClient: this.#bytesFromClient,
      bytesToClient: this.#bytesToClient,
      durationMs: performance.now() - this.#startMs,
    })
  }
}
