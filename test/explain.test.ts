/**
 * Request explanations through a real load balancer, real upstream servers and a real undici client:
 * who gets the `x-switchyard-explain` header (trusted addresses, the admin token, nobody else), that
 * neither request header reaches a server, the skip reasons (down by health checks, ejected after a
 * refused connect, disabled through the admin API, draining), the sticky decision, a retry after a
 * reset with its reason, the whole account in the access log, and the config test kit's `explain()`
 * giving the same header for the same decision.
 */
import assert from 'node:assert/strict'
import type { IncomingHttpHeaders } from 'node:http'
import { after, before, describe, it } from 'node:test'
import { request } from 'undici'
import { parseExplainHeader } from '../src/explain/index.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { createExplainer } from '../src/testkit/index.js'
import { adminClient } from './helpers/admin.js'
import { deadPort, type Handler, nameHandler, startBackend, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'
import { waitFor } from './helpers/wait.js'

const TOKEN = 'explain-test-admin-token-0123456789'

interface Answer {
  readonly status: number
  readonly explain: string | undefined
  readonly headers: Record<string, string | string[] | undefined>
  readonly body: string
}

async function get(base: string, path: string, headers: Record<string, string> = {}): Promise<Answer> {
  const r = await request(`${base}${path}`, { headers })
  const body = await r.body.text()
  const explain = r.headers['x-switchyard-explain']
  return { status: r.statusCode, explain: typeof explain === 'string' ? explain : undefined, headers: r.headers, body }
}

/** The entries of one key of a header value, as `token(note)` strings. */
function entries(header: string | undefined, key: string): string[] {
  assert.ok(header !== undefined, 'an x-switchyard-explain header')
  return (parseExplainHeader(header).get(key) ?? []).map((e) =>
    e.note === undefined ? e.token : `${e.token}(${e.note})`,
  )
}

/** The request headers the servers saw, in the order the requests came. */
const seen: IncomingHttpHeaders[] = []

/** Answers with the server's name, noting the request's headers in `seen`. */
const noting: Handler = (req, res, b) => {
  seen.push(req.headers)
  nameHandler(req, res, b)
}

const ASK = { 'x-switchyard-explain': '1' }

describe('explain: who gets an explanation, and what reaches the servers', () => {
  let b1: TestBackend
  let b2: TestBackend
  let lb: LoadBalancer
  let trusted: string
  let untrusted: string
  let off: string

  before(async () => {
    b1 = await startBackend('b1', noting)
    b2 = await startBackend('b2', noting)
    const app = { name: 'app', servers: [b1, b2].map((b) => ({ url: b.url, name: b.name })) }
    lb = createLoadBalancer({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [
        {
          name: 'trusted',
          listen: '127.0.0.1:0',
          explain: { trusted: ['127.0.0.1/32'] },
          headers: { request: { set: { 'x-edge': '1' } } },
          routes: [{ name: 'api', match: { pathPrefix: '/api/' }, pool: 'app' }, { pool: 'app' }],
        },
        {
          name: 'untrusted',
          listen: '127.0.0.1:0',
          explain: { trusted: ['192.0.2.0/24'], adminToken: true },
          routes: [{ pool: 'app' }],
        },
        { name: 'off', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] },
      ],
      pools: [app],
    })
    await lb.start()
    const port = (name: string) => `http://127.0.0.1:${lb.addresses()[name]?.port}`
    trusted = port('trusted')
    untrusted = port('untrusted')
    off = port('off')
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all([b1.close(), b2.close()])
  })

  it('explains a request from a trusted address, and the server never sees the header', async () => {
    const before = seen.length
    const r = await get(trusted, '/api/users', ASK)
    assert.equal(r.status, 200)
    assert.deepEqual(entries(r.explain, 'route'), ['api'])
    assert.deepEqual(entries(r.explain, 'filters'), ['headers'])
    assert.deepEqual(entries(r.explain, 'pool'), ['app'])
    assert.deepEqual(entries(r.explain, 'lb'), ['round-robin(rotation)'])
    assert.deepEqual(entries(r.explain, 'picked'), [r.body], 'the server that answered')
    const sent = seen.slice(before)
    assert.equal(sent.length, 1)
    assert.equal(sent[0]?.['x-switchyard-explain'], undefined)
    assert.equal(sent[0]?.['x-edge'], '1', 'the rules ran as for any request')
    // A request that does not ask gets nothing.
    assert.equal((await get(trusted, '/api/users')).explain, undefined)
    assert.deepEqual(entries((await get(trusted, '/other', ASK)).explain, 'route'), ['#1'], 'an unnamed route by index')
  })

  it('ignores the header from an untrusted address, and strips it (and any token) all the same', async () => {
    const before = seen.length
    const r = await get(untrusted, '/', { ...ASK, 'x-switchyard-token': 'not-the-admin-token-at-all' })
    assert.equal(r.status, 200)
    assert.equal(r.explain, undefined)
    const sent = seen.slice(before)
    assert.equal(sent.length, 1)
    assert.equal(sent[0]?.['x-switchyard-explain'], undefined)
    assert.equal(sent[0]?.['x-switchyard-token'], undefined)
  })

  it('explains a request from an untrusted address that carries the admin token, which no server sees', async () => {
    const before = seen.length
    const r = await get(untrusted, '/x', { ...ASK, 'x-switchyard-token': TOKEN, authorization: 'Bearer app-token' })
    assert.equal(r.status, 200)
    assert.deepEqual(entries(r.explain, 'picked'), [r.body])
    const sent = seen.slice(before)
    assert.equal(sent.length, 1)
    assert.equal(sent[0]?.['x-switchyard-token'], undefined)
    assert.equal(sent[0]?.['x-switchyard-explain'], undefined)
    assert.equal(sent[0]?.authorization, 'Bearer app-token', "the application's own credentials pass")
  })

  it("keeps the token's digest out of the admin API's config", async () => {
    const api = adminClient(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
    const config = await api.get('/api/v1/config')
    const explain = config.listeners.find((l: { name: string }) => l.name === 'untrusted').explain
    assert.deepEqual(explain, { trusted: ['192.0.2.0/24'], token: '[redacted]' })
  })

  it('off (no explain on the listener): no answer, the header passes like any other, and a token never', async () => {
    const before = seen.length
    const r = await get(off, '/', { ...ASK, 'x-switchyard-token': TOKEN })
    assert.equal(r.explain, undefined)
    assert.equal(seen.slice(before)[0]?.['x-switchyard-explain'], '1')
    assert.equal(seen.slice(before)[0]?.['x-switchyard-token'], undefined)
  })
})

/** Answers 503 to health checks (`/health`): the check finds it down. */
const sickHandler: Handler = (req, res, b) => {
  if (req.url === '/health') {
    req.resume()
    res.writeHead(503)
    res.end()
    return
  }
  nameHandler(req, res, b)
}

/** Health checks pass; requests are answered by destroying the connection (a reset). */
const resetHandler: Handler = (req, res, b) => {
  if (req.url === '/health') return nameHandler(req, res, b)
  req.socket.destroy()
}

describe('explain: skipped servers, stickiness, retries and the access log', () => {
  const backends: TestBackend[] = []
  let lb: LoadBalancer
  let base: string
  let lines: Record<string, unknown>[]
  let config: ConfigInput

  before(async () => {
    const [ok1, ok2, ok3, drained, sick, resetter, s1, s2] = await Promise.all([
      startBackend('ok1'),
      startBackend('ok2'),
      startBackend('ok3'),
      startBackend('drained'),
      startBackend('sick', sickHandler),
      startBackend('resetter', resetHandler),
      startBackend('s1'),
      startBackend('s2'),
    ])
    backends.push(ok1, ok2, ok3, drained, sick, resetter, s1, s2)
    const dead = await deadPort()
    const logged = memoryLogger()
    lines = logged.lines
    const srv = (b: TestBackend, extra: Record<string, unknown> = {}) => ({ url: b.url, name: b.name, ...extra })
    config = {
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [
        {
          name: 'web',
          listen: '127.0.0.1:0',
          explain: { trusted: ['127.0.0.1/32'] },
          routes: [
            { name: 'checked', match: { pathPrefix: '/checked' }, pool: 'checked' },
            { name: 'sticky', match: { pathPrefix: '/sticky' }, pool: 'sticky' },
            { name: 'flaky', match: { pathPrefix: '/flaky' }, pool: 'flaky' },
            { name: 'app', pool: 'app' },
          ],
        },
      ],
      pools: [
        {
          name: 'app',
          // `dead` first: round-robin's first pick, refused, retried, then ejected for 30 s.
          servers: [
            { url: `http://127.0.0.1:${dead}`, name: 'dead' },
            srv(ok1),
            srv(ok2),
            srv(drained, { drain: true }),
          ],
          ejectOnConnectFailure: { baseEjectionTime: '30s' },
        },
        {
          name: 'checked',
          servers: [srv(ok3), srv(sick)],
          healthCheck: { type: 'http', path: '/health', interval: '50ms', timeout: '500ms', rise: 1, fall: 1 },
        },
        { name: 'sticky', servers: [srv(s1), srv(s2)], sticky: { mode: 'cookie', secret: 'explain-sticky-secret' } },
        { name: 'flaky', servers: [srv(resetter), srv(ok3)] },
      ],
    }
    lb = createLoadBalancer(config, { logger: logged.logger })
    await lb.start()
    base = `http://127.0.0.1:${lb.addresses().web?.port}`
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('a refused connect: the retry and its reason, then the server skipped as ejected; a draining one too', async () => {
    const first = await get(base, '/', ASK)
    assert.equal(first.status, 200)
    assert.deepEqual(entries(first.explain, 'picked'), ['dead'])
    assert.deepEqual(entries(first.explain, 'retries'), ['dead(connect-failure)'])
    assert.deepEqual(entries(first.explain, 'server'), [first.body], 'the server of the last try')
    assert.deepEqual(entries(first.explain, 'skipped'), ['drained(draining)'])
    const next = await get(base, '/', ASK)
    assert.deepEqual(entries(next.explain, 'skipped').sort(), ['dead(ejected)', 'drained(draining)'])
    assert.equal(parseExplainHeader(next.explain ?? '').get('retries'), undefined)
  })

  it('a server disabled through the admin API is skipped as disabled', async () => {
    const api = adminClient(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
    const r = await api.call('PATCH', '/api/v1/pools/app/servers/ok2', { state: 'disabled' })
    assert.equal(r.status, 200)
    try {
      const answer = await get(base, '/', ASK)
      assert.equal(answer.body, 'ok1')
      assert.deepEqual(entries(answer.explain, 'skipped').sort(), [
        'dead(ejected)',
        'drained(draining)',
        'ok2(disabled)',
      ])
    } finally {
      await api.call('PATCH', '/api/v1/pools/app/servers/ok2', { state: 'active' })
    }
  })

  it('a server that health checks find down is skipped as down', async () => {
    await waitFor(async () => {
      const r = await get(base, '/checked', ASK)
      return entries(r.explain, 'skipped').includes('sick(down)')
    }, 'sick reported down in the explanation')
    const r = await get(base, '/checked', ASK)
    assert.deepEqual(entries(r.explain, 'picked'), ['ok3'])
  })

  it('the sticky decision: a new session, then the cookie holds', async () => {
    const first = await get(base, '/sticky', ASK)
    assert.deepEqual(entries(first.explain, 'sticky'), ['cookie(new)'])
    const setCookie = first.headers['set-cookie']
    const cookie = (Array.isArray(setCookie) ? setCookie[0] : setCookie)?.split(';')[0]
    assert.ok(cookie, 'a Set-Cookie binding')
    for (let i = 0; i < 3; i++) {
      const again = await get(base, '/sticky', { ...ASK, cookie })
      assert.equal(again.body, first.body)
      assert.deepEqual(entries(again.explain, 'sticky'), [`cookie(hit ${first.body})`])
      assert.deepEqual(entries(again.explain, 'lb'), ['round-robin(sticky)'])
    }
  })

  it('a retry after a reset appears with its reason, and the access line holds the whole account', async () => {
    let answer: Answer | undefined
    for (let i = 0; i < 4 && answer === undefined; i++) {
      const r = await get(base, '/flaky', ASK)
      if (entries(r.explain, 'picked')[0] === 'resetter') answer = r
    }
    assert.ok(answer, 'round-robin reaches the resetting server within 4 requests')
    assert.equal(answer.status, 200)
    assert.equal(answer.body, 'ok3')
    assert.deepEqual(entries(answer.explain, 'retries'), ['resetter(reset)'])
    assert.deepEqual(entries(answer.explain, 'server'), ['ok3'])
    const id = answer.headers['x-request-id']
    await waitFor(() => lines.some((l) => l.type === 'access' && l.requestId === id), 'the access line')
    const line = lines.find((l) => l.type === 'access' && l.requestId === id) as Record<string, unknown>
    const explain = line.explain as Record<string, unknown>
    assert.equal(explain.grant, 'trusted')
    assert.equal(explain.route, 'flaky')
    assert.equal(explain.pool, 'flaky')
    const choice = explain.choice as Record<string, unknown>
    assert.equal(choice.picked, 'resetter')
    assert.equal(choice.algorithm, 'round-robin')
    assert.deepEqual(
      (explain.tries as Record<string, unknown>[]).map((t) => [t.server, t.code ?? t.status, t.retry]),
      [
        ['resetter', 'SWY_UPSTREAM_RESET', 'reset'],
        ['ok3', 200, undefined],
      ],
    )
    // A request that did not ask has no `explain` in its line.
    const plain = await get(base, '/flaky')
    const plainId = plain.headers['x-request-id']
    await waitFor(() => lines.some((l) => l.type === 'access' && l.requestId === plainId), 'the plain access line')
    assert.equal(lines.find((l) => l.requestId === plainId)?.explain, undefined)
  })

  it('an answer of its own (no server can take it) is explained too, with every server skipped', async () => {
    const api = adminClient(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
    for (const s of ['ok1', 'ok2']) await api.call('PATCH', `/api/v1/pools/app/servers/${s}`, { state: 'disabled' })
    try {
      const r = await get(base, '/', ASK)
      assert.equal(r.status, 503)
      assert.deepEqual(entries(r.explain, 'picked'), ['-'])
      assert.deepEqual(entries(r.explain, 'error'), ['SWY_NO_SERVER'])
      assert.deepEqual(entries(r.explain, 'skipped').sort(), [
        'dead(ejected)',
        'drained(draining)',
        'ok1(disabled)',
        'ok2(disabled)',
      ])
    } finally {
      for (const s of ['ok1', 'ok2']) await api.call('PATCH', `/api/v1/pools/app/servers/${s}`, { state: 'active' })
    }
  })
})

describe('explain: the config test kit gives the same header as a live request', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let config: ConfigInput

  before(async () => {
    backends = await Promise.all(['m1', 'm2', 'm3', 'm4'].map((n) => startBackend(n)))
    config = {
      listeners: [
        {
          name: 'web',
          listen: '127.0.0.1:0',
          explain: { trusted: ['127.0.0.1/32'] },
          headers: { request: { set: { 'x-edge': '1' } } },
          routes: [
            { name: 'old', match: { pathPrefix: '/old/' }, redirect: { prefix: '/new/', status: 301 } },
            {
              name: 'users',
              match: { pathPrefix: '/users/' },
              pool: 'hashed',
              headers: { request: { remove: ['cookie'] } },
            },
          ],
        },
      ],
      pools: [
        {
          name: 'hashed',
          balance: { algorithm: 'maglev', hashOn: 'header:x-user' },
          servers: backends.map((b, i) => ({ url: b.url, name: b.name, drain: i === 3 })),
        },
      ],
    }
    lb = createLoadBalancer(config)
    await lb.start()
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('for proxied requests (route, rules, pool, hash, pick, skipped) and for a rule that answers', async () => {
    const base = `http://127.0.0.1:${lb.addresses().web?.port}`
    const explainer = await createExplainer(config)
    try {
      for (const user of ['alice', 'bob', 'carol', 'dave']) {
        const live = await get(base, '/users/1', { ...ASK, 'x-user': user })
        const kit = await explainer.explain({ path: '/users/1', headers: { 'x-user': user } })
        assert.equal(kit.header, live.explain, user)
        assert.equal(kit.choice?.picked, live.body)
        assert.deepEqual(
          kit.choice?.skipped.map((s) => s.server),
          ['m4'],
        )
      }
      const live = await get(base, '/old/x', ASK)
      assert.equal(live.status, 301)
      const kit = await explainer.explain({ path: '/old/x' })
      assert.equal(kit.header, live.explain)
      assert.deepEqual(entries(live.explain, 'filters'), ['headers', 'redirect(answered)'])
    } finally {
      await explainer.close()
    }
  })
})

describe('explain: a queued request, and failures that are not retried', () => {
  let held: TestBackend
  let resetter: TestBackend
  let lb: LoadBalancer
  let base: string
  let lines: Record<string, unknown>[]
  /** Responses `held` keeps back until released. */
  const waiting: (() => void)[] = []

  before(async () => {
    held = await startBackend('held', (req, res, b) => {
      waiting.push(() => nameHandler(req, res, b))
    })
    resetter = await startBackend('resetter', resetHandler)
    const logged = memoryLogger()
    lines = logged.lines
    lb = createLoadBalancer(
      {
        listeners: [
          {
            name: 'web',
            listen: '127.0.0.1:0',
            access: { allow: ['127.0.0.0/8'] },
            explain: { trusted: ['127.0.0.1/32'] },
            routes: [
              { name: 'one', match: { pathPrefix: '/one' }, pool: 'one' },
              { name: 'lonely', pool: 'lonely' },
            ],
          },
        ],
        pools: [
          {
            name: 'one',
            servers: [{ url: held.url, name: 'held', maxConnections: 1, maxPending: 0 }],
            queue: { size: 4, timeout: '10s' },
            // One client may hold the whole (one-connection) pool.
            connections: { maxClientShare: 1 },
          },
          { name: 'lonely', servers: [{ url: resetter.url, name: 'resetter' }] },
        ],
      },
      { logger: logged.logger },
    )
    await lb.start()
    base = `http://127.0.0.1:${lb.addresses().web?.port}`
  })
  after(async () => {
    for (const release of waiting.splice(0)) release()
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all([held.close(), resetter.close()])
  })

  it('says how long a request waited in the queue before its server took it', async () => {
    const first = get(base, '/one')
    await waitFor(() => waiting.length === 1, 'the first request at the server')
    const second = get(base, '/one', ASK)
    await waitFor(() => lb.poolReports().find((p) => p.name === 'one')?.queued === 1, 'the second request queued')
    waiting.shift()?.()
    await waitFor(() => waiting.length === 1, 'the second request at the server')
    waiting.shift()?.()
    assert.equal((await first).explain, undefined)
    const r = await second
    assert.equal(r.status, 200)
    assert.deepEqual(entries(r.explain, 'filters'), ['access'])
    assert.deepEqual(entries(r.explain, 'picked'), ['held'])
    assert.match(entries(r.explain, 'queued')[0] ?? '', /^\d+(\.\d)?ms$/)
    const id = r.headers['x-request-id']
    await waitFor(() => lines.some((l) => l.requestId === id), 'the access line')
    const explain = lines.find((l) => l.requestId === id)?.explain as { choice: { queuedMs: number } }
    assert.equal(typeof explain.choice.queuedMs, 'number')
  })

  it('a reset with no other server: decided for a retry, but no server was left', async () => {
    const r = await get(base, '/', ASK)
    assert.equal(r.status, 502)
    assert.deepEqual(entries(r.explain, 'retries'), ['resetter(reset)'])
    assert.deepEqual(entries(r.explain, 'noRetry'), ['no-server'])
    assert.deepEqual(entries(r.explain, 'error'), ['SWY_UPSTREAM_RESET'])
  })

  it('a reset of a POST: not retried, and why', async () => {
    const res = await request(`${base}/`, { method: 'POST', headers: ASK, body: 'x' })
    await res.body.text()
    assert.equal(res.statusCode, 502)
    const header = res.headers['x-switchyard-explain'] as string
    assert.deepEqual(entries(header, 'noRetry'), ['not-idempotent'])
    assert.equal(parseExplainHeader(header).get('retries'), undefined)
    const id = res.headers['x-request-id']
    await waitFor(() => lines.some((l) => l.requestId === id), 'the access line')
    const line = lines.find((l) => l.requestId === id) as Record<string, unknown>
    assert.equal(line.level, 'warn', 'a failure on the server side')
    assert.deepEqual((line.explain as { tries: unknown }).tries, [{ server: 'resetter', code: 'SWY_UPSTREAM_RESET' }])
  })
})
