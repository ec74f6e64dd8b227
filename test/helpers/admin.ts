/** A client of the admin API for tests: JSON calls with the token, and the event stream. */
import { type ConfigInput, createLoadBalancer, type LoadBalancer, type LoadBalancerOptions } from '../../src/index.js'
import type { SwitchyardEvent } from '../../src/server/events.js'

/** A JSON answer, read field by field by the tests' assertions (which are its checks). */
// biome-ignore lint/suspicious/noExplicitAny: the tests assert on the fields they read
type Json = any

export interface AdminAnswer<T = unknown> {
  readonly status: number
  readonly headers: Headers
  readonly body: T
}

export interface AdminClient {
  call<T = Json>(method: string, path: string, body?: unknown, contentType?: string): Promise<AdminAnswer<T>>
  get<T = Json>(path: string): Promise<T>
}

/** `base`: `http://127.0.0.1:PORT`. A string body is sent as is (with `contentType`), anything else as JSON. */
export function adminClient(base: string, token: string | undefined): AdminClient {
  const auth: Record<string, string> = token === undefined ? {} : { authorization: `Bearer ${token}` }
  const call = async (method: string, path: string, body?: unknown, contentType?: string) => {
    const headers: Record<string, string> = { ...auth }
    let payload: string | undefined
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body)
      headers['content-type'] = contentType ?? 'application/json'
    }
    const r = await fetch(`${base}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) })
    const text = await r.text()
    let parsed: unknown = text
    if ((r.headers.get('content-type') ?? '').startsWith('application/json')) parsed = JSON.parse(text)
    return { status: r.status, headers: r.headers, body: parsed as Json }
  }
  return {
    call,
    async get(path) {
      const r = await call('GET', path)
      if (r.status !== 200) throw new Error(`GET ${path}: ${r.status} ${JSON.stringify(r.body)}`)
      return r.body
    },
  }
}

export interface EventStream {
  /** Events of the log received so far, oldest first. */
  readonly events: SwitchyardEvent[]
  /** `stats` events received so far (they have no id), oldest first. */
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert on the fields they read
  readonly stats: any[]
  /** Resolves with the first event (received or to come) that `pred` accepts; rejects after `timeoutMs`. */
  next(pred: (e: SwitchyardEvent) => boolean, what: string, timeoutMs?: number): Promise<SwitchyardEvent>
  /** Resolves with the first `stats` event (received or to come) that `pred` accepts; rejects after `timeoutMs`. */
  // biome-ignore lint/suspicious/noExplicitAny: the tests assert on the fields they read
  nextStats(pred: (e: any, index: number) => boolean, what: string, timeoutMs?: number): Promise<any>
  close(): void
}

/** Opens `GET /api/v1/events` and parses it as it comes. */
export async function eventStream(
  base: string,
  token: string | undefined,
  headers: Record<string, string> = {},
): Promise<EventStream> {
  const controller = new AbortController()
  const r = await fetch(`${base}/api/v1/events`, {
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
    signal: controller.signal,
  })
  if (r.status !== 200 || r.body === null) throw new Error(`event stream: ${r.status}`)
  const events: SwitchyardEvent[] = []
  const stats: unknown[] = []
  const waiters = new Set<() => void>()
  void (async () => {
    const decoder = new TextDecoder()
    let buffer = ''
    try {
      for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true })
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data: '))
            .map((l) => l.slice(6))
            .join('\n')
          if (data === '') continue
          const event = JSON.parse(data) as { type: string }
          if (event.type === 'stats') stats.push(event)
          else events.push(event as SwitchyardEvent)
        }
        for (const w of waiters) w()
      }
    } catch {
      // aborted
    }
  })()
  const wait = <T>(list: T[], pred: (e: T, index: number) => boolean, what: string, timeoutMs: number) => {
    const found = list.find(pred)
    if (found) return Promise.resolve(found)
    return new Promise<T>((resolve, reject) => {
      const check = () => {
        const e = list.find(pred)
        if (e === undefined) return
        clearTimeout(timer)
        waiters.delete(check)
        resolve(e)
      }
      const timer = setTimeout(() => {
        waiters.delete(check)
        reject(new Error(`no ${what} event within ${timeoutMs} ms; got ${JSON.stringify(list).slice(0, 2000)}`))
      }, timeoutMs)
      waiters.add(check)
    })
  }
  return {
    events,
    stats,
    next: (pred, what, timeoutMs = 5000) => wait(events, pred, what, timeoutMs),
    nextStats: (pred, what, timeoutMs = 5000) => wait(stats, pred, what, timeoutMs),
    close: () => controller.abort(),
  }
}

/**
 * Starts a load balancer with an admin listener: `web` is the URL of its listener named `web`, `admin`
 * the admin API's, `api` a client of it with `token`.
 */
export async function startWithAdmin(
  config: ConfigInput,
  token: string | undefined,
  options: LoadBalancerOptions = {},
): Promise<{ lb: LoadBalancer; web: string; admin: string; api: AdminClient }> {
  const lb = createLoadBalancer(config, options)
  await lb.start()
  const web = `http://127.0.0.1:${lb.addresses().web?.port}`
  const admin = `http://127.0.0.1:${lb.adminAddress()?.port}`
  return { lb, web, admin, api: adminClient(admin, token) }
}
