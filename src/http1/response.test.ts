import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { bodiless, finishHead, type GivenHead, headOf, InvalidHeaderError, lastChunk } from './response.js'

const HTTP11 = { headRequest: false, http10: false }
const HTTP10 = { headRequest: false, http10: true }
const HEAD = { headRequest: true, http10: false }

/** A head as it goes on the wire, with the framing of a body of unknown length to an HTTP/1.1 client. */
function wire(given: GivenHead): string {
  return finishHead(given, HTTP11, -1, false, false, '').head.toString('latin1')
}

/** The head's lines after the status line, without Date. */
function lines(text: string): string[] {
  return text
    .split('\r\n')
    .slice(1)
    .filter((l) => l !== '' && !l.startsWith('Date: '))
}

describe('response heads (native engine)', () => {
  it('writes the status line with the given reason or the standard one, the headers as given, and Date', () => {
    const given = headOf(200, undefined, ['X-A', '1', 'set-cookie', 'a=1', 'set-cookie', 'b=2'])
    assert.match(
      wire(given),
      /^HTTP\/1\.1 200 OK\r\nX-A: 1\r\nset-cookie: a=1\r\nset-cookie: b=2\r\nDate: .+ GMT\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n$/,
    )
    assert.match(wire(headOf(299, undefined, [])), /^HTTP\/1\.1 299 unknown\r\n/)
    assert.match(wire(headOf(404, 'Nope', [])), /^HTTP\/1\.1 404 Nope\r\n/)
    assert.doesNotMatch(wire(headOf(200, undefined, ['date', 'x'])), /Date: /, 'a given Date is kept, none added')
  })

  it('writes every byte of the head and no other: latin1 values, long values, a dropped Transfer-Encoding', () => {
    const long = 'c'.repeat(300)
    const given = headOf(201, undefined, [
      'X-L',
      'caf\u00e9',
      'transfer-encoding',
      'chunked',
      'Cookie-Long',
      long,
      'date',
      'D',
    ])
    const { head } = finishHead(given, HTTP11, 5, false, false, 'timeout=4')
    const expected = `HTTP/1.1 201 Created\r\nX-L: caf\u00e9\r\nCookie-Long: ${long}\r\ndate: D\r\nContent-Length: 5\r\nConnection: keep-alive\r\nKeep-Alive: timeout=4\r\n\r\n`
    assert.deepEqual(head, Buffer.from(expected, 'latin1'))
    assert.equal(head[head.indexOf('caf') + 3], 0xe9, 'é is one byte')
  })

  it('throws before anything is written on an invalid status, name or value, with node:http codes', () => {
    const code = (fn: () => unknown) => {
      try {
        fn()
      } catch (err) {
        assert.ok(err instanceof InvalidHeaderError)
        return err.code
      }
      return 'none'
    }
    assert.equal(
      code(() => headOf(200, undefined, ['Bad Name', 'x'])),
      'ERR_INVALID_HTTP_TOKEN',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['', 'x'])),
      'ERR_INVALID_HTTP_TOKEN',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['X-A', 'a\r\nInjected: 1'])),
      'ERR_INVALID_CHAR',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['X-A', 'snow\u2603'])),
      'ERR_INVALID_CHAR',
    )
    assert.equal(
      code(() => headOf(200, 'OK\r\nX: y', [])),
      'ERR_INVALID_CHAR',
    )
    // The first `checked` entries (a server's fields, read by strict llhttp) are not checked again;
    // the ones after them (Switchyard's own) still are.
    assert.equal(
      code(() => headOf(200, undefined, ['X-A', '1', 'Bad Name', 'x'], 2)),
      'ERR_INVALID_HTTP_TOKEN',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['X-A', 'a\x7f', 'X-B', '2'], 2)),
      'none',
    )
    assert.equal(
      code(() => headOf(1000, undefined, [])),
      'ERR_HTTP_INVALID_STATUS_CODE',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['content-length', '5', 'content-length', '6'])),
      'ERR_INVALID_CHAR',
    )
    assert.equal(
      code(() => headOf(200, undefined, ['X-A', 'tab\tand latin1 \u00e9 are fine'])),
      'none',
    )
  })

  it('frames a body: a given length, a length known at the end, chunked for HTTP/1.1, close-delimited for HTTP/1.0', () => {
    const given = finishHead(headOf(200, undefined, ['content-length', '10']), HTTP11, -1, false, false, 'timeout=5')
    assert.deepEqual([given.framing, given.length, given.last], ['length', 10, false])
    assert.deepEqual(lines(given.head.toString('latin1')), [
      'content-length: 10',
      'Connection: keep-alive',
      'Keep-Alive: timeout=5',
    ])

    const whole = finishHead(headOf(200, undefined, []), HTTP11, 42, false, false, '')
    assert.deepEqual([whole.framing, whole.length], ['length', 42])
    assert.deepEqual(lines(whole.head.toString('latin1')), ['Content-Length: 42', 'Connection: keep-alive'])

    const chunked = finishHead(headOf(200, undefined, []), HTTP11, -1, false, false, '')
    assert.equal(chunked.framing, 'chunked')
    assert.deepEqual(lines(chunked.head.toString('latin1')), ['Transfer-Encoding: chunked', 'Connection: keep-alive'])

    const trailers = finishHead(headOf(200, undefined, []), HTTP11, 3, true, false, '')
    assert.equal(trailers.framing, 'chunked', 'trailers need chunked framing even when the length is known')

    const old = finishHead(headOf(200, undefined, []), HTTP10, -1, false, false, '')
    assert.deepEqual([old.framing, old.last], ['close', true])
    assert.deepEqual(lines(old.head.toString('latin1')), ['Connection: close'])
    const oldKnown = finishHead(headOf(200, undefined, []), HTTP10, 7, false, false, 'timeout=5')
    assert.deepEqual([oldKnown.framing, oldKnown.last], ['length', false])
  })

  it('no body for HEAD, 1xx, 204 and 304; a given Transfer-Encoding is dropped', () => {
    assert.ok(bodiless(204, false) && bodiless(304, false) && bodiless(101, false) && bodiless(200, true))
    assert.ok(!bodiless(200, false) && !bodiless(205, false))
    const head = finishHead(headOf(200, undefined, ['content-length', '1234']), HEAD, 0, false, false, '')
    assert.deepEqual(
      [head.framing, lines(head.head.toString('latin1'))],
      ['none', ['content-length: 1234', 'Connection: keep-alive']],
    )
    const noContent = finishHead(headOf(204, undefined, ['transfer-encoding', 'chunked']), HTTP11, -1, false, false, '')
    assert.deepEqual(
      [noContent.framing, lines(noContent.head.toString('latin1'))],
      ['none', ['Connection: keep-alive']],
    )
  })

  it('Connection: close when the connection must close or the caller says so, never twice', () => {
    const must = finishHead(headOf(200, undefined, []), HTTP11, 0, false, true, 'timeout=5')
    assert.deepEqual(
      [must.last, lines(must.head.toString('latin1'))],
      [true, ['Content-Length: 0', 'Connection: close']],
    )
    const said = finishHead(headOf(200, undefined, ['connection', 'close']), HTTP11, 0, false, false, 'timeout=5')
    assert.deepEqual(
      [said.last, lines(said.head.toString('latin1'))],
      [true, ['connection: close', 'Content-Length: 0']],
    )
  })

  it('ends a chunked body with the trailers that are valid', () => {
    assert.equal(lastChunk(undefined), '0\r\n\r\n')
    assert.equal(
      lastChunk([
        ['x-sum', '42'],
        ['bad name', 'x'],
        ['x-bad', 'a\nb'],
      ]),
      '0\r\nx-sum: 42\r\n\r\n',
    )
  })
})
