/**
 * Auth guards on routes (docs/security.md#auth-guards-auth), against real backends that record what
 * reaches them: `basic` with bcrypt and scrypt hashes, `jwt` with HS256, RS256, ES256 and EdDSA keys
 * (a key file, a JWKS file, a JWKS URL served by the test and cached), and `forwardAuth` with an auth
 * service started by the test.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage } from 'node:http'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import bcrypt from 'bcryptjs'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose'
import { request } from 'undici'
import { scryptHash } from '../src/filters/auth.js'
import type { ConfigInput } from '../src/index.js'
import { listenLocal, startBackend, type TestBackend } from './helpers/backends.js'
import { startLb } from './helpers/lb.js'

/** The backend answers with the headers it received, as JSON. */
let backend: TestBackend
const dir = mkdtempSync(path.join(tmpdir(), 'switchyard-auth-'))
before(async () => {
  backend = await startBackend('b', (req, res) => {
    req.resume()
    res.setHeader('content-type', 'application/json')
    res.end(JSON.stringify(req.headers))
  })
})
after(async () => {
  await backend.close()
  rmSync(dir, { recursive: true, force: true })
})

function guarded(auth: unknown): ConfigInput {
  return {
    listeners: [
      {
        name: 'main',
        listen: '127.0.0.1:0',
        routes: [{ match: { pathPrefix: '/private' }, pool: 'p', auth }, { pool: 'p' }],
      },
    ],
    pools: [{ name: 'p', servers: [backend.url] }],
  } as ConfigInput
}

async function call(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text }
}

const basicHeader = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`

describe('auth: basic', () => {
  it('bcrypt and scrypt users: 401 with a challenge without or with wrong credentials, the right ones pass, stripped', async () => {
    const users = {
      alice: await bcrypt.hash('alice-secret', 4),
      bob: await scryptHash('bob-secret', randomBytes(16)),
    }
    const lb = await startLb(guarded({ kind: 'basic', realm: 'staff', users }))
    try {
      const seen = backend.requests.length
      for (const headers of [
        {},
        { authorization: basicHeader('alice', 'wrong') },
        { authorization: basicHeader('bob', 'alice-secret') },
        { authorization: basicHeader('carol', 'anything') },
        { authorization: 'Basic !!!' },
        { authorization: 'Bearer x' },
      ]) {
        const r = await call(`${lb.url}/private`, headers)
        assert.equal(r.status, 401, JSON.stringify(headers))
        assert.equal(r.headers['www-authenticate'], 'Basic realm="staff", charset="UTF-8"')
        assert.match(r.text, /SWY_UNAUTHORIZED/)
      }
      assert.equal(backend.requests.length, seen, 'no refused request reached the backend')
      for (const [user, password] of [
        ['alice', 'alice-secret'],
        ['bob', 'bob-secret'],
        ['bob', 'bob-secret'], // remembered: the same answer
      ]) {
        const r = await call(`${lb.url}/private`, { authorization: basicHeader(user as string, password as string) })
        assert.equal(r.status, 200, user)
        assert.equal((JSON.parse(r.text) as Record<string, string>).authorization, undefined, 'Authorization stripped')
      }
      assert.equal((await call(`${lb.url}/public`)).status, 200, 'other routes are not guarded')
    } finally {
      await lb.close()
    }
  })
})

describe('auth: jwt', () => {
  const secret = 'a-shared-secret-of-at-least-32-characters'

  it('HS256: exp, nbf, iss, aud and the algorithm are checked; claims forwarded, a forged claim header removed', async () => {
    const lb = await startLb(
      guarded({
        kind: 'jwt',
        algorithms: ['HS256'],
        secret,
        issuer: 'https://issuer.test',
        audience: 'api',
        forwardClaims: { sub: 'x-user', scope: 'x-scope' },
      }),
    )
    const sign = (claims: Record<string, unknown>, set: (j: SignJWT) => SignJWT = (j) => j) =>
      set(new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuer('https://issuer.test').setAudience('api'))
        .setIssuedAt()
        .sign(new TextEncoder().encode(secret))
    try {
      const good = await sign({ sub: 'user-1', scope: 'read' }, (j) => j.setExpirationTime('5m'))
      const r = await call(`${lb.url}/private`, { authorization: `Bearer ${good}`, 'x-user': 'admin' })
      assert.equal(r.status, 200)
      const seen = JSON.parse(r.text) as Record<string, string>
      assert.equal(seen['x-user'], 'user-1', "the claim, not the client's header")
      assert.equal(seen['x-scope'], 'read')
      assert.equal(seen.authorization, undefined)
      const bad = [
        await sign({ sub: 'u' }, (j) => j.setExpirationTime(Math.floor(Date.now() / 1000) - 120)), // expired
        await sign({ sub: 'u' }, (j) => j.setNotBefore(Math.floor(Date.now() / 1000) + 600).setExpirationTime('1h')),
        await new SignJWT({ sub: 'u' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('https://other.test')
          .setAudience('api')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(secret)),
        await new SignJWT({ sub: 'u' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('https://issuer.test')
          .setAudience('other')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode(secret)),
        await new SignJWT({ sub: 'u' })
          .setProtectedHeader({ alg: 'HS256' })
          .setIssuer('https://issuer.test')
          .setAudience('api')
          .setExpirationTime('5m')
          .sign(new TextEncoder().encode('another-secret-of-at-least-32-characters')),
        `${good.split('.').slice(0, 2).join('.')}.`, // signature removed
      ]
      for (const token of bad) {
        const refused = await call(`${lb.url}/private`, { authorization: `Bearer ${token}` })
        assert.equal(refused.status, 401, token)
        assert.equal(refused.headers['www-authenticate'], 'Bearer realm="switchyard", error="invalid_token"')
      }
      const none = await call(`${lb.url}/private`)
      assert.equal(none.status, 401)
      assert.equal(none.headers['www-authenticate'], 'Bearer realm="switchyard"')
    } finally {
      await lb.close()
    }
  })

  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    it(`${alg} with a public key file, and a token signed with another key refused`, async () => {
      const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true })
      const other = await generateKeyPair(alg, { extractable: true })
      const file = path.join(dir, `${alg}.pem`)
      writeFileSync(file, await exportSPKI(publicKey))
      const lb = await startLb(guarded({ kind: 'jwt', algorithms: [alg], publicKeyFile: file }))
      try {
        const token = (key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']) =>
          new SignJWT({ sub: alg }).setProtectedHeader({ alg }).setExpirationTime('5m').sign(key)
        assert.equal(
          (await call(`${lb.url}/private`, { authorization: `Bearer ${await token(privateKey)}` })).status,
          200,
        )
        assert.equal(
          (await call(`${lb.url}/private`, { authorization: `Bearer ${await token(other.privateKey)}` })).status,
          401,
        )
      } finally {
        await lb.close()
      }
    })
  }

  it('a JWKS URL is fetched once and cached for its ttl; a JWKS file is read', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256', { extractable: true })
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }
    let fetches = 0
    const jwksServer = createServer((_req: IncomingMessage, res) => {
      fetches++
      res.setHeader('content-type', 'application/json')
      res.end(JSON.stringify({ keys: [jwk] }))
    })
    const port = await listenLocal(jwksServer)
    const file = path.join(dir, 'jwks.json')
    writeFileSync(file, JSON.stringify({ keys: [jwk] }))
    const lb = await startLb({
      listeners: [
        {
          name: 'main',
          listen: '127.0.0.1:0',
          routes: [
            {
              match: { pathPrefix: '/url' },
              pool: 'p',
              auth: { kind: 'jwt', algorithms: ['ES256'], jwks: { url: `http://127.0.0.1:${port}/jwks`, ttl: '10m' } },
            },
            { match: { pathPrefix: '/file' }, pool: 'p', auth: { kind: 'jwt', algorithms: ['ES256'], jwks: { file } } },
          ],
        },
      ],
      pools: [{ name: 'p', servers: [backend.url] }],
    } as ConfigInput)
    try {
      const token = await new SignJWT({ sub: 'j' })
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setExpirationTime('5m')
        .sign(privateKey)
      for (let i = 0; i < 5; i++)
        assert.equal((await call(`${lb.url}/url`, { authorization: `Bearer ${token}` })).status, 200)
      assert.equal(fetches, 1, 'the JWKS is fetched once within its ttl')
      assert.equal((await call(`${lb.url}/file`, { authorization: `Bearer ${token}` })).status, 200)
      assert.equal((await call(`${lb.url}/file`, { authorization: 'Bearer x.y.z' })).status, 401)
    } finally {
      await lb.close()
      await new Promise((r) => jwksServer.close(r))
    }
  })
})

describe('auth: forwardAuth', () => {
  it('a 2xx from the auth service lets the request through with the copied headers; another answer goes to the client', async () => {
    const asked: IncomingMessage[] = []
    const service = createServer((req, res) => {
      asked.push(req)
      if (req.headers.authorization === 'Bearer let-me-in') {
        res.setHeader('x-auth-user', 'alice')
        res.end()
      } else {
        res.statusCode = 302
        res.setHeader('location', 'https://login.test/')
        res.end('log in first')
      }
    })
    const port = await listenLocal(service)
    const lb = await startLb(
      guarded({ kind: 'forwardAuth', url: `http://127.0.0.1:${port}/check`, copyHeaders: ['x-auth-user'] }),
    )
    try {
      const seen = backend.requests.length
      const denied = await call(`${lb.url}/private/page?q=1`)
      assert.equal(denied.status, 302)
      assert.equal(denied.headers.location, 'https://login.test/')
      assert.equal(denied.text, 'log in first')
      assert.equal(backend.requests.length, seen)
      const ask = asked.at(-1) as IncomingMessage
      assert.equal(ask.method, 'GET')
      assert.equal(ask.headers['x-forwarded-uri'], '/private/page?q=1')
      assert.equal(ask.headers['x-forwarded-method'], 'GET')
      const ok = await call(`${lb.url}/private/page`, { authorization: 'Bearer let-me-in', 'x-auth-user': 'mallory' })
      assert.equal(ok.status, 200)
      assert.equal((JSON.parse(ok.text) as Record<string, string>)['x-auth-user'], 'alice')
    } finally {
      await lb.close()
      await new Promise((r) => service.close(r))
    }
  })

  it('an auth service that cannot be asked: 503 SWY_AUTH_UNAVAILABLE', async () => {
    const lb = await startLb(guarded({ kind: 'forwardAuth', url: 'http://127.0.0.1:1/check', timeout: '1s' }))
    try {
      const r = await call(`${lb.url}/private`)
      assert.equal(r.status, 503)
      assert.match(r.text, /SWY_AUTH_UNAVAILABLE/)
    } finally {
      await lb.close()
    }
  })
})
