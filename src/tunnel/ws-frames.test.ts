import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { closeFrame, FrameTracker, GOING_AWAY } from './ws-frames.js'

/** One frame: `opcode`, payload of `length` bytes, masked or not (RFC 6455 §5.2). */
function frame(opcode: number, length: number, masked: boolean): Buffer {
  const lenBytes = length < 126 ? 0 : length < 65536 ? 2 : 8
  const head = Buffer.alloc(2 + lenBytes + (masked ? 4 : 0))
  head[0] = 0x80 | opcode
  const mask = masked ? 0x80 : 0
  if (lenBytes === 0) head[1] = mask | length
  else if (lenBytes === 2) {
    head[1] = mask | 126
    head.writeUInt16BE(length, 2)
  } else {
    head[1] = mask | 127
    head.writeBigUInt64BE(BigInt(length), 2)
  }
  return Buffer.concat([head, Buffer.alloc(length, 0x7e)])
}

describe('FrameTracker', () => {
  const frames = [
    frame(1, 5, true),
    frame(2, 300, false),
    frame(8, 2, true),
    frame(2, 70_000, true),
    frame(9, 0, false),
  ]
  const stream = Buffer.concat(frames)
  const boundaries = new Set<number>()
  let at = 0
  for (const f of frames) {
    at += f.length
    boundaries.add(at)
  }

  it('finds every frame boundary, whatever the chunks', () => {
    for (const size of [1, 2, 3, 7, 13, 1000, stream.length]) {
      const t = new FrameTracker()
      const found = new Set<number>()
      for (let offset = 0; offset < stream.length; offset += size) {
        const chunk = stream.subarray(offset, offset + size)
        let from = 0
        for (;;) {
          const b = t.scan(chunk, from, true)
          if (t.atBoundary && offset + b > 0) found.add(offset + b)
          if (b >= chunk.length) break
          // A boundary inside the chunk: step one header byte past it, and look for the next.
          t.scan(chunk.subarray(0, b + 1), b)
          from = b + 1
        }
      }
      assert.deepEqual(found, boundaries, `chunks of ${size}`)
      assert.ok(t.atBoundary)
      assert.equal(t.closes, 1)
    }
  })

  it('is between frames only at a boundary', () => {
    const t = new FrameTracker()
    assert.ok(t.atBoundary)
    t.scan(stream.subarray(0, 3))
    assert.ok(!t.atBoundary, 'inside the first frame')
    t.scan(stream.subarray(3, frames[0]!.length))
    assert.ok(t.atBoundary, 'after the first frame')
    t.scan(stream.subarray(frames[0]!.length, frames[0]!.length + 1))
    assert.ok(!t.atBoundary, 'one header byte of the second')
  })

  it('stops at the next boundary when asked, and reads everything otherwise', () => {
    const t = new FrameTracker()
    assert.equal(t.scan(stream, 0, true), 0, 'at a boundary already')
    const t2 = new FrameTracker()
    t2.scan(stream.subarray(0, 1))
    assert.equal(t2.scan(stream, 1, true), frames[0]!.length)
    const t3 = new FrameTracker()
    assert.equal(t3.scan(stream), stream.length)
  })
})

describe('closeFrame', () => {
  it('is an unmasked Close with the code for clients', () => {
    assert.deepEqual([...closeFrame(GOING_AWAY, false)], [0x88, 0x02, 0x03, 0xe9])
  })

  it('is a masked Close for servers, whose payload unmasks to the code', () => {
    const f = closeFrame(GOING_AWAY, true)
    assert.equal(f.length, 8)
    assert.equal(f[0], 0x88)
    assert.equal(f[1], 0x82)
    const code = ((f[6]! ^ f[2]!) << 8) | (f[7]! ^ f[3]!)
    assert.equal(code, 1001)
    const t = new FrameTracker()
    assert.equal(t.scan(f), f.length)
    assert.ok(t.atBoundary)
    assert.equal(t.closes, 1)
  })
})
