import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SwitchyardError } from '../core/errors.js'
import {
  firstMessage,
  frameMessage,
  GRPC_STATUS,
  grpcError,
  grpcMessage,
  grpcStatusOf,
  healthCheckRequest,
  healthCheckStatus,
  isGrpcContentType,
  parseGrpcTimeout,
} from './grpc.js'

describe('gRPC helpers', () => {
  it('tells gRPC content types from look-alikes', () => {
    for (const t of ['application/grpc', 'application/grpc+proto', 'APPLICATION/GRPC+json', 'application/grpc;x=1'])
      assert.equal(isGrpcContentType(t), true, t)
    for (const t of [undefined, '', 'application/grpc-web', 'application/grpcx', 'application/json', 'application/grp'])
      assert.equal(isGrpcContentType(t), false, String(t))
  })

  it('reads grpc-timeout in every unit, rounding up, and ignores malformed values', () => {
    assert.equal(parseGrpcTimeout('2H'), 7_200_000)
    assert.equal(parseGrpcTimeout('3M'), 180_000)
    assert.equal(parseGrpcTimeout('5S'), 5000)
    assert.equal(parseGrpcTimeout('150m'), 150)
    assert.equal(parseGrpcTimeout('1500u'), 2)
    assert.equal(parseGrpcTimeout('1n'), 1)
    assert.equal(parseGrpcTimeout('99999999m'), 99_999_999)
    for (const bad of [undefined, '', '5', 'S', '123456789S', '1.5S', '-1S', '5s', '5S x', '5x'])
      assert.equal(parseGrpcTimeout(bad), undefined, String(bad))
  })

  it('maps Switchyard errors to gRPC statuses', () => {
    const of = (code: SwitchyardError['code']) => grpcStatusOf(new SwitchyardError(code))
    assert.equal(of('SWY_TIMEOUT'), GRPC_STATUS.DEADLINE_EXCEEDED)
    assert.equal(of('SWY_UPSTREAM_TIMEOUT'), GRPC_STATUS.DEADLINE_EXCEEDED)
    assert.equal(of('SWY_UPSTREAM_CANCELLED'), GRPC_STATUS.CANCELLED)
    assert.equal(of('SWY_CLIENT_ABORTED'), GRPC_STATUS.CANCELLED)
    assert.equal(of('SWY_UPSTREAM_CONNECT'), GRPC_STATUS.UNAVAILABLE)
    assert.equal(of('SWY_UPSTREAM_CONNECT_TIMEOUT'), GRPC_STATUS.UNAVAILABLE)
    assert.equal(of('SWY_NO_SERVER'), GRPC_STATUS.UNAVAILABLE)
    assert.equal(of('SWY_OVERLOADED'), GRPC_STATUS.UNAVAILABLE)
    assert.equal(of('SWY_NO_ROUTE'), GRPC_STATUS.UNIMPLEMENTED)
    assert.equal(of('SWY_NOT_IMPLEMENTED'), GRPC_STATUS.UNIMPLEMENTED)
    assert.equal(of('SWY_BAD_REQUEST'), GRPC_STATUS.INTERNAL)
    assert.equal(of('SWY_FILTER_ERROR'), GRPC_STATUS.INTERNAL)
    assert.equal(of('SWY_HTTP_VERSION'), GRPC_STATUS.UNKNOWN)
  })

  it('percent-encodes grpc-message and builds the error trailers', () => {
    assert.equal(grpcMessage('plain text: ok'), 'plain text: ok')
    assert.equal(grpcMessage('100% ü\n'), '100%25 %C3%BC%0A')
    const { headers, trailers } = grpcError(new SwitchyardError('SWY_NO_SERVER'), 'r1')
    assert.deepEqual(headers, ['content-type', 'application/grpc'])
    assert.deepEqual(trailers, [
      ['grpc-status', '14'],
      ['grpc-message', 'SWY_NO_SERVER: no server is available in the pool (request r1)'],
    ])
  })

  it('frames messages and reads the first one back only when it is whole', () => {
    const framed = frameMessage(Buffer.from('hello'))
    assert.deepEqual([...framed.subarray(0, 5)], [0, 0, 0, 0, 5])
    assert.equal(firstMessage(framed.subarray(0, 7)), undefined)
    assert.equal(firstMessage(framed.subarray(0, 3)), undefined)
    assert.deepEqual(firstMessage(framed), { compressed: false, message: Buffer.from('hello') })
  })

  it('encodes HealthCheckRequest and decodes HealthCheckResponse', () => {
    assert.deepEqual(healthCheckRequest(''), Buffer.alloc(0))
    assert.deepEqual([...healthCheckRequest('a.B')], [0x0a, 3, 0x61, 0x2e, 0x42])
    const long = 'x'.repeat(200)
    assert.deepEqual([...healthCheckRequest(long).subarray(0, 3)], [0x0a, 0xc8, 0x01])
    assert.equal(healthCheckStatus(Buffer.from([0x08, 0x01])), 1)
    assert.equal(healthCheckStatus(Buffer.from([0x08, 0x02])), 2)
    assert.equal(healthCheckStatus(Buffer.alloc(0)), 0)
    // Unknown fields of every wire type are skipped.
    assert.equal(
      healthCheckStatus(Buffer.from([0x12, 0x01, 0x61, 0x1d, 1, 2, 3, 4, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x01])),
      1,
    )
    assert.equal(healthCheckStatus(Buffer.from([0x08])), undefined)
    assert.equal(healthCheckStatus(Buffer.from([0x12, 0x05, 0x61])), undefined)
    assert.equal(healthCheckStatus(Buffer.from([0x0b])), undefined)
    assert.equal(healthCheckStatus(Buffer.from([0x1d, 1])), undefined)
  })
})
