/**
 * The admin API under /api/v1 against a real load balancer and real backends: every endpoint, its
 * auth (401), validation (400 with positions), 404s, and what each runtime change does to traffic.
 * test/admin-workers.test.ts runs the changes again with `workers: 2`.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { ROUTES } from '../src/admin/api.js'
import { type ConfigInput, createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { type AdminClient, eventStream, startWithAdmin } from './helpers/admin.js'
import { type Handler, nameHandler, startBackend, startBackends, type TestBackend } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

const TOKEN = 'admin-api-test-token-0123456789'

/** Answers with the backend's name; `/slow?ms=N` waits N ms first. */
const slowHandler: Handler = (req, res, b) => {
  const ms = Number(new URL(req.url ?? '/', 'http://x').searchParams.get('ms') ?? 0)
  setTimeout(() => nameHandler(req, res, b), ms)
}

function baseConfig(backends: readonly TestBackend[], extra: Partial<ConfigInput> = {}): ConfigInput {
  return {
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    listeners: [
      {
        name: 'web',
        listen: '127.0.0.1:0',
        routes: [
          { name: 'api', match: { pathPrefix: '/api' }, pool: 'app', headers: { request: { set: { 'x-a': '1' } } } },
          { pool: 'app' },
        ],
        securityHeaders: true,
      },
    ],
    pools: [
      {
        name: 'app',
        servers: backends.slice(0, 2).map((b) => ({ url: b.url, name: b.name })),
        connections: { maxClientShare: 1 },
      },
    ],
    ...extra,
  }
}

function started(config: ConfigInput, options: { configFile?: string } = {}) {
  return startWithAdmin(config, TOKEN, options)
}

/** `n` requests one after another; the backends' names that answered. */
async function names(url: string, n: number): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await fetch(url)
    assert.equal(r.status, 200)
    out.push(await r.text())
  }
  return out
}

function count(list: readonly string[], name: string): number {
  return list.filter((x) => x === name).length
}

describe('admin API v1: reading', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let web: string
  let admin: string
  let api: AdminClient

  before(async () => {
    backends = await startBackends(2)
    ;({ lb, web, admin, api } = await started({
      ...baseConfig(backends),
      pools: [
        {
          name: 'app',
          servers: backends.map((b) => ({ url: b.url, name: b.name })),
          connections: { maxClientShare: 1 },
        },
        {
          name: 'checked',
          servers: [{ url: 'http://127.0.0.1:1', name: 'dead' }],
          healthCheck: { type: 'tcp', interval: '50ms', timeout: '200ms', rise: 1, fall: 1 },
          sticky: { mode: 'cookie', secret: 'a-sticky-secret-that-must-not-show' },
        },
      ],
    }))
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('answers 401 on every /api/v1 route without the token, and 404 and 405 for unknown paths and methods', async () => {
    for (const spec of Object.values(ROUTES)) {
      const p = spec.path.replace('{pool}', 'app').replace('{server}', 'b1')
      const r = await fetch(`${admin}${p}`, { method: spec.method })
      assert.equal(r.status, 401, `${spec.method} ${p}`)
      await r.body?.cancel()
    }
    assert.equal((await api.call('GET', '/api/v1/nothing')).status, 404)
    const wrong = await api.call('POST', '/api/v1/pools')
    assert.equal(wrong.status, 405)
    assert.equal(wrong.headers.get('allow'), 'GET')
  })

  it('lists every pool and server with its state, weight, counts and latency, counted exactly', async () => {
    const answered = await names(`${web}/`, 10)
    const { pools } = await api.get('/api/v1/pools')
    assert.deepEqual(
      pools.map((p: { name: string }) => p.name),
      ['app', 'checked'],
    )
    const app = pools[0]
    assert.equal(app.algorithm, 'round-robin')
    for (const s of app.servers) {
      assert.equal(s.state, 'up')
      assert.equal(s.weight, 1)
      assert.equal(s.source, 'config')
      assert.equal(s.override, null)
      assert.equal(s.inFlight, 0)
      assert.equal(s.requests, count(answered, s.name), s.name)
      assert.equal(s.errors, 0)
      assert.equal(s.histogram.count, s.requests)
      assert.ok(s.latencyMs.p50 > 0 && s.latencyMs.p99 >= s.latencyMs.p50, JSON.stringify(s.latencyMs))
      assert.ok(s.ttfbMs.p50 > 0)
      assert.ok(!Number.isNaN(Date.parse(s.since)))
      assert.equal(s.health, null)
      assert.equal(s.url, backends.find((b) => b.name === s.name)?.url)
    }
  })

  it('shows a server that its health check marked down as down, with the check result and since when', async () => {
    let server: { state: string; health: { state: string; lastResult: string }; since: string } | undefined
    await waitFor(async () => {
      server = (await api.get('/api/v1/pools/checked')).servers[0]
      return server?.state === 'down'
    }, 'the dead server down')
    assert.equal(server?.health.state, 'down')
    assert.match(server?.health.lastResult ?? '', /ECONNREFUSED|refused/i)
    assert.ok(Date.parse(server?.since ?? '') <= Date.now())
  })

  it('gives one pool and one server, and 404 for unknown ones', async () => {
    assert.equal((await api.get('/api/v1/pools/app')).name, 'app')
    assert.equal((await api.get('/api/v1/pools/app/servers/b2')).name, 'b2')
    const noPool = await api.call('GET', '/api/v1/pools/nope')
    assert.equal(noPool.status, 404)
    assert.match(noPool.body.error, /no pool named "nope"/)
    const noServer = await api.call('GET', '/api/v1/pools/app/servers/nope')
    assert.equal(noServer.status, 404)
    for (const [method, p, body] of [
      ['PATCH', '/api/v1/pools/app/servers/nope', { weight: 2 }],
      ['DELETE', '/api/v1/pools/app/servers/nope', undefined],
      ['PATCH', '/api/v1/pools/nope/servers/b1', { weight: 2 }],
      ['POST', '/api/v1/pools/nope/servers', { url: 'http://127.0.0.1:9' }],
    ] as const)
      assert.equal((await api.call(method, p, body)).status, 404, `${method} ${p}`)
  })

  it('lists listeners with their routes and rules', async () => {
    const { listeners } = await api.get('/api/v1/listeners')
    assert.equal(listeners.length, 1)
    const l = listeners[0]
    assert.equal(l.name, 'web')
    assert.equal(l.protocol, 'http')
    assert.equal(l.address, `127.0.0.1:${lb.addresses().web?.port}`)
    assert.deepEqual(l.rules, ['securityHeaders'])
    assert.deepEqual(
      l.routes.map((r: { name: string | null; pool: string; rules: string[] }) => [r.name, r.pool, r.rules]),
      [
        ['api', 'app', ['headers']],
        [null, 'app', []],
      ],
    )
    assert.equal(l.routes[0].match.pathPrefix, '/api')
  })

  it('shows the effective config with its secrets redacted', async () => {
    const config = await api.get('/api/v1/config')
    assert.equal(config.admin.token, '[redacted]')
    assert.equal(config.pools[1].sticky.secretHex, '[redacted]')
    assert.equal(config.pools[0].backends.length, 2)
    const text = JSON.stringify(config)
    assert.ok(!text.includes(TOKEN))
    assert.ok(!text.includes(Buffer.from('a-sticky-secret-that-must-not-show').toString('hex')))
  })

  it('serves an OpenAPI 3.1 document with every route, made from the schemas that validate the bodies', async () => {
    const doc = await api.get('/api/v1/openapi.json')
    assert.equal(doc.openapi, '3.1.0')
    for (const [id, spec] of Object.entries(ROUTES)) {
      const op = doc.paths[spec.path]?.[spec.method.toLowerCase()]
      assert.ok(op, `${spec.method} ${spec.path}`)
      assert.equal(op.operationId, id)
      assert.ok(op.responses['401'])
    }
    const patch = doc.paths['/api/v1/pools/{pool}/servers/{server}'].patch
    const schema = patch.requestBody.content['application/json'].schema
    assert.deepEqual(schema.properties.state.enum, ['active', 'draining', 'disabled'])
    assert.equal(schema.properties.weight.maximum, 1000)
    assert.equal(schema.additionalProperties, false)
    const add = doc.paths['/api/v1/pools/{pool}/servers'].post.requestBody.content['application/json'].schema
    assert.deepEqual(add.required, ['url'])
  })

  it('rejects bad bodies with 400 and the path of each problem', async () => {
    const cases: [string, string, unknown, RegExp][] = [
      ['PATCH', '/api/v1/pools/app/servers/b1', { weight: -1 }, /weight/],
      ['PATCH', '/api/v1/pools/app/servers/b1', { weight: 1001 }, /weight/],
      ['PATCH', '/api/v1/pools/app/servers/b1', { state: 'gone' }, /state/],
      ['PATCH', '/api/v1/pools/app/servers/b1', {}, /weight.*state/],
      ['PATCH', '/api/v1/pools/app/servers/b1', { weight: 2, extra: 1 }, /extra/],
      ['POST', '/api/v1/pools/app/servers', { weight: 2 }, /url/],
      ['POST', '/api/v1/pools/app/servers', { url: 'ftp://127.0.0.1:9' }, /url: expected an http/],
      ['POST', '/api/v1/pools/app/servers', { url: 'http://127.0.0.1:9', name: 'bad name' }, /name/],
    ]
    for (const [method, p, body, message] of cases) {
      const r = await api.call(method, p, body)
      assert.equal(r.status, 400, `${method} ${JSON.stringify(body)}`)
      assert.match(r.body.error, message)
    }
    const issues = (await api.call('PATCH', '/api/v1/pools/app/servers/b1', { weight: -1 })).body.issues
    assert.deepEqual(
      issues.map((i: { path: string }) => i.path),
      ['weight'],
    )
    assert.equal(
      (await api.call('PATCH', '/api/v1/pools/app/servers/b1', '{"weight":', 'application/json')).status,
      400,
    )
    assert.equal((await api.call('PATCH', '/api/v1/pools/app/servers/b1', 'weight=2', 'text/plain')).status, 400)
    const dup = await api.call('POST', '/api/v1/pools/app/servers', { url: backends[0]?.url })
    assert.equal(dup.status, 201, 'another name (host:port) for the same address is a new server')
    const again = await api.call('POST', '/api/v1/pools/app/servers', { url: backends[0]?.url })
    assert.equal(again.status, 409)
    assert.equal((await api.call('DELETE', '/api/v1/overrides')).status, 200)
  })
})

describe('admin API v1: runtime changes', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let web: string
  let admin: string
  let api: AdminClient

  before(async () => {
    backends = await startBackends(3, slowHandler)
    ;({ lb, web, admin, api } = await started(baseConfig(backends)))
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('adds a server that takes its share of the very next requests, and streams the change', async () => {
    const events = await eventStream(admin, TOKEN)
    const b3 = backends[2] as TestBackend
    const r = await api.call('POST', '/api/v1/pools/app/servers', { url: b3.url, name: 'b3' })
    assert.equal(r.status, 201)
    assert.equal(r.headers.get('location'), '/api/v1/pools/app/servers/b3')
    assert.equal(r.body.name, 'b3')
    assert.equal(r.body.state, 'up')
    assert.equal(r.body.source, 'runtime')
    const answered = await names(`${web}/`, 6)
    assert.deepEqual(
      ['b1', 'b2', 'b3'].map((n) => count(answered, n)),
      [2, 2, 2],
    )
    const e = await events.next((x) => x.type === 'change' && x.action === 'add', 'add')
    assert.equal((e as { server?: string }).server, 'b3')
    events.close()
  })

  it('sets a weight, and the split follows it', async () => {
    const r = await api.call('PATCH', '/api/v1/pools/app/servers/b1', { weight: 3 })
    assert.equal(r.status, 200)
    assert.equal(r.body.weight, 3)
    assert.deepEqual(r.body.override.weight, 3)
    const answered = await names(`${web}/`, 50)
    assert.deepEqual(
      ['b1', 'b2', 'b3'].map((n) => count(answered, n)),
      [30, 10, 10],
    )
  })

  it('disables a server: no request reaches it after the 200', async () => {
    const b1 = backends[0] as TestBackend
    const r = await api.call('PATCH', '/api/v1/pools/app/servers/b1', { state: 'disabled' })
    assert.equal(r.status, 200)
    assert.equal(r.body.state, 'disabled')
    const before = b1.requests.length
    const answered = await names(`${web}/`, 30)
    assert.equal(count(answered, 'b1'), 0)
    assert.equal(b1.requests.length, before)
    const back = await api.call('PATCH', '/api/v1/pools/app/servers/b1', { state: 'active' })
    assert.equal(back.body.state, 'up')
    assert.ok(count(await names(`${web}/`, 10), 'b1') > 0)
  })

  it('drains a server on DELETE: its request in flight finishes, then it is removed', async () => {
    const events = await eventStream(admin, TOKEN)
    const b2 = backends[1] as TestBackend
    // Only b2 takes requests, so that the slow one is on it.
    for (const n of ['b1', 'b3']) await api.call('PATCH', `/api/v1/pools/app/servers/${n}`, { state: 'disabled' })
    const slow = fetch(`${web}/slow?ms=600`).then(async (r) => ({
      status: r.status,
      body: await r.text(),
      at: Date.now(),
    }))
    await waitFor(() => b2.requests.some((q) => q.url === '/slow?ms=600'), 'the slow request on b2')
    for (const n of ['b1', 'b3']) await api.call('PATCH', `/api/v1/pools/app/servers/${n}`, { state: 'active' })
    const r = await api.call('DELETE', '/api/v1/pools/app/servers/b2')
    assert.equal(r.status, 202)
    assert.equal(r.body.state, 'draining')
    assert.equal(r.body.inFlight, 1)
    const answered = await names(`${web}/`, 10)
    assert.equal(count(answered, 'b2'), 0, 'no new request for a draining server')
    const done = await slow
    assert.deepEqual([done.status, done.body], [200, 'b2'])
    const removed = await events.next((x) => x.type === 'change' && x.action === 'removed', 'removed', 5000)
    assert.ok(Date.parse(removed.time) >= done.at - 5, 'removed after its request finished')
    const { servers } = await api.get('/api/v1/pools/app')
    assert.deepEqual(
      servers.map((s: { name: string }) => s.name),
      ['b1', 'b3'],
    )
    assert.equal((await api.call('GET', '/api/v1/pools/app/servers/b2')).status, 404)
    const overrides = await api.get('/api/v1/overrides')
    assert.equal(overrides.overrides.app.b2.removal, 'removed')
    events.close()
  })

  it('keeps the overrides across a reload, and drops them all on DELETE /api/v1/overrides', async () => {
    await lb.reload(baseConfig(backends))
    let pool = await api.get('/api/v1/pools/app')
    assert.deepEqual(
      pool.servers.map((s: { name: string; weight: number }) => [s.name, s.weight]),
      [
        ['b1', 3],
        ['b3', 1],
      ],
    )
    const r = await api.call('DELETE', '/api/v1/overrides')
    assert.equal(r.status, 200)
    pool = await api.get('/api/v1/pools/app')
    assert.deepEqual(
      pool.servers.map((s: { name: string; weight: number }) => [s.name, s.weight]),
      [
        ['b1', 1],
        ['b2', 1],
      ],
    )
    assert.deepEqual((await api.get('/api/v1/overrides')).overrides, {})
    const answered = await names(`${web}/`, 4)
    assert.deepEqual(
      ['b1', 'b2', 'b3'].map((n) => count(answered, n)),
      [2, 2, 0],
    )
  })
})

describe('admin API v1: stickiness under drain and disable', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let web: string
  let api: AdminClient

  before(async () => {
    backends = await startBackends(2)
    ;({ lb, web, api } = await started({
      ...baseConfig(backends),
      pools: [
        {
          name: 'app',
          servers: backends.map((b) => ({ url: b.url, name: b.name })),
          sticky: { mode: 'cookie', secret: 'sticky-admin-test-secret-0123' },
        },
      ],
    }))
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('keeps a bound client on a draining server, and moves it off a disabled one', async () => {
    const first = await fetch(`${web}/`)
    const bound = await first.text()
    const cookie = (first.headers.get('set-cookie') ?? '').split(';')[0] as string
    assert.match(cookie, /^SWYSID=/)
    const other = bound === 'b1' ? 'b2' : 'b1'
    const withCookie = async () => {
      const r = await fetch(`${web}/`, { headers: { cookie } })
      return { name: await r.text(), setCookie: r.headers.get('set-cookie') }
    }
    await api.call('PATCH', `/api/v1/pools/app/servers/${bound}`, { state: 'draining' })
    for (let i = 0; i < 5; i++) assert.equal((await withCookie()).name, bound, 'sessions stay while draining')
    assert.equal(await (await fetch(`${web}/`)).text(), other, 'a new client goes elsewhere')
    await api.call('PATCH', `/api/v1/pools/app/servers/${bound}`, { state: 'disabled' })
    const moved = await withCookie()
    assert.equal(moved.name, other)
    assert.match(moved.setCookie ?? '', /^SWYSID=/, 'rebound with a new cookie')
  })
})

describe('admin API v1: config, reload and the state file', () => {
  let backends: TestBackend[]
  let dir: string

  before(async () => {
    backends = await startBackends(3)
    dir = await mkdtemp(path.join(tmpdir(), 'switchyard-admin-api-'))
  })
  after(() => Promise.all(backends.map((b) => b.close())))

  function yaml(servers: readonly TestBackend[], stateFile?: string): string {
    return [
      'admin:',
      '  listen: 127.0.0.1:0',
      `  token: ${TOKEN}`,
      ...(stateFile === undefined ? [] : [`  stateFile: ${stateFile}`]),
      'listeners:',
      '  - name: web',
      '    listen: 127.0.0.1:0',
      '    routes:',
      '      - pool: app',
      'pools:',
      '  - name: app',
      '    servers:',
      ...servers.map((b) => `      - { url: "${b.url}", name: ${b.name} }`),
      '',
    ].join('\n')
  }

  it('applies a whole config on PUT, and answers 400 with the positions of its problems', async () => {
    const [b1, b2, b3] = backends as [TestBackend, TestBackend, TestBackend]
    const { lb, web, api } = await started(baseConfig(backends))
    try {
      const events = await eventStream(`http://127.0.0.1:${lb.adminAddress()?.port}`, TOKEN)
      const ok = await api.call('PUT', '/api/v1/config', yaml([b3]), 'application/yaml')
      assert.equal(ok.status, 200, JSON.stringify(ok.body))
      assert.equal(ok.body.generation, 2)
      assert.deepEqual(await names(`${web}/`, 3), ['b3', 'b3', 'b3'])
      const reload = await events.next((e) => e.type === 'reload', 'reload')
      assert.deepEqual([(reload as { result?: string }).result, (reload as { source?: string }).source], ['ok', 'api'])
      const bad = yaml([b1, b2]).replace(`name: ${b2.name} }`, `name: ${b2.name}, weight: -4 }`)
      const r = await api.call('PUT', '/api/v1/config', bad, 'application/yaml')
      assert.equal(r.status, 400)
      assert.equal(r.body.issues.length, 1)
      const issue = r.body.issues[0]
      assert.equal(issue.path, 'pools[0].servers[1].weight')
      assert.equal(issue.line, 13)
      assert.ok(issue.col > 1)
      assert.match(issue.message, /0|greater/)
      const syntax = await api.call('PUT', '/api/v1/config', 'listeners: [\n', 'application/yaml')
      assert.equal(syntax.status, 400)
      assert.equal(syntax.body.issues[0].path, '(syntax)')
      assert.deepEqual(await names(`${web}/`, 2), ['b3', 'b3'], 'the running config stays')
      const json = await api.call('PUT', '/api/v1/config', JSON.stringify(baseConfig(backends)), 'application/json')
      assert.equal(json.status, 200)
      events.close()
    } finally {
      await lb.close({ gracePeriodMs: 100 })
    }
  })

  it('reloads the file on POST /api/v1/reload (400 with positions when it is bad), and 409 without one', async () => {
    const [b1, b2] = backends as [TestBackend, TestBackend]
    const file = path.join(dir, 'reload.yaml')
    await writeFile(file, yaml([b1]))
    const { lb: running, web, api } = await started(baseConfig([b1]), { configFile: file })
    try {
      await writeFile(file, yaml([b2]))
      const r = await api.call('POST', '/api/v1/reload')
      assert.equal(r.status, 200)
      assert.deepEqual(await names(`${web}/`, 2), ['b2', 'b2'])
      await writeFile(file, yaml([b1]).replace('      - pool: app', '      - pool: nope'))
      const bad = await api.call('POST', '/api/v1/reload')
      assert.equal(bad.status, 400)
      assert.equal(bad.body.issues[0].file, file)
      assert.equal(bad.body.issues[0].line, 8)
      assert.deepEqual(await names(`${web}/`, 2), ['b2', 'b2'])
    } finally {
      await running.close({ gracePeriodMs: 100 })
    }
    const plain = await started(baseConfig(backends))
    try {
      const r = await plain.api.call('POST', '/api/v1/reload')
      assert.equal(r.status, 409)
      assert.match(r.body.error, /not started from a config file/)
    } finally {
      await plain.lb.close({ gracePeriodMs: 100 })
    }
  })

  it('keeps runtime changes in admin.stateFile across a restart', async () => {
    const [b1, b2, b3] = backends as [TestBackend, TestBackend, TestBackend]
    const stateFile = path.join(dir, 'state.json')
    const config = { ...baseConfig([b1, b2]), admin: { listen: '127.0.0.1:0', token: TOKEN, stateFile } }
    const one = await started(config)
    try {
      assert.equal((await one.api.call('PATCH', '/api/v1/pools/app/servers/b1', { weight: 4 })).status, 200)
      assert.equal((await one.api.call('PATCH', '/api/v1/pools/app/servers/b2', { state: 'disabled' })).status, 200)
      assert.equal((await one.api.call('POST', '/api/v1/pools/app/servers', { url: b3.url, name: 'b3' })).status, 201)
    } finally {
      await one.lb.close({ gracePeriodMs: 100 })
    }
    const saved = JSON.parse(await readFile(stateFile, 'utf8'))
    assert.equal(saved.version, 1)
    assert.equal(saved.pools.app.b1.weight, 4)
    assert.equal(saved.pools.app.b2.state, 'disabled')
    assert.equal(saved.pools.app.b3.added.url, b3.url)
    const two = await started(config)
    try {
      const { servers } = await two.api.get('/api/v1/pools/app')
      assert.deepEqual(
        servers.map((s: { name: string; weight: number; state: string; source: string }) => [
          s.name,
          s.weight,
          s.state,
          s.source,
        ]),
        [
          ['b1', 4, 'up', 'config'],
          ['b2', 1, 'disabled', 'config'],
          ['b3', 1, 'up', 'runtime'],
        ],
      )
      const answered = await names(`${two.web}/`, 10)
      assert.deepEqual(
        ['b1', 'b2', 'b3'].map((n) => count(answered, n)),
        [8, 0, 2],
      )
      await two.api.call('DELETE', '/api/v1/overrides')
      assert.deepEqual(JSON.parse(await readFile(stateFile, 'utf8')).pools, {})
    } finally {
      await two.lb.close({ gracePeriodMs: 100 })
    }
  })

  it('refuses to start on a state file that is not one', async () => {
    const stateFile = path.join(dir, 'broken.json')
    await writeFile(stateFile, '{"version": 2}')
    const lb = createLoadBalancer({
      ...baseConfig(backends),
      admin: { listen: '127.0.0.1:0', token: TOKEN, stateFile },
    })
    await assert.rejects(lb.start(), /admin.stateFile .*broken.json: not a Switchyard state file: version/)
  })
})

describe('admin API v1: the event stream', () => {
  it('streams health transitions, replays its history, and resumes after Last-Event-ID', async () => {
    const backend = await startBackend('h1')
    const { lb, admin, api } = await started({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        {
          name: 'p',
          servers: [{ url: backend.url, name: 'h1' }],
          healthCheck: { type: 'tcp', interval: '30ms', timeout: '200ms', rise: 1, fall: 1 },
        },
      ],
    })
    try {
      const events = await eventStream(admin, TOKEN)
      await backend.close()
      const down = await events.next((e) => e.type === 'health', 'health')
      assert.deepEqual([(down as { server?: string }).server, (down as { state?: string }).state], ['h1', 'down'])
      await api.call('PATCH', '/api/v1/pools/p/servers/h1', { weight: 2 })
      const change = await events.next((e) => e.type === 'change', 'change')
      events.close()
      const replay = await eventStream(admin, TOKEN)
      await replay.next((e) => e.id === change.id, 'the replayed change')
      replay.close()
      const resumed = await eventStream(admin, TOKEN, { 'last-event-id': String(down.id) })
      await resumed.next((e) => e.id === change.id, 'the change after the down')
      assert.ok(resumed.events.every((e) => e.id > down.id))
      resumed.close()
    } finally {
      await lb.close({ gracePeriodMs: 100 })
    }
  })
})
