/**
 * Explanations without sockets: the header and JSON forms (their order, escaping and bounds), who may
 * ask (trusted addresses, the admin token, the headers removed), and describeChoice over real pools
 * (skip reasons, scores and runner-up, hashing, sticky decisions). test/explain.test.ts runs them
 * through a load balancer with real servers.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { type PoolConfig, validateConfig } from '../config/index.js'
import { tokenDigest } from '../core/token.js'
import { scanRequestHead } from '../l7/headers.js'
import { Metrics } from '../metrics/index.js'
import { ConnectionRegistry } from '../upstream/connections.js'
import { type AdmitRequest, type PoolLease, UpstreamPool } from '../upstream/pool.js'
import {
  describeChoice,
  ExplainPolicy,
  type ExplainRecord,
  explainHeader,
  explainJson,
  MAX_HEADER_CHARS,
  MAX_JSON_CHARS,
  parseExplainHeader,
} from './index.js'

const registry = new ConnectionRegistry()
after(() => registry.closeAll(0))

const FULL: ExplainRecord = {
  grant: 'trusted',
  route: 'api',
  filters: ['headers', 'rateLimit'],
  pool: 'web',
  choice: {
    pool: 'web',
    algorithm: 'peak-ewma',
    method: 'p2c',
    panic: false,
    picked: 'app-1',
    candidates: [
      { server: 'app-1', score: 1.2, note: 'ewma 1.2ms' },
      { server: 'app-2', score: 3.4, note: 'ewma 3.4ms' },
    ],
    skipped: [
      { server: 'app-3', reason: 'ejected', cause: 'outlier' },
      { server: 'app-4', reason: 'draining' },
    ],
    sticky: { mode: 'cookie', decision: 'new', setCookie: true },
    queuedMs: 3.14,
  },
  tries: [
    { server: 'app-1', code: 'SWY_UPSTREAM_RESET', retry: 'reset', delayMs: 12 },
    { server: 'app-2', status: 503, retry: 'status' },
    { server: 'app-5', code: 'SWY_UPSTREAM_RESET' },
  ],
  noRetry: 'attempts',
  error: 'SWY_UPSTREAM_RESET',
}

describe('explanation header', () => {
  it('lists its items in the documented order, leaving out what does not apply', () => {
    assert.equal(
      explainHeader(FULL),
      'route=api; filters=headers,rateLimit; pool=web; lb=peak-ewma(p2c); sticky=cookie(new); picked=app-1; ' +
        'scores=app-1(ewma 1.2ms),app-2(ewma 3.4ms); skipped=app-3(ejected),app-4(draining); ' +
        'retries=app-1(reset),app-2(status 503); noRetry=attempts; server=app-5; queued=3.1ms; error=SWY_UPSTREAM_RESET',
    )
    assert.equal(
      explainHeader({ route: null, filters: [], tries: [], error: 'SWY_NO_ROUTE' }),
      'route=-; error=SWY_NO_ROUTE',
    )
    assert.equal(
      explainHeader({ route: 2, filters: ['access', 'redirect'], answeredBy: 'redirect', tries: [] }),
      'route=#2; filters=access,redirect(answered)',
    )
  })

  it('reads back with parseExplainHeader: keys, entries and notes', () => {
    const parsed = parseExplainHeader(explainHeader(FULL))
    assert.deepEqual(parsed.get('skipped'), [
      { token: 'app-3', note: 'ejected' },
      { token: 'app-4', note: 'draining' },
    ])
    assert.deepEqual(parsed.get('picked'), [{ token: 'app-1' }])
    assert.deepEqual(parsed.get('lb'), [{ token: 'peak-ewma', note: 'p2c' }])
    assert.deepEqual(parsed.get('retries')?.[1], { token: 'app-2', note: 'status 503' })
    assert.equal(parsed.size, 13)
  })

  it('writes separators and other characters in names as _', () => {
    const h = explainHeader({ route: 'a b;c', filters: ['plug,in(1)'], tries: [] })
    assert.equal(h, 'route=a_b_c; filters=plug_in_1_')
    assert.match(explainHeader({ ...FULL, route: 'é' }), /^route=_;/)
  })

  it('stays within MAX_HEADER_CHARS: long lists end with +N, a long value with truncated=1', () => {
    const name = (i: number) => `server-${String(i).padStart(2, '0')}-${'x'.repeat(50)}`
    const skipped = Array.from({ length: 40 }, (_, i) => ({ server: name(i), reason: 'down' as const }))
    const record: ExplainRecord = {
      ...FULL,
      filters: Array.from({ length: 30 }, (_, i) => `filter-${i}-${'y'.repeat(40)}`),
      choice: { ...(FULL.choice as NonNullable<ExplainRecord['choice']>), skipped },
    }
    const h = explainHeader(record)
    assert.ok(h.length <= MAX_HEADER_CHARS, `${h.length} characters`)
    assert.match(h, /; truncated=1$/)
    assert.match(h, /filters=(?:[^,;]+,){8}\+22;/)
    const parsed = parseExplainHeader(h)
    assert.equal(parsed.get('truncated')?.[0]?.token, '1')
    const short = explainHeader({
      ...FULL,
      choice: {
        ...(FULL.choice as NonNullable<ExplainRecord['choice']>),
        skipped: skipped.slice(0, 10).map((s, i) => ({ ...s, server: `s${i}` })),
      },
    })
    assert.equal(parseExplainHeader(short).get('skipped')?.at(-1)?.token, '+2')
  })
})

describe('explanation JSON', () => {
  it('is the record itself when it is short enough', () => {
    assert.deepEqual(JSON.parse(explainJson(FULL)), JSON.parse(JSON.stringify(FULL)))
  })

  it('cuts its lists (and says so) to stay within MAX_JSON_CHARS', () => {
    const skipped = Array.from({ length: 200 }, (_, i) => ({
      server: `server-${i}-${'z'.repeat(40)}`,
      reason: 'down' as const,
    }))
    const record: ExplainRecord = {
      ...FULL,
      choice: { ...(FULL.choice as NonNullable<ExplainRecord['choice']>), skipped },
    }
    const text = explainJson(record)
    assert.ok(text.length <= MAX_JSON_CHARS, `${text.length} characters`)
    const parsed = JSON.parse(text)
    assert.equal(parsed.truncated, true)
    assert.equal(parsed.choice.skipped.length + parsed.choice.skippedMore, 200)
    assert.equal(parsed.choice.picked, 'app-1')
    const huge: ExplainRecord = { ...record, route: 'r'.repeat(4000) }
    const last = JSON.parse(explainJson(huge))
    assert.deepEqual(Object.keys(last), ['route', 'pool', 'picked', 'error', 'truncated'])
  })
})

describe('who may ask', () => {
  const TOKEN = 'a-token-of-at-least-16-chars'
  const policy = new ExplainPolicy({
    trusted: ['10.0.0.0/8', '2001:db8::/32'],
    token: tokenDigest(TOKEN).toString('hex'),
  })
  const ask = (p: ExplainPolicy, ip: string, extra: string[]) => {
    const raw = ['Host', 'x', 'Accept', '*/*', ...extra, 'X-Other', '1']
    const head = scanRequestHead(raw, 'x-request-id', true)
    const before = head.checked
    const grant = p.check(raw, head, ip)
    return { grant, head, before }
  }

  it('honours x-switchyard-explain: 1 from a trusted address, IPv4 (also mapped) and IPv6', () => {
    assert.equal(ask(policy, '10.1.2.3', ['X-Switchyard-Explain', '1']).grant, 'trusted')
    assert.equal(ask(policy, '::ffff:10.1.2.3', ['x-switchyard-explain', ' 1 ']).grant, 'trusted')
    assert.equal(ask(policy, '2001:db8::7', ['x-switchyard-explain', '1']).grant, 'trusted')
    assert.equal(ask(policy, '192.0.2.1', ['x-switchyard-explain', '1']).grant, undefined)
    assert.equal(ask(policy, '10.1.2.3', ['x-switchyard-explain', 'yes']).grant, undefined, 'only the value 1 asks')
  })

  it('honours the admin token from any address, and nothing else', () => {
    assert.equal(ask(policy, '192.0.2.1', ['x-switchyard-explain', '1', 'X-Switchyard-Token', TOKEN]).grant, 'token')
    assert.equal(
      ask(policy, '192.0.2.1', ['x-switchyard-explain', '1', 'x-switchyard-token', `${TOKEN}x`]).grant,
      undefined,
    )
    assert.equal(ask(policy, '192.0.2.1', ['x-switchyard-explain', '1', 'x-switchyard-token', '']).grant, undefined)
    const noToken = new ExplainPolicy({ trusted: ['10.0.0.0/8'], token: undefined })
    assert.equal(ask(noToken, '192.0.2.1', ['x-switchyard-explain', '1', 'x-switchyard-token', TOKEN]).grant, undefined)
    const tokenOnly = new ExplainPolicy({ trusted: [], token: tokenDigest(TOKEN).toString('hex') })
    assert.equal(ask(tokenOnly, '10.1.2.3', ['x-switchyard-explain', '1']).grant, undefined, 'no address is trusted')
  })

  it('removes both headers from what goes upstream, honoured or not; leaves a head without them alone', () => {
    for (const ip of ['10.1.2.3', '192.0.2.1']) {
      const { head, before } = ask(policy, ip, ['x-switchyard-explain', '1', 'x-switchyard-token', 'wrong-token-value'])
      const names = head.headers.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
      assert.deepEqual(names, ['accept', 'x-other'], ip)
      assert.ok(head.checked < before, 'the entries that moved are no longer taken as checked')
    }
    const { head, before, grant } = ask(policy, '10.1.2.3', [])
    assert.equal(grant, undefined)
    assert.equal(head.checked, before)
    assert.equal(head.headers.length, 4)
  })
})

// --- describeChoice over real pools ---------------------------------------------------------------

function poolConfig(servers: unknown[], extra: Record<string, unknown> = {}): PoolConfig {
  const result = validateConfig({
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers, ...extra }],
  })
  assert.ok(result.ok, JSON.stringify(!result.ok && result.issues))
  return result.config.pools[0] as PoolConfig
}

const server = (name: string, extra: Record<string, unknown> = {}) => ({
  url: `http://127.0.0.1:${1000 + name.charCodeAt(0)}`,
  name,
  ...extra,
})

function admitted(pool: UpstreamPool, request: AdmitRequest) {
  const admission = pool.admit(request)
  assert.equal(admission.kind, 'go')
  const lease = (admission as { lease: PoolLease }).lease
  const choice = describeChoice(pool, request, {
    picked: lease.first,
    setCookie: lease.setCookie,
    upcoming: lease.upcoming(3),
    selectedBy: [],
  })
  return { lease, choice }
}

describe('describeChoice', () => {
  it('names every server that cannot take the request, and why', () => {
    const config = poolConfig(
      [server('a'), server('b', { weight: 0 }), server('c', { drain: true }), server('d'), server('e'), server('f')],
      { balance: 'round-robin' },
    )
    const disabled = { ...config, backends: config.backends.map((b) => (b.id === 'e' ? { ...b, disabled: true } : b)) }
    const pool = new UpstreamPool(disabled, registry, new Metrics(), { health: { down: new Set(['d']) } })
    const { lease, choice } = admitted(pool, { ctx: { clientIp: '10.0.0.1' }, keySource: undefined })
    assert.deepEqual(
      choice.skipped.map((s) => `${s.server}:${s.reason}`),
      ['b:weight-0', 'c:draining', 'd:down', 'e:disabled'],
    )
    assert.equal(choice.method, 'rotation')
    assert.deepEqual(choice.candidates.map((c) => c.server).sort(), ['a', 'f'])
    assert.equal(choice.candidates[0]?.server, choice.picked)
    assert.equal(choice.candidates[0]?.note, 'weight 1')
    lease.end()
    pool.release()
  })

  it('reports a full server, and the P2C runner-up that a retry then takes', () => {
    const pool = new UpstreamPool(
      poolConfig([server('a', { maxConnections: 1, maxPending: 0 }), server('b'), server('c')], {
        balance: 'least-request',
      }),
      registry,
      new Metrics(),
    )
    // Fill `a` with one try in flight.
    let held: PoolLease | undefined
    let tries = 0
    while (held === undefined && tries++ < 50) {
      const { lease } = admitted(pool, { ctx: { clientIp: '10.0.0.1' }, keySource: undefined })
      if (lease.first.backend.id === 'a') held = lease
      else lease.end()
    }
    assert.ok(held, 'a drawn within 50 picks')
    const t = held.begin(held.first, false)
    const { lease, choice } = admitted(pool, { ctx: { clientIp: '10.0.0.1' }, keySource: undefined })
    assert.deepEqual(choice.skipped, [{ server: 'a', reason: 'full' }])
    assert.equal(choice.method, 'p2c')
    const [first, second] = choice.candidates
    assert.equal(first?.server, lease.first.backend.id)
    assert.equal(first?.note, '0 in flight')
    assert.equal(first?.score, 1)
    assert.ok(second !== undefined && second.server !== first.server && second.server !== 'a')
    assert.equal(lease.next()?.backend.id, second.server, 'reading the runner-up left it for the retry')
    lease.end()
    t.end('success', 1)
    held.end()
    pool.release()
  })

  it('gives a hashing pool its key, hash and slot, the same for the same key', () => {
    const pool = new UpstreamPool(
      poolConfig([server('a'), server('b'), server('c')], {
        balance: { algorithm: 'maglev', hashOn: 'header:x-user', tableSize: 1009 },
      }),
      registry,
      new Metrics(),
    )
    const of = (user: string) => admitted(pool, { ctx: { clientIp: '10.0.0.1', hashKey: user }, keySource: undefined })
    const one = of('alice')
    const two = of('alice')
    assert.equal(one.choice.method, 'hash')
    assert.equal(one.choice.hashOn, 'header:x-user')
    assert.equal(one.choice.hash?.unit, 'slot')
    assert.equal(one.choice.hash?.size, 1009)
    assert.match(one.choice.hash?.value ?? '', /^[0-9a-f]{8}$/)
    assert.deepEqual(two.choice.hash, one.choice.hash)
    assert.equal(two.choice.picked, one.choice.picked)
    assert.notDeepEqual(of('bob').choice.hash, one.choice.hash)
    assert.match(
      explainHeader({ route: 0, filters: [], tries: [], choice: one.choice }),
      /lb=maglev\(hash header:x-user hash [0-9a-f]{8} slot \d+\/1009\)/,
    )
    pool.release()
  })

  it('says what stickiness decided: new, hit, rebound (and why), invalid', () => {
    const config = poolConfig([server('a'), server('b'), server('c')], {
      sticky: { mode: 'cookie', secret: 'a-secret-for-the-explain-tests' },
    })
    const pool = new UpstreamPool(config, registry, new Metrics(), { health: { down: new Set(['c']) } })
    const request = (cookie: string | undefined): AdmitRequest => {
      const rawHeaders = cookie === undefined ? ['host', 'x'] : ['host', 'x', 'cookie', cookie]
      return { ctx: { clientIp: '10.0.0.1' }, keySource: { clientIp: '10.0.0.1', rawHeaders, url: '/' } }
    }
    const fresh = admitted(pool, request(undefined))
    assert.equal(fresh.choice.sticky?.decision, 'new')
    assert.equal(fresh.choice.sticky?.setCookie, true)
    assert.notEqual(fresh.choice.method, 'sticky', 'the balancer chose')
    const cookie = (fresh.lease.setCookie as string).split(';')[0] as string
    const hit = admitted(pool, request(cookie))
    assert.deepEqual(hit.choice.sticky, {
      mode: 'cookie',
      decision: 'hit',
      bound: fresh.lease.first.backend.id,
      setCookie: false,
    })
    assert.equal(hit.choice.method, 'sticky')
    assert.equal(hit.choice.picked, fresh.lease.first.backend.id)
    const toC = (pool.sticky?.issue('c', undefined) ?? '').split(';')[0] as string
    const rebound = admitted(pool, request(toC))
    assert.equal(rebound.choice.sticky?.decision, 'rebound')
    assert.equal(rebound.choice.sticky?.bound, 'c')
    assert.equal(rebound.choice.sticky?.boundState, 'down')
    assert.notEqual(rebound.choice.picked, 'c')
    const forged = admitted(
      pool,
      request(`${config.sticky?.mode === 'cookie' ? config.sticky.cookie.name : ''}=forged.value.x`),
    )
    assert.equal(forged.choice.sticky?.decision, 'invalid')
    for (const x of [fresh, hit, rebound, forged]) x.lease.end()
    pool.release()
  })

  it('hash stickiness: the ring decides, and names the key', () => {
    const pool = new UpstreamPool(
      poolConfig([server('a'), server('b')], { sticky: { mode: 'header:x-tenant' } }),
      registry,
      new Metrics(),
    )
    const rawHeaders = ['host', 'x', 'x-tenant', 'acme']
    const { lease, choice } = admitted(pool, {
      ctx: { clientIp: '10.0.0.1' },
      keySource: { clientIp: '10.0.0.1', rawHeaders, url: '/' },
    })
    assert.deepEqual(choice.sticky, { mode: 'header', decision: 'hash', key: 'header:x-tenant', setCookie: false })
    assert.equal(choice.method, 'sticky')
    lease.end()
    pool.release()
  })
})

describe('explain settings', () => {
  const config = (explain: unknown, admin?: unknown) => ({
    ...(admin === undefined ? {} : { admin }),
    listeners: [{ name: 'l', listen: '127.0.0.1:0', explain, routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers: ['http://127.0.0.1:1'] }],
  })
  const problems = (input: unknown) => {
    const r = validateConfig(input)
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)
  }

  it('keeps the trusted ranges and only the digest of the admin token', () => {
    const token = 'the-admin-token-0123456789'
    const r = validateConfig(config({ trusted: ['10.0.0.0/8'], adminToken: true }, { listen: '127.0.0.1:0', token }))
    assert.ok(r.ok)
    assert.deepEqual(r.config.listeners[0]?.explain, {
      trusted: ['10.0.0.0/8'],
      token: tokenDigest(token).toString('hex'),
    })
    const off = validateConfig(config(undefined))
    assert.ok(off.ok)
    assert.equal(off.config.listeners[0]?.explain, undefined)
  })

  it('refuses an explain that explains nothing, a token that is not there, and a bad range', () => {
    assert.deepEqual(problems(config({})), [
      'listeners[0].explain: expected `trusted` addresses or `adminToken: true`, found neither: no request could be explained',
    ])
    assert.match(
      problems(config({ adminToken: true }))[0] ?? '',
      /adminToken: expected `admin.token` or `admin.tokenFile`/,
    )
    assert.match(
      problems(config({ trusted: ['10.0.0.0/33'] }))[0] ?? '',
      /explain.trusted\[0\]: expected an IP address or CIDR range/,
    )
    assert.match(problems(config({ trusted: [], extra: 1 }))[0] ?? '', /unknown key/)
  })
})
