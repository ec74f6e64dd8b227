/**
 * The admin API is closed by default: with `admin.token`, every request but `/healthz` needs the bearer
 * token (401 otherwise, with a challenge; `/`, the page shell that asks for it, is open too); without one, the config allows only a loopback address, and
 * `switchyard` refuses to start on another with exit code 2.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer, type LoadBalancer, validateConfig } from '../src/index.js'
import { configFiles, runCliToEnd } from './helpers/cli.js'
import { ensureDashboard } from './helpers/dashboard.js'

const TOKEN = 'a-long-enough-admin-token-1234'
const file = configFiles('switchyard-admin-')

const base = {
  listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
  pools: [{ name: 'p', servers: ['http://127.0.0.1:1'] }],
}

describe('admin API with a token', () => {
  let lb: LoadBalancer
  let url: string

  before(async () => {
    lb = createLoadBalancer({ ...base, admin: { listen: '127.0.0.1:0', token: TOKEN } })
    await lb.start()
    url = `http://127.0.0.1:${lb.adminAddress()?.port}`
  })

  after(() => lb.close({ gracePeriodMs: 100 }))

  it('answers 401 with a challenge without the token or with a wrong one, and serves it with the right one', async () => {
    for (const path of ['/api/status', '/metrics']) {
      const none = await fetch(`${url}${path}`)
      assert.equal(none.status, 401, path)
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="switchyard admin"')
      await none.body?.cancel()
      for (const wrong of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(1)}`, `Basic ${TOKEN}`, TOKEN]) {
        const r = await fetch(`${url}${path}`, { headers: { authorization: wrong } })
        assert.equal(r.status, 401, `${path} with ${wrong}`)
        await r.body?.cancel()
      }
      const ok = await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
      assert.equal(ok.status, 200, path)
      await ok.body?.cancel()
    }
  })

  it('leaves /healthz open, and the dashboard files, which hold no data (the page asks for the token)', async () => {
    await ensureDashboard()
    const r = await fetch(`${url}/healthz`)
    assert.equal(r.status, 200)
    assert.deepEqual(await r.json(), { status: 'ok' })
    for (const path of ['/', '/dashboard/app.js', '/dashboard/app.css']) {
      const page = await fetch(`${url}${path}`)
      assert.equal(page.status, 200, path)
      const text = await page.text()
      assert.ok(!text.includes(TOKEN), path)
      assert.doesNotMatch(text, /"generation"|"pools":/, `no status in ${path}`)
    }
    assert.match(await (await fetch(`${url}/dashboard/app.js`)).text(), /sessionStorage/)
  })
})

describe('admin API config', () => {
  const problems = (admin: unknown) => {
    const r = validateConfig({ ...base, admin })
    return r.ok ? [] : r.issues.map((i) => `${i.path}: ${i.message}`)
  }

  it('allows no token on loopback only', () => {
    assert.deepEqual(problems({ listen: '127.0.0.1:9901' }), [])
    assert.deepEqual(problems({ listen: '[::1]:9901' }), [])
    assert.deepEqual(problems({ listen: '0.0.0.0:9901' }), [
      'admin.listen: expected a loopback address (127.0.0.1, [::1]) for an admin API without `token` or `tokenFile`, found "0.0.0.0:9901": anyone who reaches it could read its status and metrics',
    ])
    assert.deepEqual(problems({ listen: '0.0.0.0:9901', token: TOKEN }), [])
    assert.deepEqual(problems({ listen: '127.0.0.1:9901', token: 'short' }), [
      'admin.token: expected at least 16 characters, found "short"',
    ])
  })

  it('reads the token from tokenFile, trimmed, and refuses both or an unreadable file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-admin-token-'))
    try {
      const tokenFile = path.join(dir, 'token')
      writeFileSync(tokenFile, `${TOKEN}\n`)
      const r = validateConfig({ ...base, admin: { listen: '0.0.0.0:9901', tokenFile } })
      assert.ok(r.ok)
      assert.equal(r.config.admin?.token, TOKEN)
      assert.deepEqual(problems({ listen: '0.0.0.0:9901', tokenFile, token: TOKEN }), [
        'admin.tokenFile: expected either `token` or `tokenFile`, found both',
      ])
      assert.deepEqual(problems({ listen: '0.0.0.0:9901', tokenFile: path.join(dir, 'missing') }), [
        `admin.tokenFile: expected a readable file, found no readable file at "${path.join(dir, 'missing')}"`,
      ])
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('makes switchyard refuse to start with a non-loopback admin and no token: exit code 2', async () => {
    const f = await file(
      'open-admin.yaml',
      'admin: { listen: 0.0.0.0:0 }\nlisteners:\n  - { name: l, listen: 127.0.0.1:0, routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1] }\n',
    )
    const r = await runCliToEnd(['--config', f])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /open-admin\.yaml:1:18: admin\.listen: expected a loopback address/)
  })
})
