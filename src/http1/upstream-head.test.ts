import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SwitchyardError } from '../core/errors.js'
import { type BodyShape, type RequestHead, requestHead } from './upstream-head.js'

const NONE: BodyShape = { kind: 'none' }
const STREAM: BodyShape = { kind: 'stream' }

function head(method: string, headers: string[], body: BodyShape = NONE, path = '/p?q=1'): RequestHead {
  const h = requestHead(method, path, headers, '10.0.0.1:8080', body)
  if (h instanceof SwitchyardError) throw h
  return h
}

function refused(method: string, headers: string[], body: BodyShape = NONE, path = '/'): string {
  const h = requestHead(method, path, headers, 'h:1', body)
  assert.ok(h instanceof SwitchyardError, `expected ${JSON.stringify(headers)} to be refused`)
  return `${h.code} ${h.message}`
}

describe('requestHead', () => {
  it('writes the request line and the headers as given, adding Host only when there is none', () => {
    assert.deepEqual(head('GET', ['X-A', '1', 'x-b', 'two words']), {
      text: 'GET /p?q=1 HTTP/1.1\r\nX-A: 1\r\nx-b: two words\r\nhost: 10.0.0.1:8080\r\n',
      length: 0,
      close: false,
    })
    assert.equal(head('GET', ['Host', 'app.example']).text, 'GET /p?q=1 HTTP/1.1\r\nHost: app.example\r\n')
  })

  it('frames each body shape', () => {
    // No body: content-length: 0 only for methods that expect one.
    assert.equal(head('POST', []).text.endsWith('host: 10.0.0.1:8080\r\ncontent-length: 0\r\n'), true)
    assert.equal(head('DELETE', []).text.includes('content-length'), false)
    // A Buffer: its length, replacing the array's (equal) Content-Length.
    const buffered = head('POST', ['Content-Length', '5'], { kind: 'buffer', length: 5 })
    assert.equal(buffered.text, 'POST /p?q=1 HTTP/1.1\r\nhost: 10.0.0.1:8080\r\ncontent-length: 5\r\n')
    assert.equal(buffered.length, 5)
    assert.equal(buffered.close, false)
    // A stream: the client's length, raw; else chunked.
    assert.equal(head('PUT', ['content-length', '12'], STREAM).length, 12)
    assert.match(head('PUT', ['content-length', '12'], STREAM).text, /content-length: 12\r\n$/)
    const chunked = head('PUT', [], STREAM)
    assert.equal(chunked.length, -1)
    assert.match(chunked.text, /transfer-encoding: chunked\r\n$/)
  })

  it('closes after a body sent with a method that expects none, and after Connection: close', () => {
    assert.equal(head('GET', [], { kind: 'buffer', length: 3 }).close, true)
    assert.equal(head('DELETE', [], STREAM).close, true)
    const closing = head('GET', ['Connection', 'close, x-hop'])
    assert.equal(closing.close, true)
    assert.equal(closing.text.includes('Connection'), false, 'the Connection header is the engine’s')
    assert.equal(head('GET', ['connection', 'keep-alive']).close, false)
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

  it('refuses a Buffer body that disagrees with its Content-Length (the client’s doing)', () => {
    assert.match(refused('POST', ['content-length', '4'], { kind: 'buffer', length: 5 }), /^SWY_CLIENT_ABORTED/)
  })
})
