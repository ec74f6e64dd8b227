/** The phase runner: order, answers, errors, and no promise when every filter is synchronous. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CONTINUE, callOnRequest, runPhase } from './chain.js'
import type { Filter, FilterContext } from './types.js'

const ctx = {} as FilterContext

describe('runPhase', () => {
  it('runs synchronous filters in order and returns without a promise', () => {
    const seen: string[] = []
    const filters: Filter[] = ['a', 'b', 'c'].map((name) => ({ name, onRequest: () => void seen.push(name) }))
    const out = runPhase(filters, callOnRequest, ctx, undefined)
    assert.equal(out instanceof Promise, false)
    assert.equal(out, CONTINUE)
    assert.deepEqual(seen, ['a', 'b', 'c'])
  })

  it('stops at the first answer; `continue` goes on', () => {
    const seen: string[] = []
    const filters: Filter[] = [
      {
        name: 'a',
        onRequest: () => {
          seen.push('a')
          return { kind: 'continue' }
        },
      },
      {
        name: 'b',
        onRequest: () => {
          seen.push('b')
          return { kind: 'respond', status: 403 }
        },
      },
      { name: 'c', onRequest: () => void seen.push('c') },
    ]
    assert.deepEqual(runPhase(filters, callOnRequest, ctx, undefined), { kind: 'respond', status: 403 })
    assert.deepEqual(seen, ['a', 'b'])
  })

  it('becomes a promise from the first async filter, and keeps the order', async () => {
    const seen: string[] = []
    const filters: Filter[] = [
      { name: 'sync', onRequest: () => void seen.push('sync') },
      { name: 'async', onRequest: async () => void seen.push('async') },
      { name: 'after', onRequest: () => ({ kind: 'respond', status: 204 }) },
    ]
    const out = runPhase(filters, callOnRequest, ctx, undefined)
    assert.ok(out instanceof Promise)
    assert.deepEqual(await out, { kind: 'respond', status: 204 })
    assert.deepEqual(seen, ['sync', 'async'])
  })

  it('turns a throw or a rejection into an error outcome naming the filter', async () => {
    const boom = new Error('boom')
    const thrown = runPhase(
      [
        {
          name: 'thrower',
          onRequest: () => {
            throw boom
          },
        },
      ],
      callOnRequest,
      ctx,
      undefined,
    )
    assert.deepEqual(thrown, { kind: 'error', filter: 'thrower', error: boom })
    const rejected = await runPhase(
      [{ name: 'rejecter', onRequest: () => Promise.reject(boom) }],
      callOnRequest,
      ctx,
      undefined,
    )
    assert.deepEqual(rejected, { kind: 'error', filter: 'rejecter', error: boom })
    const odd = runPhase([{ name: 'odd', onRequest: () => ({ kind: 'nope' }) as never }], callOnRequest, ctx, undefined)
    assert.equal((odd as { kind: string }).kind, 'error')
  })
})
