import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { REDACTED, redact } from './views.js'

describe('redact', () => {
  it('hides secret keys, every OTLP header value, and the user and password of any URL', () => {
    const config = {
      admin: { token: 'admin-secret', listen: '127.0.0.1:9901' },
      tracing: {
        otlp: {
          endpoint: 'https://user:pw@otlp.example.com/v1/traces',
          headers: { authorization: 'Bearer abc', 'x-honeycomb-team': 'key' },
        },
      },
      listeners: [{ name: 'l', routes: [{ headers: { request: { set: { 'x-a': 'kept' } } } }] }],
      pools: [{ servers: ['http://u:p@10.0.0.1:80', 'http://10.0.0.2:80'], sticky: { secretHex: 'ab' } }],
    }
    assert.deepEqual(redact(config), {
      admin: { token: REDACTED, listen: '127.0.0.1:9901' },
      tracing: {
        otlp: {
          endpoint: `https://${REDACTED}@otlp.example.com/v1/traces`,
          headers: { authorization: REDACTED, 'x-honeycomb-team': REDACTED },
        },
      },
      // A route's header rules are config, not secrets: kept.
      listeners: [{ name: 'l', routes: [{ headers: { request: { set: { 'x-a': 'kept' } } } }] }],
      pools: [{ servers: [`http://${REDACTED}@10.0.0.1:80`, 'http://10.0.0.2:80'], sticky: { secretHex: REDACTED } }],
    })
  })
})
