import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type RuntimeConfig, validateConfig } from '../config/index.js'
import { SwitchyardError } from '../core/errors.js'
import { definePlugin } from '../plugins/index.js'
import { createExplainer, type Explainer, explain } from './explain.js'

const CONFIG = {
  listeners: [
    {
      name: 'edge',
      listen: '127.0.0.1:0',
      forwarded: { trustedProxies: ['10.0.0.0/8'] },
      headers: { request: { set: { 'x-edge': '1' } } },
      routes: [
        { name: 'old', match: { pathPrefix: '/old/' }, redirect: { prefix: '/new/', status: 301 } },
        { name: 'health', match: { path: '/healthz' }, respond: { status: 200, body: 'ok' } },
        {
          name: 'api',
          match: { host: 'api.example.com', pathPrefix: '/api/' },
          pool: 'api',
          rewrite: { stripPrefix: '/api' },
          headers: {
            request: {
              set: { 'x-client': '{client_ip}', 'x-served-by': '{server}' },
              remove: ['cookie'],
            },
          },
        },
        { name: 'writes', match: { method: ['POST', 'PUT'], headers: { 'x-tenant': '*' } }, pool: 'users' },
        {
          name: 'shop',
          match: { pathPrefix: '/shop/' },
          pools: [
            { pool: 'stable', weight: 90 },
            { pool: 'canary', weight: 10 },
          ],
        },
        {
          name: 'cart',
          match: { pathPrefix: '/cart/' },
          pools: [
            { pool: 'cart-a', weight: 50 },
            { pool: 'cart-b', weight: 50 },
          ],
        },
        { name: 'tenants', match: { host: '*.tenants.example.com' }, pool: 'ips' },
        { match: { host: 'www.example.com' }, pool: 'web' },
      ],
    },
    {
      name: 'tls-redirect',
      listen: '127.0.0.1:0',
      redirect: { scheme: 'https', status: 308 },
      routes: [{ pool: 'web' }],
    },
  ],
  pools: [
    {
      name: 'api',
      balance: { algorithm: 'ring-hash', hashOn: 'header:x-user' },
      servers: [
        { url: 'http://127.0.0.1:4001', name: 'api-1' },
        { url: 'http://127.0.0.1:4002', name: 'api-2' },
        { url: 'http://127.0.0.1:4003', name: 'api-3' },
      ],
    },
    { name: 'users', servers: ['http://127.0.0.1:5001', 'http://127.0.0.1:5002'] },
    { name: 'stable', servers: ['http://127.0.0.1:6001'] },
    { name: 'canary', servers: ['http://127.0.0.1:6002'] },
    { name: 'cart-a', sticky: { mode: 'client-ip' }, servers: ['http://127.0.0.1:7001', 'http://127.0.0.1:7002'] },
    { name: 'cart-b', sticky: { mode: 'client-ip' }, servers: ['http://127.0.0.1:7003', 'http://127.0.0.1:7004'] },
    {
      name: 'ips',
      balance: 'ip-hash',
      servers: ['http://127.0.0.1:8001', 'http://127.0.0.1:8002', 'http://127.0.0.1:8003'],
    },
    { name: 'web', preserveHost: false, servers: ['http://127.0.0.1:9001', 'http://127.0.0.1:9002'] },
  ],
}

function runtime(input: unknown): RuntimeConfig {
  const r = validateConfig(input)
  assert.ok(r.ok, r.ok ? '' : JSON.stringify(r.issues))
  return r.config
}

describe('explain()', () => {
  let ex: Explainer
  before(async () => {
    ex = await createExplainer(runtime(CONFIG))
  })
  after(() => ex.close())

  it('routes by host and path, rewrites, and sets headers with placeholders', async () => {
    const e = await ex.explain({
      host: 'api.example.com',
      path: '/api/users?id=7',
      clientIp: '203.0.113.9',
      headers: { 'x-user': 'alice', cookie: 'a=1' },
    })
    assert.equal(e.route, 'api')
    assert.equal(e.routeIndex, 2)
    assert.equal(e.pool, 'api')
    assert.equal(e.upstreamPath, '/users?id=7')
    const h = e.upstreamHeaders ?? {}
    assert.equal(h['x-client'], '203.0.113.9')
    assert.equal(h['x-edge'], '1', 'the listener-level headers rule applies')
    assert.equal(h['x-served-by'], e.server, '{server} is rendered for the chosen server')
    assert.equal(h.cookie, undefined, 'removed')
    assert.equal(h['x-forwarded-for'], '203.0.113.9')
    assert.equal(h.host, 'api.example.com', 'preserveHost by default')
    assert.equal(e.status, undefined)
    assert.deepEqual(
      e.steps.map((s) => s.step),
      ['listener', 'client', 'route', 'rules', 'rules', 'rules', 'pool', 'server'],
    )
    const route = e.steps.find((s) => s.step === 'route')
    assert.match(route?.reason ?? '', /route 2 "api": host api\.example\.com, pathPrefix \/api\/ matched/)
    assert.match(route?.reason ?? '', /not route 0 "old" \(pathPrefix \/old\/\), route 1 "health" \(path \/healthz\)/)
    const rewrite = e.steps.find((s) => s.result === 'rewrite')
    assert.match(rewrite?.reason ?? '', /rewrite \(stripPrefix \/api\): path \/api\/users\?id=7 → \/users\?id=7/)
    const headers = e.steps.filter((s) => s.result === 'headers').map((s) => s.reason)
    assert.ok(
      headers.some((r) => r.includes('remove cookie') && r.includes('x-client: 203.0.113.9')),
      headers.join('\n'),
    )
    assert.ok(headers.some((r) => r.includes('x-served-by: {server} (rendered for the chosen server)')))
  })

  it('picks the same server of a hashing pool for the same key, and says so', async () => {
    const pick = async (user: string) =>
      (await ex.explain({ host: 'api.example.com', path: '/api/x', headers: { 'x-user': user } })).server
    const first = await pick('alice')
    for (let i = 0; i < 5; i++) assert.equal(await pick('alice'), first)
    const servers = new Set<string | undefined>()
    for (let i = 0; i < 40; i++) servers.add(await pick(`user-${i}`))
    assert.ok(servers.size > 1, 'different keys reach different servers')
    const e = await ex.explain({ host: 'api.example.com', path: '/api/x', headers: { 'x-user': 'alice' } })
    assert.equal(e.serverDeterministic, true)
    assert.match(e.steps.at(-1)?.reason ?? '', /ring-hash on header:x-user: the hash of "alice" chooses it/)
    const ip = await ex.explain({ host: 'a.tenants.example.com', clientIp: '198.51.100.4' })
    assert.equal(ip.pool, 'ips')
    assert.equal(ip.serverDeterministic, true)
    assert.equal((await ex.explain({ host: 'b.tenants.example.com', clientIp: '198.51.100.4' })).server, ip.server)
  })

  it('routes by method and header presence', async () => {
    const e = await ex.explain({ method: 'put', host: 'x.example.com', path: '/t', headers: { 'X-Tenant': 'acme' } })
    assert.equal(e.route, 'writes')
    assert.equal(e.pool, 'users')
    assert.equal(e.serverDeterministic, false, 'round-robin does not choose by the request')
    assert.match(e.steps.at(-1)?.reason ?? '', /round-robin: the first choice of a fresh pool/)
    assert.match(e.steps.find((s) => s.step === 'route')?.reason ?? '', /method POST or PUT, header x-tenant present/)
    const get = await ex.explain({ method: 'GET', host: 'www.example.com', headers: { 'x-tenant': 'acme' } })
    assert.equal(get.routeIndex, 7)
    assert.equal(get.route, 7, 'a route without a name is given by its index')
  })

  it('answers a redirect with its status and Location', async () => {
    const e = await ex.explain({ host: 'www.example.com', path: '/old/page?x=1' })
    assert.equal(e.route, 'old')
    assert.equal(e.status, 301)
    assert.equal(e.location, 'http://www.example.com/new/page?x=1')
    assert.equal(e.pool, undefined)
    assert.equal(e.upstreamPath, undefined)
    assert.match(e.steps.at(-1)?.reason ?? '', /route 0 rule redirect answered 301 → http:\/\/www\.example\.com\/new\//)
  })

  it('answers a respond rule, and a listener-level redirect before routing', async () => {
    const e = await ex.explain({ host: 'www.example.com', path: '/healthz' })
    assert.equal(e.route, 'health')
    assert.equal(e.status, 200)
    assert.equal(e.location, undefined)
    const tls = await ex.explain({ listener: 'tls-redirect', host: 'www.example.com', path: '/a?b' })
    assert.equal(tls.status, 308)
    assert.equal(tls.location, 'https://www.example.com/a?b')
    assert.equal(tls.route, undefined, 'answered in onRequest, before routing')
    assert.deepEqual(
      tls.steps.map((s) => s.step),
      ['listener', 'client', 'rules', 'answer'],
    )
  })

  it('reports no route as 404 SWY_NO_ROUTE, with why each route did not match', async () => {
    const e = await ex.explain({ host: 'nowhere.test', path: '/' })
    assert.equal(e.status, 404)
    assert.equal(e.error, 'SWY_NO_ROUTE')
    assert.equal(e.route, undefined)
    const route = e.steps.find((s) => s.step === 'route')
    assert.equal(route?.result, null)
    assert.match(route?.reason ?? '', /route 6 "tenants" \(host \*\.tenants\.example\.com\), route 7 \(host www/)
  })

  it('a random split reports the pools it may choose; a sticky one is fixed by the client address', async () => {
    const shop = await ex.explain({ host: 'www.example.com', path: '/shop/cart' })
    assert.ok(shop.pool === 'stable' || shop.pool === 'canary')
    assert.deepEqual(shop.pools, [
      { pool: 'stable', weight: 90 },
      { pool: 'canary', weight: 10 },
    ])
    assert.match(shop.steps.find((s) => s.step === 'pool')?.reason ?? '', /drawn at random per request/)
    const cart = await ex.explain({ host: 'www.example.com', path: '/cart/1', clientIp: '192.0.2.55' })
    assert.equal(cart.pools, undefined)
    for (let i = 0; i < 5; i++) {
      const again = await ex.explain({ host: 'www.example.com', path: '/cart/2', clientIp: '192.0.2.55' })
      assert.equal(again.pool, cart.pool)
      assert.equal(again.server, cart.server)
    }
    assert.match(cart.steps.find((s) => s.step === 'pool')?.reason ?? '', /sticky: the hash of client 192\.0\.2\.55/)
    assert.equal(cart.serverDeterministic, true)
  })

  it('resolves the client address through trusted proxies', async () => {
    const e = await ex.explain({
      host: 'www.example.com',
      clientIp: '10.1.2.3',
      headers: { 'x-forwarded-for': '198.51.100.20' },
    })
    assert.equal(e.clientIp, '198.51.100.20')
    assert.equal(e.upstreamHeaders?.['x-forwarded-for'], '198.51.100.20, 10.1.2.3')
    assert.equal(e.upstreamHeaders?.host, `${e.server}`, 'preserveHost: false sends the server address')
    assert.match(e.steps[1]?.reason ?? '', /trusted proxy/)
  })

  it('runs plugins in the pipeline and names them', async () => {
    const plugin = definePlugin({
      name: 'tenant-router',
      async onRoute(ctx) {
        if (ctx.request.header('x-beta') === '1') ctx.usePool('canary')
      },
    })
    const e = await explain(CONFIG, { host: 'www.example.com', headers: { 'x-beta': '1' } }, { plugins: [plugin] })
    assert.equal(e.pool, 'canary')
    assert.match(e.steps.find((s) => s.step === 'pool')?.reason ?? '', /plugin tenant-router chose canary \(usePool\)/)
    const failing = definePlugin({
      name: 'broken',
      onRequest() {
        throw new Error('boom')
      },
    })
    const f = await explain(CONFIG, { host: 'www.example.com' }, { plugins: [failing] })
    assert.equal(f.status, 500)
    assert.equal(f.error, 'SWY_FILTER_ERROR')
    assert.match(f.steps.at(-1)?.reason ?? '', /plugin broken failed: boom/)
  })

  it('validates raw input first, as createLoadBalancer does', async () => {
    await assert.rejects(
      explain({ listeners: [], pools: 'nope' }, {}),
      (err: unknown) => err instanceof SwitchyardError && err.code === 'SWY_CONFIG_INVALID',
    )
    const e = await explain(CONFIG, { host: 'www.example.com', path: '/healthz' })
    assert.equal(e.status, 200)
  })

  it('rejects an unknown listener and a bad client address', async () => {
    await assert.rejects(ex.explain({ listener: 'nope' }), /no listener named "nope"/)
    await assert.rejects(ex.explain({ clientIp: 'localhost' }), /expected an IP address/)
  })
})

describe('explain(): the shared account of live explanations', () => {
  it('gives the choice and the x-switchyard-explain header a live request would get', async () => {
    const e = await explain(CONFIG, { host: 'api.example.com', path: '/api/x', headers: { 'x-user': 'alice' } })
    assert.equal(e.choice?.algorithm, 'ring-hash')
    assert.equal(e.choice?.method, 'hash')
    assert.equal(e.choice?.hashOn, 'header:x-user')
    assert.equal(e.choice?.picked, e.server)
    assert.equal(e.choice?.hash?.unit, 'point')
    assert.deepEqual(e.choice?.skipped, [])
    const h = e.choice?.hash
    assert.equal(
      e.header,
      `route=api; filters=headers,rewrite,headers; pool=api; lb=ring-hash(hash header:x-user hash ${h?.value} point ${h?.at}/${h?.size}); picked=${e.server}`,
    )
    const redirect = await explain(CONFIG, { host: 'www.example.com', path: '/old/page' })
    assert.equal(redirect.choice, undefined)
    assert.equal(redirect.header, 'route=old; filters=headers,redirect(answered)')
    const none = await explain(CONFIG, { host: 'nowhere.test' })
    assert.equal(none.header, 'route=-; error=SWY_NO_ROUTE', 'the listener rules run after routing')
  })

  it('names a draining server as skipped, and a sticky decision', async () => {
    const config = {
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          sticky: { mode: 'cookie', secret: 'a-secret-of-16-or-more' },
          servers: [
            { url: 'http://127.0.0.1:4001', name: 'a' },
            { url: 'http://127.0.0.1:4002', name: 'b', drain: true },
          ],
        },
      ],
    }
    const e = await explain(config, {})
    assert.deepEqual(e.choice?.skipped, [{ server: 'b', reason: 'draining' }])
    assert.deepEqual(e.choice?.sticky, { mode: 'cookie', decision: 'new', setCookie: true })
    assert.equal(
      e.header,
      'route=#0; pool=p; lb=round-robin(rotation); sticky=cookie(new); picked=a; scores=a(weight 1); skipped=b(draining)',
    )
  })
})
