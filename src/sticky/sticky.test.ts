import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type CookieSettings, setCookieValue, signBinding, verifyBinding } from './cookie.js'
import { Stickiness } from './index.js'
import { SessionTable } from './session-table.js'

const secret = Buffer.from('0123456789abcdef0123456789abcdef')

describe('signed sticky cookie', () => {
  it('round-trips a binding until it expires', () => {
    const v = signBinding(secret, 'web', 'server-1', 1_000, 3600)
    assert.equal(verifyBinding(secret, 'web', v, 1_000), 'server-1')
    assert.equal(verifyBinding(secret, 'web', v, 4_599), 'server-1')
    assert.equal(verifyBinding(secret, 'web', v, 4_600), undefined)
  })

  it('refuses a forged server, a changed expiry, another pool, another secret and garbage', () => {
    const v = signBinding(secret, 'web', 'server-1', 1_000, 3600)
    const [, expiry, mac] = v.split('.')
    const forgedId = `${Buffer.from('server-2').toString('base64url')}.${expiry}.${mac}`
    assert.equal(verifyBinding(secret, 'web', forgedId, 1_000), undefined)
    const [id] = v.split('.')
    const later = `${id}.${(Number.parseInt(expiry!, 36) + 100_000).toString(36)}.${mac}`
    assert.equal(verifyBinding(secret, 'web', later, 1_000), undefined)
    assert.equal(verifyBinding(secret, 'api', v, 1_000), undefined)
    assert.equal(verifyBinding(Buffer.from('another secret of 32 bytes......'), 'web', v, 1_000), undefined)
    for (const junk of ['', 'a', 'a.b', 'a.b.c', 'a.b.c.d', `${id}.zzzzzzzzzzzzz.${mac}`, `${id}.${expiry}.`])
      assert.equal(verifyBinding(secret, 'web', junk, 1_000), undefined, junk)
  })

  it('writes the configured attributes', () => {
    const settings: CookieSettings = {
      name: 'SWYSID',
      ttlS: 600,
      path: '/app',
      domain: 'example.com',
      secure: true,
      httpOnly: true,
      sameSite: 'Strict',
    }
    assert.equal(
      setCookieValue(settings, 'v'),
      'SWYSID=v; Path=/app; Max-Age=600; Domain=example.com; Secure; HttpOnly; SameSite=Strict',
    )
    assert.equal(
      setCookieValue(
        { ...settings, ttlS: 0, domain: undefined, secure: false, httpOnly: false, sameSite: undefined },
        'v',
      ),
      'SWYSID=v; Path=/app',
    )
  })
})

describe('session table (app-cookie)', () => {
  it('evicts the least recently used entry when full, and forgets entries unused for the TTL', () => {
    const t = new SessionTable(2, 1000)
    t.set('a', 's1', 0)
    t.set('b', 's2', 0)
    assert.equal(t.get('a', 10), 's1') // a is now the most recent
    t.set('c', 's3', 20) // evicts b
    assert.equal(t.get('b', 30), undefined)
    assert.equal(t.get('a', 30), 's1')
    assert.equal(t.get('c', 2000), undefined) // unused since 20
    t.set('d', 's1', 0)
    t.dropServer('s1')
    assert.equal(t.get('d', 1), undefined)
  })
})

describe('cookie binding lookups', () => {
  it('checks a value once, then remembers it until its expiry; a tampered value never passes', () => {
    let nowMs = 1_000_000
    const backends = ['s1', 's2'].map((id) => ({
      id,
      pool: 'web',
      host: '127.0.0.1',
      port: 1,
      origin: 'http://x',
      tls: false,
      weight: 1,
      backup: false,
      draining: false,
      disabled: false,
    }))
    const sticky = new Stickiness(
      'web',
      {
        mode: 'cookie',
        secret,
        cookie: {
          name: 'SWYSID',
          ttlS: 60,
          path: '/',
          domain: undefined,
          secure: false,
          httpOnly: true,
          sameSite: 'Lax',
        },
      },
      backends,
      { nowMs: () => nowMs },
    )
    const cookie = sticky.issue('s2', undefined)!.split(';')[0]!
    const lookup = (c: string) => sticky.bound({ clientIp: '10.0.0.1', rawHeaders: ['Cookie', c], url: '/' })
    assert.equal(lookup(cookie), 's2')
    assert.equal(lookup(cookie), 's2') // remembered
    // A character in the middle of the signature (the last one carries 2 unused bits).
    const at = cookie.length - 5
    const tampered = `${cookie.slice(0, at)}${cookie[at] === 'A' ? 'B' : 'A'}${cookie.slice(at + 1)}`
    assert.equal(lookup(tampered), undefined)
    assert.equal(sticky.issue('s2', 's2'), undefined, 'a fresh binding is not re-issued')
    // Past half its life, a binding in use is renewed (sliding expiry).
    nowMs += 31_000
    assert.equal(lookup(cookie), 's2')
    const renewed = sticky.issue('s2', 's2')
    assert.ok(renewed?.startsWith('SWYSID='), 'renewed')
    nowMs += 30_000
    assert.equal(lookup(cookie), undefined, 'expired, though remembered')
  })
})
