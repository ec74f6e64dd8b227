/**
 * WebSocket frame boundaries (RFC 6455 §5.2), for a tunnel that must close a WebSocket politely: a
 * close frame can only be put between two frames, never inside one. The tracker reads each frame's
 * header (2 to 14 bytes) and skips its payload by count; it never copies or unmasks a payload, so it
 * costs a few operations per frame whatever the frame's size.
 */

/** Opcode of a Close frame. */
const OP_CLOSE = 8

/** 1001, "going away": an endpoint that is shutting down (RFC 6455 §7.4.1). */
export const GOING_AWAY = 1001

export class FrameTracker {
  /** Payload bytes of the current frame still to come. */
  #payloadLeft = 0
  /** Header bytes read so far of a header that spans chunks. */
  readonly #header = new Uint8Array(14)
  #headerHave = 0
  /** Close frames begun so far. */
  #closes = 0

  /** Between two frames: a frame may be put here. */
  get atBoundary(): boolean {
    return this.#headerHave === 0 && this.#payloadLeft === 0
  }

  /** Close frames begun in what was read. */
  get closes(): number {
    return this.#closes
  }

  /**
   * Reads `chunk` from `from` on. With `stopAtBoundary`, stops at the first frame boundary at or after
   * `from` and returns its offset (`from` itself when the tracker is between frames there); else reads
   * it all. Returns `chunk.length` when no boundary came before its end.
   */
  scan(chunk: Uint8Array, from = 0, stopAtBoundary = false): number {
    let at = from
    const length = chunk.length
    while (at < length) {
      if (stopAtBoundary && this.atBoundary) return at
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, length - at)
        this.#payloadLeft -= take
        at += take
        continue
      }
      // A header byte.
      this.#header[this.#headerHave++] = chunk[at++] as number
      const need = this.#headerNeed()
      if (this.#headerHave < need) continue
      this.#startFrame()
    }
    if (stopAtBoundary && this.atBoundary) return at
    return length
  }

  /** Bytes of the header being read, as far as its first two bytes tell. */
  #headerNeed(): number {
    if (this.#headerHave < 2) return 2
    const b1 = this.#header[1] as number
    const len7 = b1 & 0x7f
    const mask = b1 & 0x80 ? 4 : 0
    return 2 + mask + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0)
  }

  #startFrame(): void {
    const h = this.#header
    const b1 = h[1] as number
    const len7 = b1 & 0x7f
    let len = len7
    if (len7 === 126) len = ((h[2] as number) << 8) | (h[3] as number)
    else if (len7 === 127) {
      // 64 bits, most significant first; payloads beyond 2^53 bytes are not a concern in practice.
      len = 0
      for (let i = 2; i < 10; i++) len = len * 256 + (h[i] as number)
    }
    if (((h[0] as number) & 0x0f) === OP_CLOSE) this.#closes++
    this.#headerHave = 0
    this.#payloadLeft = len
  }
}

/**
 * A Close frame with `code` and no reason: unmasked (server to client), or masked with a random key
 * (client to server, which RFC 6455 §5.3 requires to be masked).
 */
export function closeFrame(code: number, masked: boolean): Buffer {
  const hi = (code >> 8) & 0xff
  const lo = code & 0xff
  if (!masked) return Buffer.from([0x88, 0x02, hi, lo])
  const key = crypto.getRandomValues(new Uint8Array(4))
  const k0 = key[0] as number
  const k1 = key[1] as number
  return Buffer.from([0x88, 0x82, k0, k1, key[2] as number, key[3] as number, hi ^ k0, lo ^ k1])
}
