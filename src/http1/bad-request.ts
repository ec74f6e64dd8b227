/**
 * The answer to a request that cannot be parsed or came too slowly, on either HTTP/1.1 engine: its
 * status (431 for an oversized head, 408 for a head not complete in time, else 400), a small JSON body
 * with SWY_BAD_REQUEST (SWY_HEADERS_TOO_LARGE for a 431) and the parser's code (`HPE_*`, or the timeout's), and `Connection: close`.
 */

/** The head timeout's code, as node:http reports it (so both engines log and answer the same). */
export const HEADERS_TIMEOUT_CODE = 'ERR_HTTP_REQUEST_TIMEOUT'

export interface BadRequest {
  readonly status: 400 | 408 | 431
  /** The whole response, head and body. */
  readonly text: string
}

/** `code`: llhttp's `HPE_*` code, or one of node:http's timeout codes. */
export function badRequest(code: string): BadRequest {
  let status: BadRequest['status'] = 400
  let reason = 'Bad Request'
  if (code === 'HPE_HEADER_OVERFLOW') {
    status = 431
    reason = 'Request Header Fields Too Large'
  } else if (code === 'ERR_HTTP_REQUEST_TIMEOUT' || code === 'ERR_HTTP_HEADERS_TIMEOUT') {
    status = 408
    reason = 'Request Timeout'
  }
  const swy = status === 431 ? 'SWY_HEADERS_TOO_LARGE' : 'SWY_BAD_REQUEST'
  const body = JSON.stringify({ error: { code: swy, status, message: reason, parser: code } })
  return {
    status,
    text: `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  }
}
