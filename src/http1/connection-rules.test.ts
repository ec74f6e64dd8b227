import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { endsConnection, isSafeMethod } from './connection-rules.js'
import { requestBodyFraming } from './parser.js'

describe('what both HTTP/1.1 engines decide alike about a connection', () => {
  it('runs pipelined requests side by side only when their methods are safe (RFC 9110 §9.2.1)', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'TRACE']) assert.ok(isSafeMethod(m), m)
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'CONNECT', 'get', 'FROB']) assert.ok(!isSafeMethod(m), m)
  })

  it('ends the connection after a version other than 1.x, close among the Connection tokens, or an upgrade', () => {
    assert.equal(endsConnection(1, ['Host', 'a']), false)
    assert.equal(endsConnection(2, ['Host', 'a']), true)
    assert.equal(endsConnection(0, []), true)
    assert.equal(endsConnection(1, ['Connection', 'keep-alive', 'connection', 'Close']), true)
    assert.equal(endsConnection(1, ['CONNECTION', 'keep-alive,\tclose ']), true)
    assert.equal(endsConnection(1, ['Connection', 'closed, x-close']), false)
    assert.equal(endsConnection(1, ['Connection', 'keep-alive, Upgrade', 'Upgrade', 'websocket']), true)
    assert.equal(endsConnection(1, ['Upgrade', 'websocket']), false, 'Upgrade without Connection: upgrade')
    assert.equal(endsConnection(1, ['Connection', 'upgrade']), false, 'Connection: upgrade without Upgrade')
  })

  it('asks llhttp how it frames a Transfer-Encoding head, from the bytes node:http would parse', () => {
    const head = (te: string) => [
      Buffer.from(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ${te}\r\n\r\n`, 'latin1'),
    ]
    assert.equal(requestBodyFraming(head('chunked')), 'chunked')
    assert.equal(requestBodyFraming(head('gzip, chunked')), 'chunked')
    // node's binding trims the value it hands over; llhttp saw the tab.
    assert.equal(requestBodyFraming(head('chunked\t')), 'HPE_INVALID_TRANSFER_ENCODING')
    assert.equal(requestBodyFraming(head('xchunked')), 'HPE_INVALID_TRANSFER_ENCODING')
    // An empty Transfer-Encoding: llhttp 9.3 (Node 20) sees no framing, 9.4 (Node 24) refuses it. Either
    // way the request path refuses the request (400), on both engines.
    assert.ok(['none', 'HPE_INVALID_TRANSFER_ENCODING'].includes(requestBodyFraming(head(''))))
    // A head in pieces, as it came in several reads.
    const [whole] = head('chunked\t')
    assert.equal(
      requestBodyFraming([whole!.subarray(0, 20), whole!.subarray(20, 50), whole!.subarray(50)]),
      'HPE_INVALID_TRANSFER_ENCODING',
    )
  })
})
