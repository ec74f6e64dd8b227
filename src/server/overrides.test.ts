// What `switchyard_override_state` shows: each override in force, with the state its server has now.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { validateConfig } from '../config/index.js'
import { type Overrides, overrideStates } from './overrides.js'

const result = validateConfig({
  listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
  pools: [
    {
      name: 'p',
      servers: [
        { url: 'http://127.0.0.1:1', name: 'a' },
        { url: 'http://127.0.0.1:2', name: 'b', drain: true },
        { url: 'http://127.0.0.1:3', name: 'c' },
        { url: 'http://127.0.0.1:4', name: 'd' },
        { url: 'http://127.0.0.1:5', name: 'e' },
      ],
    },
  ],
})
assert.ok(result.ok)
const base = result.config
const at = '2026-01-01T00:00:00.000Z'

describe('overrideStates', () => {
  it("gives each override in force its server's state now, and its weight when it sets one", () => {
    const o: Overrides = {
      version: 1,
      pools: {
        p: {
          a: { weight: 5, changedAt: at }, // weight only: the file's state
          b: { weight: 2, changedAt: at }, // weight only, drained in the file
          c: { state: 'disabled', changedAt: at },
          d: { removal: 'draining', changedAt: at },
          e: { removal: 'draining', state: 'disabled', changedAt: at },
          gone: { removal: 'removed', changedAt: at }, // a server of no base: unmatched
          f: { weight: 1, added: { url: 'http://127.0.0.1:6', backup: false }, changedAt: at },
        },
        nopool: { x: { state: 'draining', changedAt: at } },
      },
    }
    assert.deepEqual(overrideStates(base, o), [
      { pool: 'p', server: 'a', state: 'active', weight: 5 },
      { pool: 'p', server: 'b', state: 'draining', weight: 2 },
      { pool: 'p', server: 'c', state: 'disabled', weight: undefined },
      { pool: 'p', server: 'd', state: 'removing', weight: undefined },
      { pool: 'p', server: 'e', state: 'disabled', weight: undefined },
      { pool: 'p', server: 'f', state: 'active', weight: 1 },
    ])
  })

  it('shows a server of the file removed at runtime as removed, and nothing without overrides', () => {
    const o: Overrides = { version: 1, pools: { p: { a: { removal: 'removed', changedAt: at } } } }
    assert.deepEqual(overrideStates(base, o), [{ pool: 'p', server: 'a', state: 'removed', weight: undefined }])
    assert.deepEqual(overrideStates(base, { version: 1, pools: {} }), [])
  })
})
