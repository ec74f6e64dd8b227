/**
 * `auth` on a route: a small guard in front of its pool, not an identity system. One of three kinds:
 * - `basic`: users with bcrypt (`$2a$`, `$2b$`, `$2y$`) or scrypt (`$scrypt$N=…,r=…,p=…$salt$hash`,
 *   base64) password hashes. Hashes are compared in constant time; an unknown user costs the same work
 *   as a known one (against a dummy scrypt hash), so that timing does not tell which users exist. A
 *   credential that verified is remembered (its SHA-256, never the password) for `cacheTtl`, so that a
 *   client's later requests do not pay the hash again. Failure: `401 SWY_UNAUTHORIZED` with a
 *   `WWW-Authenticate: Basic` challenge.
 * - `jwt`: a bearer token verified by `jose`: HS256 with `secret`, RS256 / ES256 / EdDSA with a
 *   `publicKeyFile` or a JWKS (`jwks.url`, fetched and cached for `jwks.ttl`; or `jwks.file`, read
 *   again after `jwks.ttl`). `exp` and `nbf` are checked (with `clockTolerance`), `iss` and `aud` when
 *   configured, and only the listed `algorithms` are accepted. `forwardClaims` puts verified claims in
 *   request headers (a client's own header of that name is always removed first). Failure: 401 with a
 *   `WWW-Authenticate: Bearer` challenge (RFC 6750).
 * - `forwardAuth`: asks an auth service first (Traefik's forwardAuth, nginx's `auth_request`): a GET to
 *   `url` with the request's headers and `X-Forwarded-Method`, `-Proto`, `-Host` and `-Uri`. A 2xx lets
 *   the request through, with the `copyHeaders` of the answer set on it; any other answer is returned to
 *   the client as it is (status, headers, up to 64 KiB of body). An auth service that cannot be asked
 *   within `timeout`: `503 SWY_AUTH_UNAVAILABLE`.
 * `basic` and `jwt` remove the `Authorization` header before the request goes upstream unless
 * `keepAuthorization` is set.
 */
import { createHash, createPublicKey, type KeyObject, scrypt, timingSafeEqual } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import bcrypt from 'bcryptjs'
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  jwtVerify,
} from 'jose'
import { request } from 'undici'
import { z } from 'zod'
import { headerValue } from '../balancer/hash-key.js'
import { durationSchema, durationToMs } from '../core/address.js'
import { BoundedLru } from '../limits/index.js'
import type { FilterEnv } from './env.js'
import { headerName } from './headers.js'
import type { Filter, FilterContext, HookResult, Reject, Respond } from './types.js'

const BCRYPT_RE = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/
const SCRYPT_RE = /^\$scrypt\$N=(\d+),r=(\d+),p=(\d+)\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/

const passwordHash = z.string().refine((h) => BCRYPT_RE.test(h) || SCRYPT_RE.test(h), {
  error: 'expected a bcrypt hash ($2b$…) or an scrypt hash ($scrypt$N=16384,r=8,p=1$SALT$HASH, base64)',
})

const basic = z.strictObject({
  kind: z.literal('basic'),
  realm: z
    .string()
    .regex(/^[^"\\\r\n]*$/, { error: 'expected a realm without quotes, backslashes or line breaks' })
    .default('switchyard')
    .describe('The realm of the challenge.'),
  users: z
    .record(z.string().regex(/^[^:\r\n]+$/, { error: 'expected a user name without `:`' }), passwordHash)
    .refine((u) => Object.keys(u).length > 0, { error: 'expected at least one user' })
    .describe('User name to bcrypt or scrypt password hash.'),
  cacheTtl: durationSchema.default('5m').describe('How long a verified credential is remembered. 0: never.'),
  keepAuthorization: z.boolean().default(false).describe('Forward the Authorization header to the server.'),
})

const ALGORITHMS = ['HS256', 'RS256', 'ES256', 'EdDSA'] as const

const jwt = z
  .strictObject({
    kind: z.literal('jwt'),
    algorithms: z
      .array(z.enum(ALGORITHMS))
      .min(1)
      .describe('The algorithms accepted; a token signed otherwise is refused.'),
    secret: z.string().min(32).optional().describe('HS256: the shared secret (at least 32 characters).'),
    publicKeyFile: z.string().optional().describe('RS256, ES256, EdDSA: a PEM public key file.'),
    jwks: z
      .strictObject({
        url: z
          .url({ protocol: /^https?$/ })
          .optional()
          .describe('A JWKS document to fetch.'),
        file: z.string().optional().describe('A JWKS document on disk.'),
        ttl: durationSchema
          .default('10m')
          .describe('How long the keys are kept before they are fetched or read again.'),
      })
      .refine((j) => (j.url === undefined) !== (j.file === undefined), {
        error: 'expected exactly one of `url` and `file`',
      })
      .optional(),
    issuer: z.string().optional().describe('The `iss` a token must carry.'),
    audience: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe('An `aud` a token must carry.'),
    clockTolerance: durationSchema.default('30s').describe('Leeway for `exp` and `nbf`.'),
    forwardClaims: z
      .record(z.string(), headerName)
      .default({})
      .describe('Claim to request header, such as `{ sub: x-user }`; a client header of that name is always removed.'),
    realm: z
      .string()
      .regex(/^[^"\\\r\n]*$/)
      .default('switchyard'),
    keepAuthorization: z.boolean().default(false).describe('Forward the Authorization header to the server.'),
  })
  .refine((o) => [o.secret, o.publicKeyFile, o.jwks].filter((k) => k !== undefined).length === 1, {
    error: 'expected exactly one key source: `secret`, `publicKeyFile` or `jwks`',
  })
  .refine((o) => o.secret === undefined || o.algorithms.every((a) => a === 'HS256'), {
    error: 'expected only HS256 in `algorithms` with `secret`',
  })
  .refine((o) => o.secret !== undefined || !o.algorithms.includes('HS256'), {
    error: 'expected `secret` for HS256',
  })

const forwardAuth = z.strictObject({
  kind: z.literal('forwardAuth'),
  url: z.url({ protocol: /^https?$/ }).describe('The auth service, asked with a GET for each request.'),
  copyHeaders: z.array(headerName).default([]).describe("Headers of the service's 2xx answer set on the request."),
  timeout: durationSchema.default('5s').describe('How long the service may take to answer.'),
})

export const schema = z
  .discriminatedUnion('kind', [basic, jwt, forwardAuth])
  .describe('A guard on the route: `basic`, `jwt` or `forwardAuth` (docs/security.md).')

export type AuthOptions = z.output<typeof schema>

// --- basic --------------------------------------------------------------------------------------

/** scrypt's own cost bound: N × r × 128 bytes, with room. */
function scryptMaxmem(n: number, r: number): number {
  return 256 * n * r + 1024 * 1024
}

function scryptVerify(hash: string, password: string): Promise<boolean> {
  const m = SCRYPT_RE.exec(hash)
  if (m === null) return Promise.resolve(false)
  const [n, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])]
  const salt = Buffer.from(m[4] as string, 'base64')
  const expected = Buffer.from(m[5] as string, 'base64')
  return new Promise((resolve) => {
    scrypt(password, salt, expected.length, { N: n, r, p, maxmem: scryptMaxmem(n, r) }, (err, derived) => {
      resolve(err === null && timingSafeEqual(derived, expected))
    })
  })
}

function verifyPassword(hash: string, password: string): Promise<boolean> {
  return hash.startsWith('$scrypt$') ? scryptVerify(hash, password) : bcrypt.compare(password, hash)
}

/** Compared against when the user is unknown, so that a miss costs what a hit does. */
const DUMMY_HASH = `$scrypt$N=16384,r=8,p=1$${Buffer.alloc(16, 1).toString('base64')}$${Buffer.alloc(32, 2).toString('base64')}`

function createBasic(o: z.output<typeof basic>): Filter {
  const users = new Map(Object.entries(o.users))
  const ttlMs = durationToMs(o.cacheTtl)
  const verified = new BoundedLru<number>(10_000)
  const challenge: Reject = Object.freeze({
    kind: 'reject',
    code: 'SWY_UNAUTHORIZED',
    message: 'basic: no valid credentials',
    headers: Object.freeze(['www-authenticate', `Basic realm="${o.realm}", charset="UTF-8"`]),
  })
  const pass = (ctx: FilterContext): undefined => {
    if (!o.keepAuthorization) ctx.upstream.removeHeader('authorization')
    return undefined
  }
  return {
    name: 'auth',
    onRoute: (ctx): HookResult => {
      const header = headerValue(ctx.request.rawHeaders, 'authorization')
      const m = header === undefined ? null : /^Basic[ \t]+([A-Za-z0-9+/]+={0,2})[ \t]*$/i.exec(header)
      if (m === null) return challenge
      const decoded = Buffer.from(m[1] as string, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon < 1) return challenge
      const user = decoded.slice(0, colon)
      const password = decoded.slice(colon + 1)
      const key = createHash('sha256').update(decoded).digest('base64')
      const until = verified.get(key)
      if (until !== undefined && until > performance.now() && users.has(user)) return pass(ctx)
      const hash = users.get(user)
      return verifyPassword(hash ?? DUMMY_HASH, password).then((ok) => {
        if (!ok || hash === undefined) return challenge
        if (ttlMs > 0) verified.set(key, performance.now() + ttlMs)
        return pass(ctx)
      })
    },
  }
}

// --- jwt ----------------------------------------------------------------------------------------

/** A JWKS file, read again once `ttlMs` has passed and its modification time changed. */
function fileJwks(file: string, ttlMs: number): JWTVerifyGetKey {
  let set = createLocalJWKSet(JSON.parse(readFileSync(file, 'utf8')))
  let readAt = performance.now()
  let mtimeMs = statSync(file).mtimeMs
  return (header, token) => {
    if (performance.now() - readAt >= ttlMs) {
      readAt = performance.now()
      try {
        const now = statSync(file).mtimeMs
        if (now !== mtimeMs) {
          set = createLocalJWKSet(JSON.parse(readFileSync(file, 'utf8')))
          mtimeMs = now
        }
      } catch {
        // Unreadable for now: the keys read before stay in use.
      }
    }
    return set(header, token)
  }
}

function claimText(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined
  const text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value)
  return text.replace(/[\r\n\0]/g, ' ')
}

function createJwt(o: z.output<typeof jwt>): Filter {
  let key: Uint8Array | KeyObject | JWTVerifyGetKey
  if (o.secret !== undefined) key = new TextEncoder().encode(o.secret)
  else if (o.publicKeyFile !== undefined) key = createPublicKey(readFileSync(o.publicKeyFile, 'utf8'))
  else {
    const j = o.jwks as NonNullable<typeof o.jwks>
    const ttlMs = durationToMs(j.ttl)
    key =
      j.url !== undefined
        ? createRemoteJWKSet(new URL(j.url), { cacheMaxAge: ttlMs, cooldownDuration: Math.min(30_000, ttlMs) })
        : fileJwks(j.file as string, ttlMs)
  }
  const options: JWTVerifyOptions = {
    algorithms: [...o.algorithms],
    clockTolerance: durationToMs(o.clockTolerance) / 1000,
    ...(o.issuer === undefined ? {} : { issuer: o.issuer }),
    ...(o.audience === undefined ? {} : { audience: o.audience }),
  }
  const claims = Object.entries(o.forwardClaims)
  const refuse = (error: string | undefined, message: string): Reject => ({
    kind: 'reject',
    code: 'SWY_UNAUTHORIZED',
    message: `jwt: ${message}`,
    headers: [
      'www-authenticate',
      error === undefined ? `Bearer realm="${o.realm}"` : `Bearer realm="${o.realm}", error="${error}"`,
    ],
  })
  const missing = refuse(undefined, 'no bearer token')
  return {
    name: 'auth',
    onRoute: (ctx): HookResult => {
      const header = headerValue(ctx.request.rawHeaders, 'authorization')
      const m = header === undefined ? null : /^Bearer[ \t]+([A-Za-z0-9._~+/-]+=*)[ \t]*$/i.exec(header)
      if (m === null) return missing
      // Two calls: jose's overloads take a key or a key function, not their union.
      const verifying =
        typeof key === 'function' ? jwtVerify(m[1] as string, key, options) : jwtVerify(m[1] as string, key, options)
      return verifying.then(
        ({ payload }: { payload: JWTPayload }) => {
          const up = ctx.upstream
          for (const [claim, name] of claims) {
            up.removeHeader(name)
            const text = claimText(payload[claim])
            if (text !== undefined) up.setHeader(name, text)
          }
          if (!o.keepAuthorization) up.removeHeader('authorization')
          return undefined
        },
        (err: Error & { code?: string }) => refuse('invalid_token', err.code ?? err.message),
      )
    },
  }
}

// --- forwardAuth --------------------------------------------------------------------------------

const NOT_FORWARDED = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  'host',
  'expect',
])
const MAX_ANSWER_BYTES = 64 * 1024

function createForwardAuth(o: z.output<typeof forwardAuth>, env: FilterEnv): Filter {
  const timeoutMs = durationToMs(o.timeout)
  const copy = o.copyHeaders.map((h) => h.toLowerCase())
  const unavailable = (why: string): Reject => ({
    kind: 'reject',
    code: 'SWY_AUTH_UNAVAILABLE',
    message: `forwardAuth ${o.url}: ${why}`,
  })
  return {
    name: 'auth',
    onRoute: async (ctx): Promise<undefined | Respond | Reject> => {
      const req = ctx.request
      const headers: string[] = []
      const raw = req.rawHeaders
      for (let i = 0; i < raw.length; i += 2)
        if (!NOT_FORWARDED.has((raw[i] as string).toLowerCase())) headers.push(raw[i] as string, raw[i + 1] as string)
      headers.push(
        'x-forwarded-method',
        req.method,
        'x-forwarded-proto',
        req.scheme,
        'x-forwarded-host',
        req.host ?? '',
        'x-forwarded-uri',
        req.url,
        'x-forwarded-for',
        req.clientIp,
      )
      let answer: Awaited<ReturnType<typeof request>>
      try {
        answer = await request(o.url, {
          method: 'GET',
          headers,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
          signal: AbortSignal.timeout(timeoutMs),
        })
      } catch (err) {
        env.logger.warn({ err, url: o.url }, 'forwardAuth: the auth service could not be asked')
        return unavailable((err as Error).message)
      }
      const status = answer.statusCode
      if (status >= 200 && status < 300) {
        await answer.body.dump()
        for (const name of copy) {
          ctx.upstream.removeHeader(name)
          const v = answer.headers[name]
          if (v === undefined) continue
          for (const one of Array.isArray(v) ? v : [v]) ctx.upstream.addHeader(name, one)
        }
        return undefined
      }
      const chunks: Buffer[] = []
      let size = 0
      for await (const chunk of answer.body as AsyncIterable<Buffer>) {
        size += chunk.length
        if (size > MAX_ANSWER_BYTES) break
        chunks.push(chunk)
      }
      answer.body.destroy()
      const out: Record<string, string> = {}
      for (const [name, v] of Object.entries(answer.headers)) {
        if (NOT_FORWARDED.has(name) || v === undefined) continue
        out[name] = Array.isArray(v) ? v.join(', ') : v
      }
      return { kind: 'respond', status, headers: out, body: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES) }
    },
  }
}

export function create(options: AuthOptions, env: FilterEnv): Filter {
  switch (options.kind) {
    case 'basic':
      return createBasic(options)
    case 'jwt':
      return createJwt(options)
    case 'forwardAuth':
      return createForwardAuth(options, env)
    default: {
      const unknown: never = options
      throw new Error(`unknown auth kind ${JSON.stringify(unknown)}`)
    }
  }
}

/** An scrypt hash of `password` in the form `basic` reads (for `switchyard hash-password` and tests). */
export function scryptHash(password: string, salt: Buffer, n = 16384, r = 8, p = 1): Promise<string> {
  return new Promise((resolve, reject) => {
    scrypt(password, salt, 32, { N: n, r, p, maxmem: scryptMaxmem(n, r) }, (err, derived) => {
      if (err !== null) reject(err)
      else resolve(`$scrypt$N=${n},r=${r},p=${p}$${salt.toString('base64')}$${derived.toString('base64')}`)
    })
  })
}
