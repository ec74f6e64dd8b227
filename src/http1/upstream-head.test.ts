import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SwitchyardError } from '../core/errors.js'
import { type BodyShape, type RequestHead, requestBytes, requestHead } from './upstream-head.js'

const NONE: BodyShape = { kind: 'none' }
const STREAM: BodyShape = { kind: 'stream' }

function head(method: string, headers: string[], body: BodyShape = NONE, path = '/p?q=1'): RequestHead {
  const h = requestHead(method, path, headers, '10.0.0.1:8080', body)
  if (h instanceof SwitchyardError) throw h
  return h
}

/** The head's lines, as they go on the wire before the ending. */
function text(h: RequestHead): string {
  return h.bytes.toString('latin1', 0, h.headBytes)
}

function refused(method: string, headers: string[], body: BodyShape = NONE, path = '/'): string {
  const h = requestHead(method, path, headers, 'h:1', body)
  assert.ok(h instanceof SwitchyardError, `expected ${JSON.stringify(headers)} to be refused`)
  return `${h.code} ${h.message}`
}

describe('requestHead', () => {
  it('writes the request line and the headers as given, adding Host only when there is none', () => {
    const plain = head('GET', ['X-A', '1', 'x-b', 'two words'])
    assert.equal(text(plain), 'GET /p?q=1 HTTP/1.1\r\nX-A: 1\r\nx-b: two words\r\nhost: 10.0.0.1:8080\r\n')
    assert.deepEqual([plain.length, plain.close, plain.bodyRoom], [0, false, 0])
    assert.equal(text(head('GET', ['Host', 'app.example'])), 'GET /p?q=1 HTTP/1.1\r\nHost: app.example\r\n')
  })

  it('frames each body shape', () => {
    // No body: content-length: 0 only for methods that expect one.
    assert.equal(text(head('POST', [])).endsWith('host: 10.0.0.1:8080\r\ncontent-length: 0\r\n'), true)
    assert.equal(text(head('DELETE', [])).includes('content-length'), false)
    // A Buffer: its length, replacing the array's (equal) Content-Length.
    const buffered = head('POST', ['Content-Length', '5'], { kind: 'buffer', length: 5 })
    assert.equal(text(buffered), 'POST /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:8080\r\ncontent-length: 5\r\n')
    assert.equal(buffered.length, 5)
    assert.equal(buffered.close, false)
    // A stream: the client's length, raw; else chunked.
    assert.equal(head('PUT', ['content-length', '12'], STREAM).length, 12)
    assert.match(text(head('PUT', ['content-length', '12'], STREAM)), /content-length: 12\r\n$/)
    const chunked = head('PUT', [], STREAM)
    assert.equal(chunked.length, -1)
    assert.match(text(chunked), /transfer-encoding: chunked\r\n$/)
  })

  it('closes after a body sent with a method that expects none, and after Connection: close', () => {
    assert.equal(head('GET', [], { kind: 'buffer', length: 3 }).close, true)
    assert.equal(head('DELETE', [], STREAM).close, true)
    const closing = head('GET', ['Connection', 'close, x-hop'])
    assert.equal(closing.close, true)
    assert.equal(text(closing).includes('Connection'), false, 'the Connection header is the engine’s')
    assert.equal(head('GET', ['connection', 'keep-alive']).close, false)
  })

  it('ends the head on the wire: Connection: close or not, and a small Buffer body in the same buffer', () => {
    const get = head('GET', ['X-A', 'caf\u00e9'])
    assert.equal(
      requestBytes(get, false, undefined).toString('latin1'),
      'GET /p?q=1 HTTP/1.1\r\nX-A: caf\u00e9\r\nhost: 10.0.0.1:8080\r\n\r\n',
    )
    const closing = head('GET', [])
    assert.equal(
      requestBytes(closing, true, undefined).toString('latin1'),
      'GET /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:8080\r\nconnection: close\r\n\r\n',
    )
    const body = Buffer.from('hello')
    const post = head('POST', [], { kind: 'buffer', length: 5 })
    assert.equal(post.bodyRoom, 5)
    assert.equal(
      requestBytes(post, false, body).toString('latin1'),
      'POST /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:8080\r\ncontent-length: 5\r\n\r\nhello',
    )
    const large = head('POST', [], { kind: 'buffer', length: 64 * 1024 })
    assert.equal(large.bodyRoom, 0, 'a large body is written after the head, not copied')
    assert.ok(
      requestBytes(large, false, Buffer.alloc(64 * 1024))
        .toString('latin1')
        .endsWith('\r\n\r\n'),
    )
    const longValue = 'v'.repeat(500)
    assert.equal(
      text(head('GET', ['x-long', longValue])),
      `GET /p?q=1 HTTP/1.1\r\nx-long: ${longValue}\r\nhost: 10.0.0.1:8080\r\n`,
    )
  })

  it('refuses what could smuggle a header or a message, as undici does', () => {
    assert.match(refused('GET', ['x', 'a\r\nInjected: 1']), /^SWY_INTERNAL .*x header/)
    assert.match(refused('GET', ['x', 'a\nb']), /x header/)
    assert.match(refused('GET', ['x', 'nul\0']), /x header/)
    assert.match(refused('GET', ['bad name', 'v']), /header name/)
    assert.match(refused('GET', ['', 'v']), /header name/)
    assert.match(refused('GET', ['x', '\u0100']), /x header/)
    assert.match(refused('G T', []), /method/)
    assert.match(refused('GET', [], NONE, '/a b'), /path/)
    assert.match(refused('GET', [], NONE, ''), /path/)
    assert.match(refused('GET', ['Host', 'a', 'host', 'b']), /duplicate host/)
    assert.match(refused('POST', ['content-length', '1', 'Content-Length', '1'], STREAM), /duplicate content-length/)
    assert.match(refused('POST', ['content-length', '-1'], STREAM), /content-length header/)
    assert.match(refused('POST', ['content-length', '1 '], STREAM), /content-length header/)
    for (const name of ['Transfer-Encoding', 'keep-alive', 'Upgrade', 'expect'])
      assert.match(refused('POST', [name, 'x']), new RegExp(`${name.toLowerCase()} header`))
    assert.match(refused('GET', ['connection', 'close, bad token']), /connection header/)
  })

  it('does not check the entries it is told are checked, and still refuses the names only it may send', () => {
    const ok = requestHead('GET', '/', ['x-a', 'del\x7f', 'x-b', 'v'], 'h:1', NONE, 2)
    assert.ok(!(ok instanceof SwitchyardError), 'a checked entry is not checked again')
    const late = requestHead('GET', '/', ['x-a', 'v', 'x-b', 'del\x7f'], 'h:1', NONE, 2)
    assert.ok(late instanceof SwitchyardError && /x-b header/.test(late.message), 'the entries after them are')
    const te = requestHead('GET', '/', ['transfer-encoding', 'chunked'], 'h:1', NONE, 2)
    assert.ok(te instanceof SwitchyardError && /transfer-encoding/.test(te.message))
  })

  it('refuses a Buffer body that disagrees with its Content-Length (the client’s doing)', () => {
    assert.match(refused('POST', ['content-length', '4'], { kind: 'buffer', length: 5 }), /^SWY_CLIENT_ABORTED/)
  })
})
