/**
 * What Switchyard knows of gRPC (which rides on HTTP/2): telling a gRPC request, its deadline
 * (`grpc-timeout`), the gRPC form of Switchyard's own errors, and the length-prefixed message framing
 * with the two protobuf messages of the standard health service (`grpc.health.v1`), which the `grpc`
 * health check speaks. Nothing else of protobuf is decoded: calls pass through as bytes.
 */
import { ERROR_CODES, type SwitchyardError } from '../core/errors.js'

/** gRPC status codes Switchyard sends (google.rpc.Code). */
export const GRPC_STATUS = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const

/** A gRPC content type: `application/grpc`, alone or with a `+proto`/`+json`/`;...` suffix. */
export function isGrpcContentType(value: string | undefined): boolean {
  if (value === undefined || value.length < 16) return false
  if (value.slice(0, 16).toLowerCase() !== 'application/grpc') return false
  if (value.length === 16) return true
  const next = value.charCodeAt(16)
  return next === 43 /* + */ || next === 59 /* ; */
}

const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000001,
}

/**
 * A `grpc-timeout` value (1 to 8 digits and a unit: H, M, S, m, u, n) in milliseconds, rounded up so
 * that a deadline under a millisecond is not 0; undefined when absent or malformed (then ignored, as
 * gRPC servers do).
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const m = /^(\d{1,8})([HMSmun])$/.exec(value.trim())
  if (m === null) return undefined
  return Math.ceil(Number(m[1]) * (TIMEOUT_UNIT_MS[m[2] as string] as number))
}

/**
 * The gRPC status of one of Switchyard's own errors, after gRPC's table for HTTP statuses
 * (doc/http-grpc-status-mapping.md), with the deadlines told apart: a timeout is DEADLINE_EXCEEDED,
 * an unreachable or failing server UNAVAILABLE.
 */
export function grpcStatusOf(err: SwitchyardError): number {
  switch (err.code) {
    case 'SWY_TIMEOUT':
    case 'SWY_UPSTREAM_TIMEOUT':
    case 'SWY_UPSTREAM_BODY_TIMEOUT':
      return GRPC_STATUS.DEADLINE_EXCEEDED
    case 'SWY_CLIENT_ABORTED':
      return GRPC_STATUS.CANCELLED
    case 'SWY_UPSTREAM_CANCELLED':
      return GRPC_STATUS.CANCELLED
    default:
      break
  }
  switch (err.status) {
    case 400:
    case 500:
      return GRPC_STATUS.INTERNAL
    case 401:
      return GRPC_STATUS.UNAUTHENTICATED
    case 403:
      return GRPC_STATUS.PERMISSION_DENIED
    case 404:
    case 501:
      return GRPC_STATUS.UNIMPLEMENTED
    case 429:
      return GRPC_STATUS.RESOURCE_EXHAUSTED
    case 502:
    case 503:
    case 504:
      return GRPC_STATUS.UNAVAILABLE
    default:
      return GRPC_STATUS.UNKNOWN
  }
}

/**
 * `grpc-message` text: percent-encoded UTF-8, where every byte outside printable ASCII, and `%`
 * itself, is escaped (the gRPC over HTTP/2 spec).
 */
export function grpcMessage(text: string): string {
  let out = ''
  for (const byte of Buffer.from(text, 'utf8')) {
    if (byte >= 0x20 && byte <= 0x7e && byte !== 0x25) out += String.fromCharCode(byte)
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`
  }
  return out
}

/**
 * The gRPC form of an error that Switchyard answers itself: HTTP 200, `application/grpc`, no message,
 * and the status in trailers (`grpc-status`, `grpc-message` naming the SWY_* code). Headers and
 * trailers are `[name, value, ...]`.
 */
export function grpcError(
  err: SwitchyardError,
  requestId: string,
): { headers: string[]; trailers: [string, string][] } {
  return {
    headers: ['content-type', 'application/grpc'],
    trailers: [
      ['grpc-status', String(grpcStatusOf(err))],
      ['grpc-message', grpcMessage(`${err.code}: ${ERROR_CODES[err.code].text} (request ${requestId})`)],
    ],
  }
}

/** One uncompressed length-prefixed message: a zero flag byte, the length (4 bytes, big-endian), the bytes. */
export function frameMessage(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.length)
  out[0] = 0
  out.writeUInt32BE(message.length, 1)
  out.set(message, 5)
  return out
}

/** The first whole message of a length-prefixed stream; undefined until it is all there. */
export function firstMessage(data: Buffer): { compressed: boolean; message: Buffer } | undefined {
  if (data.length < 5) return undefined
  const length = data.readUInt32BE(1)
  if (data.length < 5 + length) return undefined
  return { compressed: data[0] === 1, message: data.subarray(5, 5 + length) }
}

/** `grpc.health.v1.HealthCheckRequest { string service = 1; }`, protobuf-encoded. */
export function healthCheckRequest(service: string): Buffer {
  if (service === '') return Buffer.alloc(0)
  const name = Buffer.from(service, 'utf8')
  return Buffer.concat([Buffer.from([0x0a]), varint(name.length), name])
}

/** HealthCheckResponse.ServingStatus: 1 is SERVING. */
export const SERVING = 1

/**
 * The `status` (field 1, a varint) of a protobuf-encoded `grpc.health.v1.HealthCheckResponse`; 0
 * (UNKNOWN) when the field is absent, as protobuf defaults say; undefined when the bytes do not parse.
 */
export function healthCheckStatus(message: Buffer): number | undefined {
  let status = 0
  let at = 0
  while (at < message.length) {
    const key = readVarint(message, at)
    if (key === undefined) return undefined
    at = key.next
    const field = key.value >>> 3
    const wire = key.value & 7
    if (wire === 0) {
      const v = readVarint(message, at)
      if (v === undefined) return undefined
      at = v.next
      if (field === 1) status = v.value
    } else if (wire === 2) {
      const len = readVarint(message, at)
      if (len === undefined || len.next + len.value > message.length) return undefined
      at = len.next + len.value
    } else if (wire === 5) at += 4
    else if (wire === 1) at += 8
    else return undefined
  }
  return at === message.length ? status : undefined
}

function varint(n: number): Buffer {
  const bytes: number[] = []
  let v = n
  while (v > 0x7f) {
    bytes.push((v & 0x7f) | 0x80)
    v >>>= 7
  }
  bytes.push(v)
  return Buffer.from(bytes)
}

/** A varint of at most 4 bytes (28 bits: every value these two messages hold). */
function readVarint(buf: Buffer, from: number): { value: number; next: number } | undefined {
  let value = 0
  for (let i = 0; i < 4 && from + i < buf.length; i++) {
    const byte = buf[from + i] as number
    value |= (byte & 0x7f) << (7 * i)
    if ((byte & 0x80) === 0) return { value, next: from + i + 1 }
  }
  return undefined
}
