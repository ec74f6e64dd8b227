import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseConfigText } from '../config/index.js'
import { hostWithoutPort, pathOf, Router } from './router.js'

function routerFor(routesYaml: string): Router<string> {
  const r = parseConfigText(
    `listeners:\n  - name: l\n    listen: 127.0.0.1:0\n    routes:\n${routesYaml}\npools:\n${[
      'api',
      'admin',
      'web',
      'wild',
      'canary',
      'exact',
      'post',
    ]
      .map((p) => `  - { name: ${p}, servers: [http://127.0.0.1:1] }`)
      .join('\n')}\n`,
    'r.yaml',
    {},
  )
  if (!r.ok) throw new Error(JSON.stringify(r.issues))
  return new Router(r.config.listeners[0]!.routes.map((x) => ({ match: x.match, target: x.pool ?? '' })))
}

const router = routerFor(`      - { match: { host: api.example.com, pathPrefix: /v1/ }, pool: api }
      - { match: { host: [admin.example.com, ops.example.com] }, pool: admin }
      - { match: { host: "*.example.net" }, pool: wild }
      - { match: { headers: { x-canary: "1" } }, pool: canary }
      - { match: { path: /exact }, pool: exact }
      - { match: { method: [POST, PUT], pathPrefix: /write }, pool: post }
      - { pool: web }`)

const req = (method: string, host: string, url: string, headers: Record<string, string> = {}) => ({
  method,
  host: hostWithoutPort(host),
  path: pathOf(url),
  rawHeaders: Object.entries(headers).flat(),
})

describe('router', () => {
  it('matches host and path prefix together', () => {
    assert.equal(router.match(req('GET', 'api.example.com', '/v1/users?x=1')), 'api')
    assert.equal(router.match(req('GET', 'API.Example.com:8080', '/v1/')), 'api')
    assert.equal(router.match(req('GET', 'api.example.com', '/v2/users')), 'web')
  })
  it('matches any host of a list, and wildcard subdomains at any depth but not the bare domain', () => {
    assert.equal(router.match(req('GET', 'ops.example.com', '/')), 'admin')
    assert.equal(router.match(req('GET', 'a.example.net', '/')), 'wild')
    assert.equal(router.match(req('GET', 'a.b.example.net', '/')), 'wild')
    assert.equal(router.match(req('GET', 'example.net', '/')), 'web')
    assert.equal(router.match(req('GET', 'badexample.net', '/')), 'web')
  })
  it('matches exact header values', () => {
    assert.equal(router.match(req('GET', 'x', '/', { 'x-canary': '1' })), 'canary')
    assert.equal(router.match(req('GET', 'x', '/', { 'x-canary': '0' })), 'web')
  })
  it('matches an exact path, ignoring the query', () => {
    assert.equal(router.match(req('GET', 'x', '/exact?q')), 'exact')
    assert.equal(router.match(req('GET', 'x', '/exact/more')), 'web')
  })
  it('matches methods', () => {
    assert.equal(router.match(req('PUT', 'x', '/write/1')), 'post')
    assert.equal(router.match(req('GET', 'x', '/write/1')), 'web')
  })
  it('returns undefined when nothing matches and there is no catch-all', () => {
    const r = routerFor('      - { match: { pathPrefix: /only }, pool: api }')
    assert.equal(r.match(req('GET', 'x', '/other')), undefined)
  })
  it('strips ports from IPv6 and plain hosts', () => {
    assert.equal(hostWithoutPort('[::1]:8080'), '[::1]')
    assert.equal(hostWithoutPort('Host.Test'), 'host.test')
    assert.equal(hostWithoutPort(undefined), '')
  })
})
