/**
 * `switchyard ctl` against a running load balancer: each command reaches its admin API endpoint with
 * the token from the environment, prints a short answer (or the JSON with --json), and exits 1 with
 * the API's error, or 2 on bad usage. One run goes through the real command to check the wiring.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { ctlCommand } from '../src/ctl.js'
import { createLoadBalancer, type LoadBalancer } from '../src/index.js'
import { deadPort, startBackends, type TestBackend } from './helpers/backends.js'
import { configFiles, runCliToEnd } from './helpers/cli.js'

const TOKEN = 'ctl-test-token-0123456789abcdef'
const file = configFiles('switchyard-ctl-')

describe('switchyard ctl', () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let env: NodeJS.ProcessEnv

  async function ctl(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
    let out = ''
    let err = ''
    const code = await ctlCommand(
      argv,
      {
        out: (t) => {
          out += `${t}\n`
        },
        err: (t) => {
          err += `${t}\n`
        },
      },
      env,
    )
    return { code, out, err }
  }

  before(async () => {
    backends = await startBackends(3)
    lb = createLoadBalancer({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [{ name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] }],
      pools: [{ name: 'app', servers: backends.slice(0, 2).map((b) => ({ url: b.url, name: b.name })) }],
    })
    await lb.start()
    env = { SWITCHYARD_ADMIN_URL: `127.0.0.1:${lb.adminAddress()?.port}`, SWITCHYARD_ADMIN_TOKEN: TOKEN }
  })
  after(async () => {
    await lb.close({ gracePeriodMs: 100 })
    await Promise.all(backends.map((b) => b.close()))
  })

  it('lists pools as a table, and as JSON with --json', async () => {
    const table = await ctl('pools')
    assert.equal(table.code, 0, table.err)
    assert.match(table.out, /^POOL\/SERVER\s+STATE\s+WEIGHT/)
    assert.match(table.out, /app\/b1\s+up\s+1\s+0\s+0\s+0\s+-/)
    const json = await ctl('--json', 'pools')
    assert.equal(JSON.parse(json.out).pools[0].servers.length, 2)
  })

  it('drains, disables, enables, weighs, adds and removes servers', async () => {
    assert.match((await ctl('drain', 'app/b1')).out, /^b1: draining, weight 1/)
    assert.match((await ctl('disable', 'app/b1')).out, /^b1: disabled/)
    assert.match((await ctl('enable', 'app/b1')).out, /^b1: up/)
    assert.match((await ctl('weight', 'app/b2', '7')).out, /^b2: up, weight 7/)
    const added = await ctl('add', 'app', backends[2]?.url as string, '--name', 'b3', '--weight', '2')
    assert.match(added.out, /^b3: up, weight 2/)
    assert.match((await ctl('pools')).out, /app\/b3 \*\s+up\s+2/)
    assert.match((await ctl('remove', 'app/b3')).out, /^b3: draining/)
    assert.match((await ctl('overrides')).out, /"b2"/)
    assert.match((await ctl('reset')).out, /^ok: configuration generation \d+ active/)
    assert.deepEqual(JSON.parse((await ctl('--json', 'overrides')).out).overrides, {})
  })

  it('applies a config file, and prints its problems with their lines', async () => {
    const good = await file(
      'good.yaml',
      `admin: { listen: 127.0.0.1:0, token: ${TOKEN} }\nlisteners:\n  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: app }] }\npools:\n  - { name: app, servers: ["${backends[0]?.url}"] }\n`,
    )
    assert.match((await ctl('apply', good)).out, /^ok: configuration generation/)
    const bad = await file('bad.yaml', 'listeners:\n  - { name: web, listen: nowhere, routes: [] }\npools: []\n')
    const r = await ctl('apply', bad)
    assert.equal(r.code, 1)
    assert.match(r.err, /400: invalid configuration/)
    assert.match(r.err, new RegExp(`${bad}:2:\\d+: listeners\\[0\\]\\.listen: expected an address`))
  })

  it('exits 1 with the API error, and 2 on bad usage', async () => {
    const missing = await ctl('drain', 'app/nope')
    assert.equal(missing.code, 1)
    assert.match(missing.err, /404: pool "app" has no server named "nope"/)
    const reload = await ctl('reload')
    assert.equal(reload.code, 1)
    assert.match(reload.err, /409: this instance was not started from a config file/)
    for (const argv of [[], ['drain'], ['drain', 'nopool'], ['weight', 'app/b1', 'x'], ['frob'], ['--bogus']])
      assert.equal((await ctl(...argv)).code, 2, argv.join(' '))
    const saved = env
    env = { ...saved, SWITCHYARD_ADMIN_TOKEN: 'wrong-token-wrong-token' }
    const denied = await ctl('pools')
    const port = await deadPort()
    env = { SWITCHYARD_ADMIN_URL: `http://127.0.0.1:${port}` }
    const down = await ctl('pools')
    env = saved
    assert.equal(denied.code, 1)
    assert.match(denied.err, /401: unauthorized/)
    assert.equal(down.code, 1)
    assert.match(down.err, new RegExp(`cannot reach the admin API at http://127\\.0\\.0\\.1:${port}: ECONNREFUSED`))
  })

  it('runs as `switchyard ctl`, with the token from the environment (a server named host:port)', async () => {
    // The config applied above names its one server by its address.
    const name = (backends[0] as TestBackend).url.slice('http://'.length)
    const r = await runCliToEnd(['ctl', 'drain', `app/${name}`], env)
    assert.equal(r.code, 0, r.stderr)
    assert.equal(r.stdout, `${name}: draining, weight 1, 0 in flight\n`)
  })
})
