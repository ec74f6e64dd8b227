/** The error table and the classification of upstream errors. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { classifyUpstreamError, ERROR_CODES, SwitchyardError } from './errors.js'

const withCode = (code: string) => Object.assign(new Error(code), { code })

describe('classifyUpstreamError', () => {
  it('maps connection and protocol failures to upstream codes', () => {
    const cases: [string, string][] = [
      ['ECONNREFUSED', 'SWY_UPSTREAM_CONNECT'],
      ['UND_ERR_CONNECT_TIMEOUT', 'SWY_UPSTREAM_CONNECT_TIMEOUT'],
      ['UND_ERR_HEADERS_TIMEOUT', 'SWY_UPSTREAM_TIMEOUT'],
      ['UND_ERR_BODY_TIMEOUT', 'SWY_UPSTREAM_BODY_TIMEOUT'],
      ['UND_ERR_SOCKET', 'SWY_UPSTREAM_RESET'],
      ['ECONNRESET', 'SWY_UPSTREAM_RESET'],
      ['HPE_INVALID_CONSTANT', 'SWY_UPSTREAM_PROTOCOL'],
      ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'SWY_UPSTREAM_PROTOCOL'],
    ]
    for (const [code, swy] of cases) {
      const err = classifyUpstreamError(withCode(code))
      assert.equal(err.code, swy, code)
      assert.equal(err.source, 'upstream', code)
      assert.match(err.message, new RegExp(code))
    }
  })

  it('does not blame the server for what it did not do', () => {
    // undici rejecting its own arguments, and anything unknown: internal, never retried or ejected on.
    for (const code of ['UND_ERR_INVALID_ARG', 'ERR_SOMETHING_NEW', '']) {
      const err = classifyUpstreamError(code === '' ? new Error('odd') : withCode(code))
      assert.equal(err.code, 'SWY_INTERNAL', code)
      assert.equal(err.source, 'internal', code)
      assert.equal(err.status, 500)
    }
    // The client's own body, and a shutdown past its grace period.
    assert.equal(classifyUpstreamError(withCode('UND_ERR_REQ_CONTENT_LENGTH_MISMATCH')).source, 'downstream')
    assert.equal(classifyUpstreamError(withCode('UND_ERR_DESTROYED')).code, 'SWY_SHUTTING_DOWN')
  })

  it('passes a SwitchyardError through, and every code has a status, a source and a text', () => {
    const own = new SwitchyardError('SWY_TIMEOUT')
    assert.equal(classifyUpstreamError(own), own)
    for (const [code, info] of Object.entries(ERROR_CODES)) {
      assert.ok(info.text.length > 0, code)
      assert.ok(['upstream', 'downstream', 'internal', 'config', 'policy'].includes(info.source), code)
    }
    assert.equal(ERROR_CODES.SWY_FILTER_ERROR.status, 500)
    assert.equal(ERROR_CODES.SWY_RATE_LIMITED.status, 429)
    assert.equal(ERROR_CODES.SWY_BODY_TOO_LARGE.status, 413)
  })
})
