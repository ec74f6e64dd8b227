/**
 * A response head as the `onResponse` and `responseBody` phases change it: the status and a flat
 * `[name, value, ...]` header array, with case-insensitive lookups. Also the flat-array removal the
 * request draft (PipelineContext) uses.
 */
import { headerValue } from '../balancer/hash-key.js'
import type { ResponseDraft } from '../filters/types.js'

/**
 * Removes every header named `name` (any case) from a flat array, in place. Returns the index the
 * first removed pair was at (the entries before it did not move), or -1 when none was there.
 */
export function removeHeaders(flat: string[], name: string): number {
  const lower = name.toLowerCase()
  let first = -1
  for (let i = flat.length - 2; i >= 0; i -= 2) {
    const n = flat[i] as string
    if (n.length === lower.length && n.toLowerCase() === lower) {
      flat.splice(i, 2)
      first = i
    }
  }
  return first
}

export class HeadDraft implements ResponseDraft {
  status: number
  readonly headers: string[]

  constructor(status: number, headers: string[]) {
    this.status = status
    this.headers = headers
  }

  header(name: string): string | undefined {
    return headerValue(this.headers, name.toLowerCase())
  }

  setHeader(name: string, value: string): void {
    removeHeaders(this.headers, name)
    this.headers.push(name, value)
  }

  addHeader(name: string, value: string): void {
    this.headers.push(name, value)
  }

  removeHeader(name: string): void {
    removeHeaders(this.headers, name)
  }
}
