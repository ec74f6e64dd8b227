/**
 * The responses Switchyard writes itself: errors (status from the one code table, a small JSON body,
 * or text for clients that ask for it), and the answers of filters (`respond` verdicts).
 */
import { errorBody, errorText, type SwitchyardError } from '../core/errors.js'
import type { Respond } from '../filters/types.js'
import { grpcError } from '../http2/grpc.js'

export interface OwnResponse {
  readonly status: number
  /** `[name, value, ...]`, Content-Length included. */
  readonly headers: string[]
  readonly body: string | Uint8Array
  /** Trailers after the body (a gRPC status). */
  readonly trailers?: [string, string][] | undefined
}

/** An error response: JSON unless the client prefers text/plain. */
export function errorResponse(err: SwitchyardError, requestId: string, accept: string | undefined): OwnResponse {
  const plain = accept?.includes('text/plain') === true && !accept.includes('json')
  const body = plain ? errorText(err, requestId) : errorBody(err, requestId)
  return {
    status: err.status,
    headers: [
      'content-type',
      plain ? 'text/plain; charset=utf-8' : 'application/json',
      'content-length',
      String(Buffer.byteLength(body)),
      'cache-control',
      'no-store',
    ],
    body,
  }
}

/**
 * An error answered to a gRPC call: HTTP 200 and the status in trailers (http2/grpc.ts), which is what
 * a gRPC client reads; an HTTP status alone would reach it as a vaguer UNAVAILABLE or UNKNOWN.
 */
export function grpcErrorResponse(err: SwitchyardError, requestId: string): OwnResponse {
  const { headers, trailers } = grpcError(err, requestId)
  return { status: 200, headers, body: '', trailers }
}

/** The response a filter's `respond` verdict asks for. */
export function verdictResponse(verdict: Respond): OwnResponse {
  const body = verdict.body ?? ''
  const headers: string[] = []
  let typed = false
  for (const [name, value] of Object.entries(verdict.headers ?? {})) {
    const lower = name.toLowerCase()
    if (lower === 'content-length' || lower === 'transfer-encoding') continue
    if (lower === 'content-type') typed = true
    headers.push(name, value)
  }
  const length = typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
  if (!typed && length > 0) headers.push('content-type', 'text/plain; charset=utf-8')
  headers.push('content-length', String(length))
  return { status: verdict.status, headers, body }
}
