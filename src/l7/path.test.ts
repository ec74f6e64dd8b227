import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DEFAULT_PATH_POLICY, normalizeUrl, type PathPolicy } from './path.js'

const ok = (url: string, policy: PathPolicy = DEFAULT_PATH_POLICY) => {
  const r = normalizeUrl(url, policy)
  assert.equal(r.kind, 'ok', `${url}: ${r.kind === 'reject' ? r.reason : ''}`)
  return r.kind === 'ok' ? r.url : ''
}
const refused = (url: string, policy: PathPolicy = DEFAULT_PATH_POLICY) => {
  const r = normalizeUrl(url, policy)
  assert.equal(r.kind, 'reject', `${url} was taken as ${r.kind === 'ok' ? r.url : ''}`)
  return r.kind === 'reject' ? r.reason : ''
}

describe('normalizeUrl', () => {
  it('returns a plain path as it is, the same string', () => {
    const url = '/api/users/42/profile?tab=orders&x=%2F..'
    assert.equal(normalizeUrl(url, DEFAULT_PATH_POLICY).kind, 'ok')
    assert.equal(ok(url), url)
    assert.equal(ok('/'), '/')
  })

  it('decodes unreserved percent-encodings, upper-cases the rest, leaves the query alone', () => {
    assert.equal(ok('/%61dmin'), '/admin')
    assert.equal(ok('/%7euser/%2d%2E%5f'), '/~user/-._')
    assert.equal(ok('/a%20b/%c3%a9'), '/a%20b/%C3%A9')
    assert.equal(ok('/a%3bb?q=%61%2f'), '/a%3Bb?q=%61%2f')
  })

  it('removes dot segments, never above the root, and merges slashes', () => {
    const cases: [string, string][] = [
      ['/x/../admin', '/admin'],
      ['/./admin', '/admin'],
      ['/../../admin', '/admin'],
      ['/a/b/../../c/./d', '/c/d'],
      ['/admin/.', '/admin/'],
      ['/admin/x/..', '/admin/'],
      ['/..', '/'],
      ['//admin', '/admin'],
      ['/a//b///c/', '/a/b/c/'],
      ['/x//..//admin', '/admin'],
      ['/%2e%2e/admin', '/admin'],
      ['/x/.%2E/admin', '/admin'],
      ['/a.b/..c/.d', '/a.b/..c/.d'],
    ]
    for (const [from, to] of cases) assert.equal(ok(from), to, from)
    assert.equal(ok('//a//b', { ...DEFAULT_PATH_POLICY, mergeSlashes: false }), '//a//b')
  })

  it('refuses encoded slashes, backslashes, control bytes, bad escapes and fragments by default', () => {
    for (const url of [
      '/admin%2f..',
      '/%2Fadmin',
      '/x%5cy',
      '/x\\..\\admin',
      '/a%00',
      '/a%1f',
      '/a%7F',
      '/a%zz',
      '/a%2',
      '/a#f',
    ])
      refused(url)
  })

  it('keeps encoded slashes when told, never as a separator, and takes a backslash as / when told', () => {
    const lenient: PathPolicy = { ...DEFAULT_PATH_POLICY, encodedSlash: 'keep', backslash: 'slash' }
    assert.equal(ok('/admin%2f..', lenient), '/admin%2F..')
    assert.equal(ok('/x/..%2fadmin', lenient), '/x/..%2Fadmin')
    assert.equal(ok('/x\\..\\admin', lenient), '/admin')
  })

  it('normalize: false routes and forwards exactly what was sent', () => {
    const off: PathPolicy = { ...DEFAULT_PATH_POLICY, normalize: false }
    assert.equal(ok('/x/../%61dmin%2f', off), '/x/../%61dmin%2f')
  })
})
