/**
 * Session persistence end to end: real backends, real HTTP clients carrying cookies.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import type { ConfigInput } from '../src/index.js'
import { startBackend, type TestBackend } from './helpers/backends.js'
import { startLb } from './helpers/lb.js'

/** Answers with its name; `/login` also sets the app's own session cookie. */
function named(name: string): Promise<TestBackend> {
  return startBackend(name, (req, res, b) => {
    req.resume()
    if (req.url?.startsWith('/login'))
      res.setHeader('set-cookie', `JSESSIONID=${name}-${Math.random().toString(36).slice(2)}; Path=/`)
    res.end(b.name)
  })
}

function config(backends: TestBackend[], sticky: Record<string, unknown>, servers?: unknown[]): ConfigInput {
  return {
    logging: { level: 'warn' },
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [
      {
        name: 'web',
        balance: 'round-robin',
        sticky: sticky as never,
        servers: (servers ?? backends.map((b) => ({ url: b.url, name: b.name }))) as never,
      },
    ],
  }
}

/** `SWYSID=value` from a Set-Cookie header, or undefined. */
function cookieFrom(setCookie: string | string[] | undefined, name = 'SWYSID'): string | undefined {
  const all = setCookie === undefined ? [] : Array.isArray(setCookie) ? setCookie : [setCookie]
  const line = all.find((c) => c.startsWith(`${name}=`))
  return line?.split(';')[0]
}

describe('sticky: cookie', () => {
  let backends: TestBackend[]
  const agent = new Agent({ connections: 16 })
  before(async () => {
    backends = await Promise.all(['s1', 's2', 's3'].map(named))
  })
  after(async () => {
    await agent.close()
    for (const b of backends) await b.close()
  })

  async function get(url: string, cookie?: string) {
    const res = await request(url, { dispatcher: agent, headers: cookie ? { cookie } : {} })
    return {
      server: await res.body.text(),
      cookie: cookieFrom(res.headers['set-cookie']),
      raw: res.headers['set-cookie'],
    }
  }

  it('keeps 300 sessions of 10 requests each on their first server', async (t) => {
    const lb = await startLb(config(backends, { mode: 'cookie', secret: 'a secret of at least 16 chars' }))
    try {
      const perServer = new Map<string, number>()
      let moved = 0
      // 50 sessions at a time.
      for (let batch = 0; batch < 6; batch++)
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const first = await get(`${lb.url}/`)
            assert.ok(first.cookie, 'the first response binds the session')
            assert.match(String(first.raw), /HttpOnly; SameSite=Lax/)
            perServer.set(first.server, (perServer.get(first.server) ?? 0) + 1)
            for (let i = 1; i < 10; i++) {
              const next = await get(`${lb.url}/r${i}`, `theme=dark; ${first.cookie}`)
              if (next.server !== first.server) moved++
              assert.equal(next.cookie, undefined, 'a valid binding is not re-issued')
            }
          }),
        )
      t.diagnostic(`sessions per server: ${JSON.stringify(Object.fromEntries(perServer))}; moved: ${moved}`)
      assert.equal(moved, 0)
      // The balancer (round-robin) spread the new sessions evenly.
      for (const n of perServer.values()) assert.ok(Math.abs(n - 300 / 3) <= 2, `${n}`)
    } finally {
      await lb.close()
    }
  })

  it('does not honour a forged, tampered or foreign cookie: it balances and re-issues', async () => {
    const lb = await startLb(config(backends, { mode: 'cookie', secret: 'a secret of at least 16 chars' }))
    const other = await startLb(config(backends, { mode: 'cookie', secret: 'another secret, also 16+ chars' }))
    try {
      const first = await get(`${lb.url}/`)
      const value = first.cookie!.slice('SWYSID='.length)
      const [, expiry, mac] = value.split('.')
      // Point the cookie at each other server, keeping the signature: never honoured.
      for (const target of ['s1', 's2', 's3'].filter((s) => s !== first.server)) {
        const forged = `SWYSID=${Buffer.from(target).toString('base64url')}.${expiry}.${mac}`
        const seen = new Set<string>()
        for (let i = 0; i < 9; i++) {
          const r = await get(`${lb.url}/`, forged)
          seen.add(r.server)
          assert.ok(r.cookie, 'an invalid cookie is replaced')
          assert.notEqual(r.cookie, forged)
        }
        // Round-robin over 9 requests reaches every server, so the forged target was not forced.
        assert.equal(seen.size, 3)
      }
      // A cookie signed by another instance's secret means nothing here.
      const foreign = await get(`${other.url}/`)
      const r = await get(`${lb.url}/`, foreign.cookie)
      assert.ok(r.cookie)
    } finally {
      await lb.close()
      await other.close()
    }
  })

  it('moves the sessions of a removed server and keeps the others; a drained server keeps its sessions', async () => {
    const lb = await startLb(config(backends, { mode: 'cookie', secret: 'a secret of at least 16 chars' }))
    try {
      const sessions: { server: string; cookie: string }[] = []
      for (let i = 0; i < 30; i++) {
        const r = await get(`${lb.url}/`)
        sessions.push({ server: r.server, cookie: r.cookie! })
      }
      const servers = (drop: string | undefined, drain: string | undefined) =>
        backends.filter((b) => b.name !== drop).map((b) => ({ url: b.url, name: b.name, drain: b.name === drain }))
      // Drain s2: its sessions stay on it, but no new session lands there.
      await lb.lb.reload(
        config(backends, { mode: 'cookie', secret: 'a secret of at least 16 chars' }, servers(undefined, 's2')),
      )
      for (const s of sessions) assert.equal((await get(`${lb.url}/`, s.cookie)).server, s.server)
      for (let i = 0; i < 12; i++) assert.notEqual((await get(`${lb.url}/`)).server, 's2')
      // Remove s3: its sessions move (and are re-bound), the others stay where they were.
      await lb.lb.reload(
        config(backends, { mode: 'cookie', secret: 'a secret of at least 16 chars' }, servers('s3', undefined)),
      )
      for (const s of sessions) {
        const r = await get(`${lb.url}/`, s.cookie)
        if (s.server === 's3') {
          assert.notEqual(r.server, 's3')
          assert.ok(r.cookie, 're-bound to its new server')
        } else {
          assert.equal(r.server, s.server)
          assert.equal(r.cookie, undefined)
        }
      }
    } finally {
      await lb.close()
    }
  })
})

describe('sticky: client-ip, header and app-cookie', () => {
  let backends: TestBackend[]
  before(async () => {
    backends = await Promise.all(['s1', 's2', 's3', 's4'].map(named))
  })
  after(async () => {
    for (const b of backends) await b.close()
  })

  it('header:X-Tenant: each tenant on one server, the same in two separate instances', async () => {
    const a = await startLb(config(backends, { mode: 'header:X-Tenant' }))
    const b = await startLb(config([...backends].reverse(), { mode: 'header:X-Tenant' }))
    try {
      const used = new Set<string>()
      for (let tenant = 0; tenant < 40; tenant++) {
        const headers = { 'x-tenant': `tenant-${tenant}` }
        const viaA = await (await request(`${a.url}/`, { headers })).body.text()
        const viaB = await (await request(`${b.url}/`, { headers })).body.text()
        assert.equal(viaB, viaA, `tenant ${tenant}`)
        for (let i = 0; i < 3; i++) assert.equal(await (await request(`${a.url}/`, { headers })).body.text(), viaA)
        used.add(viaA)
      }
      assert.equal(used.size, 4)
    } finally {
      await a.close()
      await b.close()
    }
  })

  it('client-ip: every request from 127.0.0.1 reaches one server', async () => {
    const lb = await startLb(config(backends, { mode: 'client-ip' }))
    try {
      const seen = new Set<string>()
      for (let i = 0; i < 20; i++) seen.add(await (await request(`${lb.url}/`)).body.text())
      assert.equal(seen.size, 1)
    } finally {
      await lb.close()
    }
  })

  it('app-cookie:JSESSIONID follows the session cookie that the server set', async () => {
    const lb = await startLb(config(backends, { mode: 'app-cookie:JSESSIONID' }))
    try {
      for (let user = 0; user < 12; user++) {
        const login = await request(`${lb.url}/login`)
        const server = await login.body.text()
        const session = cookieFrom(login.headers['set-cookie'], 'JSESSIONID')!
        assert.ok(session.startsWith(`JSESSIONID=${server}-`))
        for (let i = 0; i < 5; i++)
          assert.equal(await (await request(`${lb.url}/page`, { headers: { cookie: session } })).body.text(), server)
      }
      // An unknown session id is balanced, never an error.
      const unknown = await request(`${lb.url}/page`, { headers: { cookie: 'JSESSIONID=nobody' } })
      assert.equal(unknown.statusCode, 200)
      await unknown.body.text()
      // A reload that changes the pool (its algorithm) keeps the session table.
      const login = await request(`${lb.url}/login`)
      const server = await login.body.text()
      const session = cookieFrom(login.headers['set-cookie'], 'JSESSIONID')!
      const changed = config(backends, { mode: 'app-cookie:JSESSIONID' })
      changed.pools[0]!.balance = 'random'
      await lb.lb.reload(changed)
      for (let i = 0; i < 8; i++)
        assert.equal(await (await request(`${lb.url}/page`, { headers: { cookie: session } })).body.text(), server)
    } finally {
      await lb.close()
    }
  })
})
