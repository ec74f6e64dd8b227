/**
 * The one error type of Switchyard. Every failure that reaches a user (an HTTP error response, a log
 * line, a CLI exit) carries a stable `SWY_*` code from the table below. The table is the single place
 * where a code maps to an HTTP status; nothing else in the code base picks a status for an error.
 */

/**
 * Where a failure came from, after Pingora's ErrorSource. `policy`: a well-formed request that a rule refused (rate limit, access rule, auth guard); unlike a
 * `downstream` fault, it does not close the client's connection.
 */
export type ErrorSource = 'upstream' | 'downstream' | 'policy' | 'internal' | 'config'

interface CodeInfo {
  /** HTTP status sent to the client; 0 for codes that never become a response. */
  readonly status: number
  readonly source: ErrorSource
  /** Short human text, used as the default message and in error bodies. */
  readonly text: string
}

export const ERROR_CODES = {
  SWY_UPSTREAM_CONNECT: { status: 502, source: 'upstream', text: 'could not connect to the upstream server' },
  SWY_UPSTREAM_CONNECT_TIMEOUT: {
    status: 504,
    source: 'upstream',
    text: 'connecting to the upstream server timed out',
  },
  SWY_UPSTREAM_TLS: {
    status: 502,
    source: 'upstream',
    text: 'the TLS handshake with the upstream server failed',
  },
  SWY_UPSTREAM_RESET: { status: 502, source: 'upstream', text: 'the upstream server closed the connection' },
  SWY_UPSTREAM_CANCELLED: {
    status: 502,
    source: 'upstream',
    text: 'the upstream server cancelled the request (HTTP/2 RST_STREAM CANCEL)',
  },
  SWY_UPSTREAM_TIMEOUT: { status: 504, source: 'upstream', text: 'the upstream server did not answer in time' },
  SWY_UPSTREAM_BODY_TIMEOUT: { status: 504, source: 'upstream', text: 'the upstream server stalled mid-response' },
  SWY_UPSTREAM_STATUS: { status: 502, source: 'upstream', text: 'the upstream server answered with an error status' },
  SWY_UPSTREAM_PROTOCOL: { status: 502, source: 'upstream', text: 'the upstream server sent an invalid response' },
  SWY_NO_SERVER: { status: 503, source: 'internal', text: 'no server is available in the pool' },
  SWY_OVERLOADED: {
    status: 503,
    source: 'internal',
    text: 'the pool is at its limits and its queue is full or timed out',
  },
  SWY_NO_ROUTE: { status: 404, source: 'internal', text: 'no route matches the request' },
  SWY_TIMEOUT: { status: 504, source: 'internal', text: 'the request exceeded its total time limit' },
  SWY_SHUTTING_DOWN: { status: 503, source: 'internal', text: 'the load balancer is shutting down' },
  SWY_BAD_REQUEST: { status: 400, source: 'downstream', text: 'the request is malformed' },
  SWY_NOT_IMPLEMENTED: {
    status: 501,
    source: 'downstream',
    text: 'the request needs a method or transfer coding that is not supported',
  },
  SWY_HTTP_VERSION: { status: 505, source: 'downstream', text: 'the HTTP version is not supported' },
  SWY_BODY_TOO_LARGE: { status: 413, source: 'downstream', text: 'the request body is larger than allowed' },
  SWY_AUTH_UNAVAILABLE: { status: 503, source: 'upstream', text: 'the auth service could not be asked' },
  SWY_CLIENT_TOO_SLOW: {
    status: 408,
    source: 'downstream',
    text: 'the client sent its request body, or read its response, more slowly than allowed',
  },
  SWY_URL_TOO_LONG: { status: 414, source: 'downstream', text: 'the request target is longer than allowed' },
  SWY_HEADERS_TOO_LARGE: {
    status: 431,
    source: 'downstream',
    text: 'the request headers are larger or more numerous than allowed',
  },
  SWY_RATE_LIMITED: { status: 429, source: 'policy', text: 'too many requests: the rate limit is exceeded' },
  SWY_FORBIDDEN: { status: 403, source: 'policy', text: 'access is denied' },
  SWY_UNAUTHORIZED: { status: 401, source: 'policy', text: 'authentication is required' },
  SWY_CLIENT_ABORTED: { status: 499, source: 'downstream', text: 'the client closed the connection' },
  SWY_FILTER_ERROR: { status: 500, source: 'internal', text: 'a request filter or plugin failed' },
  SWY_INTERNAL: { status: 500, source: 'internal', text: 'internal error' },
  SWY_CONFIG_INVALID: { status: 0, source: 'config', text: 'the configuration is invalid' },
  SWY_LISTEN_IN_USE: { status: 0, source: 'config', text: 'the address is already in use' },
  SWY_LISTEN_FAILED: { status: 0, source: 'config', text: 'could not listen on the address' },
  SWY_TLS_CONFIG: { status: 0, source: 'config', text: 'the TLS certificate or key cannot be used' },
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export class SwitchyardError extends Error {
  override readonly name = 'SwitchyardError'
  readonly code: ErrorCode
  readonly status: number
  readonly source: ErrorSource
  /** Extra structured data for logs and callers (e.g. config issues). */
  readonly details: Readonly<Record<string, unknown>> | undefined

  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    const info = ERROR_CODES[code]
    super(message ?? info.text, options?.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.status = info.status
    this.source = info.source
    this.details = options?.details
  }
}

export function isSwitchyardError(err: unknown): err is SwitchyardError {
  return err instanceof SwitchyardError
}

/** System error codes that mean "the TCP connection could not be made". */
const CONNECT_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
])

/**
 * TLS handshake and certificate failures (OpenSSL's verification codes as Node names them, and Node's
 * own): the server was reached but could not be trusted or spoken to.
 */
const TLS_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_HANDSHAKE_TIMEOUT',
  'EPROTO',
])

/** A TLS handshake or certificate error code. */
export function isTlsErrorCode(code: string): boolean {
  return TLS_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_')
}

/** The codes of a try that never reached the application: retried on another server as connect failures. */
export function isConnectFailure(code: string): boolean {
  return code === 'SWY_UPSTREAM_CONNECT' || code === 'SWY_UPSTREAM_CONNECT_TIMEOUT' || code === 'SWY_UPSTREAM_TLS'
}

/** Codes that mean "the connection closed or broke under the request". */
const RESET_CODES: ReadonlySet<string> = new Set([
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'ECONNRESET',
  'EPIPE',
  'ECONNABORTED',
  'ETIMEDOUT',
])

/**
 * Classifies an error raised by the upstream client (undici or the socket under it) into a Switchyard
 * code. Whether the client still gets a status is the caller's business: once the response head has
 * been sent, every failure aborts the client connection instead.
 */
export function classifyUpstreamError(err: unknown): SwitchyardError {
  if (err instanceof SwitchyardError) return err
  const code = typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : ''
  let swy: ErrorCode
  if (CONNECT_CODES.has(code)) swy = 'SWY_UPSTREAM_CONNECT'
  else if (isTlsErrorCode(code)) swy = 'SWY_UPSTREAM_TLS'
  else if (code === 'UND_ERR_CONNECT_TIMEOUT') swy = 'SWY_UPSTREAM_CONNECT_TIMEOUT'
  else if (code === 'UND_ERR_HEADERS_TIMEOUT') swy = 'SWY_UPSTREAM_TIMEOUT'
  else if (code === 'UND_ERR_BODY_TIMEOUT') swy = 'SWY_UPSTREAM_BODY_TIMEOUT'
  else if (RESET_CODES.has(code)) swy = 'SWY_UPSTREAM_RESET'
  else if (code.startsWith('HPE_') || code === 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH' || code === 'UND_ERR_INFO')
    swy = 'SWY_UPSTREAM_PROTOCOL'
  else if (code === 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH' || code === 'ERR_STREAM_PREMATURE_CLOSE')
    // The client's body did not match what it announced, or its stream ended early.
    swy = 'SWY_CLIENT_ABORTED'
  else if (code === 'UND_ERR_DESTROYED')
    swy = 'SWY_SHUTTING_DOWN' // connections closed after the grace period
  // Anything else is not known to be the server's doing (e.g. undici's UND_ERR_INVALID_ARG): it must
  // not feed outlier detection or retries.
  else swy = 'SWY_INTERNAL'
  const detail = err instanceof Error ? `${ERROR_CODES[swy].text}: ${code || err.message}` : ERROR_CODES[swy].text
  return new SwitchyardError(swy, detail, { cause: err })
}

/** The JSON body of an error response. Small, stable, and safe to show to clients. */
export function errorBody(err: SwitchyardError, requestId: string): string {
  return JSON.stringify({
    error: { code: err.code, status: err.status, message: ERROR_CODES[err.code].text, requestId },
  })
}

/** The plain-text body of an error response, for clients that ask for text/plain. */
export function errorText(err: SwitchyardError, requestId: string): string {
  return `${err.status} ${err.code}: ${ERROR_CODES[err.code].text} (request ${requestId})\n`
}
