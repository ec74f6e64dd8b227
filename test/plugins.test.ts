/**
 * TypeScript plugins end to end, through real sockets: plugins given in code and named in a config,
 * every phase (async ones too), per-request state, candidates with their live load, a balancer a
 * plugin adds (and the conformance suite run on it), reloads that pick up an edited plugin, and the
 * answer to a plugin that throws.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { request } from 'undici'
import { LeastTime } from '../examples/plugins/least-time.js'
import tenantRouting from '../examples/plugins/tenant.js'
import {
  type ConfigInput,
  createLoadBalancer,
  definePlugin,
  formatIssue,
  LoadBalancer,
  type LogRecord,
  loadConfigFile,
  parseConfigText,
} from '../src/index.js'
import { balancerConformance } from '../src/testing.js'
import { startBackend, type TestBackend } from './helpers/backends.js'

const EXAMPLES = fileURLToPath(new URL('../examples/', import.meta.url))

function urlOf(lb: LoadBalancer): string {
  return `http://127.0.0.1:${Object.values(lb.addresses())[0]!.port}`
}

async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
}

describe('plugins given in code', () => {
  let shared: TestBackend
  let acme: TestBackend
  before(async () => {
    shared = await startBackend('shared')
    acme = await startBackend('acme')
  })
  after(async () => {
    await shared.close()
    await acme.close()
  })

  const config = (): ConfigInput => ({
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ name: 'all', pool: 'shared' }] }],
    pools: [
      { name: 'shared', servers: [{ url: shared.url, name: 'shared-1' }] },
      { name: 'acme', servers: [{ url: acme.url, name: 'acme-1' }] },
    ],
  })

  it('routes a tenant to its own pool (the docs example), and leaves other requests alone', async () => {
    const lb = createLoadBalancer(config(), { plugins: [tenantRouting({ pools: { acme: 'acme' } })] })
    await lb.start()
    try {
      const mine = await get(`${urlOf(lb)}/orders`, { 'x-tenant': 'acme' })
      assert.equal(mine.body, 'acme')
      assert.equal(mine.headers['x-served-for'], 'acme')
      assert.equal(acme.requests.at(-1)?.headers['x-tenant-id'], 'acme')
      const other = await get(`${urlOf(lb)}/orders`, { 'x-tenant': 'globex' })
      assert.equal(other.body, 'shared')
      assert.equal(other.headers['x-served-for'], 'globex')
      const none = await get(`${urlOf(lb)}/orders`)
      assert.equal(none.body, 'shared')
      assert.equal(none.headers['x-served-for'], undefined)
    } finally {
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('runs every phase once per request, async ones included, with one state object throughout', async () => {
    const calls: string[] = []
    const logs: LogRecord[] = []
    let candidates: { id: string; inFlight: number }[] = []
    const plugin = definePlugin<{ startedAt?: number; route?: string }>({
      name: 'tracer',
      async onRequest(ctx) {
        calls.push(`request ${ctx.request.method} ${ctx.request.path} route=${ctx.route === undefined}`)
        await new Promise((resolve) => setImmediate(resolve))
        ctx.state.startedAt = 1
      },
      async onRoute(ctx) {
        calls.push(`route ${ctx.route?.name} state=${ctx.state.startedAt}`)
        if (ctx.route?.name !== undefined) ctx.state.route = ctx.route.name
        ctx.upstream.setHeader('x-traced', ctx.request.requestId)
      },
      selectUpstream(_ctx, list) {
        candidates = list.map((c) => ({ id: c.id, inFlight: c.inFlight }))
        calls.push(`select ${list.length}`)
      },
      onForward(_ctx, forwarded) {
        calls.push(`forward ${forwarded.method} ${forwarded.path}`)
      },
      async onResponse(ctx, response) {
        calls.push(`response ${response.status} server=${ctx.server}`)
        response.setHeader('x-route', ctx.state.route ?? '')
      },
      onLog(_ctx, record) {
        logs.push(record)
      },
    })
    const lb = createLoadBalancer(config(), { plugins: [plugin] })
    await lb.start()
    try {
      const res = await get(`${urlOf(lb)}/items?x=1`)
      assert.equal(res.status, 200)
      assert.equal(res.headers['x-route'], 'all')
      assert.equal(shared.requests.at(-1)?.headers['x-traced'], res.headers['x-request-id'])
      assert.deepEqual(calls, [
        'request GET /items route=true',
        'route all state=1',
        'select 1',
        'forward GET /items?x=1',
        'response 200 server=shared-1',
      ])
      assert.deepEqual(candidates, [{ id: 'shared-1', inFlight: 0 }])
      assert.equal(logs.length, 1)
      assert.equal(logs[0]!.status, 200)
      assert.equal(logs[0]!.pool, 'shared')
      assert.equal(logs[0]!.server, 'shared-1')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('answers from a plugin, and 500 SWY_FILTER_ERROR when one throws or rejects', async () => {
    const plugins = [
      definePlugin({
        name: 'gate',
        onRequest(ctx) {
          if (ctx.request.header('x-key') !== 'secret')
            return { kind: 'respond', status: 401, headers: { 'www-authenticate': 'Key' }, body: 'no key\n' }
        },
      }),
      definePlugin({
        name: 'broken',
        async onRoute(ctx) {
          if (ctx.request.path === '/reject') throw new Error('async failure')
          if (ctx.request.path === '/throw') JSON.parse('{')
          // The forwarding headers belong to the listener's settings.
          if (ctx.request.path === '/forwarding') ctx.upstream.setHeader('x-forwarded-for', '203.0.113.7')
        },
      }),
    ]
    const lb = createLoadBalancer(config(), { plugins })
    await lb.start()
    try {
      const denied = await get(`${urlOf(lb)}/`)
      assert.equal(denied.status, 401)
      assert.equal(denied.body, 'no key\n')
      assert.equal(denied.headers['www-authenticate'], 'Key')
      for (const p of ['/reject', '/throw', '/forwarding']) {
        const res = await get(`${urlOf(lb)}${p}`, { 'x-key': 'secret' })
        assert.equal(res.status, 500)
        assert.equal((JSON.parse(res.body) as { error: { code: string } }).error.code, 'SWY_FILTER_ERROR')
      }
      assert.equal((await get(`${urlOf(lb)}/fine`, { 'x-key': 'secret' })).status, 200)
    } finally {
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('rejects what is not a plugin, naming the problem', () => {
    assert.throws(() => definePlugin({ name: 'x y', onRoute: () => {} }), /expected `name`/)
    assert.throws(() => definePlugin({ name: 'nothing' }), /expected at least one hook/)
    assert.throws(
      () => createLoadBalancer(config(), { plugins: [{ name: 'odd', onRoute: 'nope' } as never] }),
      /`onRoute` to be a function/,
    )
  })
})

describe('plugins named in a config file', () => {
  let dir: string
  let backends: TestBackend[]
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'switchyard-plugins-'))
    backends = await Promise.all(['a', 'b'].map((n) => startBackend(n)))
  })
  after(async () => {
    for (const b of backends) await b.close()
    await rm(dir, { recursive: true, force: true })
  })

  const yaml = (plugin: string, extra = '') => `plugins:
  - module: ${plugin}
${extra}listeners:
  - name: main
    listen: 127.0.0.1:0
    routes: [{ pool: p }]
pools:
  - name: p
    servers: [${backends.map((b) => b.url).join(', ')}]
`

  it('loads a module relative to the config file, with options, and reloads it when it changes', async () => {
    const plugin = path.join(dir, 'stamp.mjs')
    const write = (stamp: string) =>
      writeFile(
        plugin,
        `export default (options) => ({ name: 'stamp', onResponse(ctx, r) { r.setHeader('x-stamp', '${stamp}-' + options.suffix) } })\n`,
      )
    await write('one')
    const file = path.join(dir, 'switchyard.yaml')
    await writeFile(file, yaml('./stamp.mjs', '    options: { suffix: s }\n'))
    const loaded = await loadConfigFile(file)
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.issues.map(formatIssue).join('\n'))
    const lb = new LoadBalancer(loaded.config)
    await lb.start()
    try {
      assert.equal((await get(`${urlOf(lb)}/`)).headers['x-stamp'], 'one-s')
      await write('two')
      const again = await loadConfigFile(file)
      assert.ok(again.ok)
      await lb.reload(again.config, { validated: true })
      assert.equal((await get(`${urlOf(lb)}/`)).headers['x-stamp'], 'two-s')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
    }
  })

  it('fails the start, or a reload, for a module that is not a plugin (naming it), and keeps serving', async () => {
    const bad = path.join(dir, 'bad.mjs')
    await writeFile(bad, 'export default 42\n')
    const file = path.join(dir, 'bad.yaml')
    await writeFile(file, yaml('./bad.mjs'))
    // `switchyard validate` and the CLI load plugins with the config, and report it there.
    const checked = await loadConfigFile(file)
    assert.ok(!checked.ok)
    assert.match(
      checked.issues.map(formatIssue).join('\n'),
      /plugins: plugins\[0\] \(.*bad\.mjs\): expected a default export/,
    )
    // A config validated without loading them fails the start, or a reload, the same way.
    const loaded = parseConfigText(await readFile(file, 'utf8'), file)
    assert.ok(loaded.ok)
    await assert.rejects(
      new LoadBalancer(loaded.config).start(),
      /plugins\[0\] \(.*bad\.mjs\): expected a default export/,
    )
    const good = createLoadBalancer({
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backends[0]!.url] }],
    })
    await good.start()
    try {
      await assert.rejects(good.reload(loaded.config, { validated: true }), /expected a default export/)
      assert.equal((await get(`${urlOf(good)}/`)).status, 200)
    } finally {
      await good.close({ gracePeriodMs: 200 })
    }
  })

  it('takes a balancer that a plugin adds (the docs example), and rejects the name without the plugin', async () => {
    const loaded = await loadConfigFile(path.join(EXAMPLES, 'plugins.yaml'))
    assert.ok(loaded.ok, loaded.ok ? '' : loaded.issues.map(formatIssue).join('\n'))
    assert.equal(loaded.config.pools[0]!.balance.algorithm, 'least-time')
    const file = path.join(dir, 'no-plugin.yaml')
    await writeFile(
      file,
      `listeners: [{ name: main, listen: "127.0.0.1:0", routes: [{ pool: p }] }]\npools:\n  - name: p\n    balance: { algorithm: least-time }\n    servers: [${backends[0]!.url}]\n`,
    )
    const missing = await loadConfigFile(file)
    assert.ok(!missing.ok)
    assert.match(
      missing.issues.map(formatIssue).join('\n'),
      /pools\[0\]\.balance\.algorithm: expected one of round-robin.*found "least-time"/,
    )
  })

  it('balances with a plugin balancer through real sockets: a slow server gets less traffic', async () => {
    const slow = await startBackend('slow', (req, res) => {
      req.resume()
      setTimeout(() => res.end('slow'), 60)
    })
    const fast = await startBackend('fast', (req, res) => {
      req.resume()
      res.end('fast')
    })
    const { default: leastTime } = await import('../examples/plugins/least-time.js')
    const lb = createLoadBalancer(
      {
        listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', balance: { algorithm: 'least-time' } as never, servers: [slow.url, fast.url] }],
      },
      { plugins: [leastTime] },
    )
    await lb.start()
    try {
      const counts: Record<string, number> = {}
      let next = 0
      const worker = async () => {
        while (next < 120) {
          next++
          const body = (await get(`${urlOf(lb)}/`)).body
          counts[body] = (counts[body] ?? 0) + 1
        }
      }
      await Promise.all(Array.from({ length: 4 }, worker))
      assert.ok((counts.fast ?? 0) > 2 * (counts.slow ?? 0), JSON.stringify(counts))
      assert.equal((lb.status().pools[0] as { algorithm: string }).algorithm, 'least-time')
    } finally {
      await lb.close({ gracePeriodMs: 200 })
      await slow.close()
      await fast.close()
    }
  })
})

// The plugin's balancer passes the same conformance suite as the built-in ones.
balancerConformance('least-time', () => new LeastTime(), { tolerance: 0.05 })
