/**
 * The dashboard's only way to the data: the admin API, with the token from sessionStorage in an
 * Authorization header. The token is never put in a URL, and the event stream is read with fetch()
 * and a stream reader, since EventSource cannot send headers.
 */
import type { LoggedEvent, StatsEvent } from './types.js'

/** Where the token is kept: sessionStorage, so it lasts as long as the tab and no longer. */
export const TOKEN_KEY = 'switchyard.adminToken'

/** The admin API answered 401: no token, or the wrong one. */
export class Unauthorized extends Error {}

/** Any other answer than 2xx, with the API's `error` text. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

export function setToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token)
}

export function clearToken(): void {
  sessionStorage.removeItem(TOKEN_KEY)
}

function headers(extra: Record<string, string> = {}): Record<string, string> {
  const token = getToken()
  return token === null || token === '' ? extra : { ...extra, authorization: `Bearer ${token}` }
}

/** One call: the parsed JSON answer; Unauthorized on 401, ApiError on any other failure. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = { method, cache: 'no-store', headers: headers() }
  if (body !== undefined) {
    init.headers = headers({ 'content-type': 'application/json' })
    init.body = JSON.stringify(body)
  }
  const r = await fetch(path, init)
  if (r.status === 401) throw new Unauthorized('the admin API refused the token')
  const text = await r.text()
  let data: unknown = null
  if ((r.headers.get('content-type') ?? '').startsWith('application/json') && text !== '') data = JSON.parse(text)
  if (!r.ok) {
    const error = (data as { error?: string } | null)?.error
    throw new ApiError(r.status, error ?? `${r.status} ${r.statusText}`)
  }
  return data as T
}

/** A server of a pool in a path: both names percent-encoded. */
export function serverPath(pool: string, server: string): string {
  return `/api/v1/pools/${encodeURIComponent(pool)}/servers/${encodeURIComponent(server)}`
}

export interface StreamHandlers {
  /** The stream is open (again). */
  open(): void
  /** It broke; the next try is in `retryMs`. */
  down(retryMs: number): void
  event(e: LoggedEvent): void
  stats(e: StatsEvent): void
  unauthorized(): void
}

/**
 * Follows `GET /api/v1/events` until `signal` aborts: parses the Server-Sent Events as they come, and
 * after a break opens it again (after the `retry:` the server gave) with `Last-Event-ID`, so that only
 * the events missed come again. Stops on a 401.
 */
export async function follow(on: StreamHandlers, signal: AbortSignal): Promise<void> {
  let lastId: string | undefined
  let retryMs = 2000
  while (!signal.aborted) {
    try {
      const r = await fetch('/api/v1/events', {
        headers: headers(lastId === undefined ? {} : { 'last-event-id': lastId }),
        cache: 'no-store',
        signal,
      })
      if (r.status === 401) return on.unauthorized()
      if (!r.ok || r.body === null) throw new ApiError(r.status, `event stream: ${r.status}`)
      on.open()
      const reader = r.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += value
        let end = buffer.indexOf('\n\n')
        while (end >= 0) {
          const block = parseBlock(buffer.slice(0, end))
          buffer = buffer.slice(end + 2)
          end = buffer.indexOf('\n\n')
          if (block.retry !== undefined) retryMs = block.retry
          if (block.data === undefined) continue
          if (block.event === 'stats') on.stats(JSON.parse(block.data) as StatsEvent)
          else {
            if (block.id !== undefined) lastId = block.id
            on.event(JSON.parse(block.data) as LoggedEvent)
          }
        }
      }
    } catch {
      if (signal.aborted) return
    }
    on.down(retryMs)
    await new Promise((resolve) => setTimeout(resolve, retryMs))
  }
}

interface Block {
  event?: string
  data?: string
  id?: string
  retry?: number
}

/** One event of the stream: its fields (comments skipped, `data` lines joined). */
function parseBlock(text: string): Block {
  const block: Block = {}
  for (const raw of text.split('\n')) {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'data') block.data = block.data === undefined ? value : `${block.data}\n${value}`
    else if (field === 'event') block.event = value
    else if (field === 'id') block.id = value
    else if (field === 'retry' && /^\d+$/.test(value)) block.retry = Number(value)
  }
  return block
}
