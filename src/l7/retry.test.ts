/** The retry decision, without sockets: every branch of decideRetry. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { RetrySettings } from '../config/index.js'
import { validateConfig } from '../config/index.js'
import { decideRetry, MAX_RACE_RESENDS, type RequestFacts, type TryFacts } from './retry.js'

function settings(retries: Record<string, unknown> = {}): RetrySettings {
  const r = validateConfig({
    listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
    pools: [{ name: 'p', servers: ['http://127.0.0.1:1'], retries }],
  })
  assert.ok(r.ok)
  return r.config.pools[0]!.retries
}

const fresh: TryFacts = { code: 'SWY_UPSTREAM_RESET', status: 0, reusedConnection: false, responseBytes: false }
const get: RequestFacts = {
  method: 'GET',
  replayable: true,
  responseStarted: false,
  tries: 1,
  raceResends: 0,
  budgetAvailable: true,
}
const half = () => 0.5

describe('decideRetry', () => {
  it('resends a lost keep-alive race at once, whatever the method, up to the limit', () => {
    const race: TryFacts = { ...fresh, reusedConnection: true }
    const post = { ...get, method: 'POST' }
    assert.deepEqual(decideRetry(settings(), race, post, half), { kind: 'resend', reason: 'keepalive-race' })
    // Not with bytes of a response back, not past the limit, not when turned off, not without a replayable body.
    assert.equal(decideRetry(settings(), { ...race, responseBytes: true }, post, half).kind, 'fail')
    assert.equal(decideRetry(settings(), race, { ...post, raceResends: MAX_RACE_RESENDS }, half).kind, 'fail')
    assert.equal(decideRetry(settings({ keepAliveRace: false }), race, post, half).kind, 'fail')
    assert.equal(decideRetry(settings(), race, { ...post, replayable: false }, half).kind, 'fail')
  })

  it('retries a connect failure at once for any request, and never after the response began', () => {
    const refused: TryFacts = { ...fresh, code: 'SWY_UPSTREAM_CONNECT' }
    const upload = { ...get, method: 'POST', replayable: false }
    assert.deepEqual(decideRetry(settings(), refused, upload, half), {
      kind: 'retry',
      reason: 'connect-failure',
      delayMs: 0,
    })
    assert.equal(decideRetry(settings(), { ...refused, code: 'SWY_UPSTREAM_CONNECT_TIMEOUT' }, get, half).kind, 'retry')
    assert.equal(decideRetry(settings(), refused, { ...get, responseStarted: true }, half).kind, 'fail')
    assert.equal(decideRetry(settings({ on: ['reset'] }), refused, get, half).kind, 'fail')
  })

  it('retries a reset on a fresh connection by default, for idempotent replayable requests only', () => {
    assert.equal(decideRetry(settings(), fresh, get, half).kind, 'retry')
    assert.equal(decideRetry(settings(), fresh, { ...get, method: 'POST' }, half).kind, 'fail')
    assert.equal(
      decideRetry(settings({ retryNonIdempotent: true }), fresh, { ...get, method: 'POST' }, half).kind,
      'retry',
    )
    assert.equal(decideRetry(settings(), fresh, { ...get, replayable: false }, half).kind, 'fail')
    assert.equal(decideRetry(settings({ on: ['connect-failure'] }), fresh, get, half).kind, 'fail')
  })

  it('retries chosen statuses and timeouts only when configured', () => {
    const status: TryFacts = { ...fresh, code: 'SWY_UPSTREAM_STATUS', status: 503 }
    assert.equal(decideRetry(settings(), status, get, half).kind, 'fail')
    assert.deepEqual(decideRetry(settings({ on: ['503'] }), status, get, half), {
      kind: 'retry',
      reason: 'status',
      delayMs: 12.5,
    })
    assert.equal(decideRetry(settings({ on: ['502'] }), status, get, half).kind, 'fail')
    const timeout: TryFacts = { ...fresh, code: 'SWY_UPSTREAM_TIMEOUT' }
    assert.equal(decideRetry(settings(), timeout, get, half).kind, 'fail')
    assert.equal(decideRetry(settings({ on: ['timeout'] }), timeout, get, half).kind, 'retry')
    // Anything else (a protocol error, an internal error) is never retried.
    assert.equal(
      decideRetry(settings({ on: ['reset', 'timeout', '502'] }), { ...fresh, code: 'SWY_UPSTREAM_PROTOCOL' }, get, half)
        .kind,
      'fail',
    )
  })

  it('stops when the tries or the budget run out', () => {
    assert.equal(decideRetry(settings({ attempts: 2 }), fresh, { ...get, tries: 3 }, half).kind, 'fail')
    assert.equal(decideRetry(settings({ attempts: 2 }), fresh, { ...get, tries: 2 }, half).kind, 'retry')
    assert.equal(decideRetry(settings(), fresh, { ...get, budgetAvailable: false }, half).kind, 'fail')
  })

  it('says why it does not retry', () => {
    const why = (s: RetrySettings, f: TryFacts, r: RequestFacts) => {
      const d = decideRetry(s, f, r, half)
      return d.kind === 'fail' ? d.why : d.kind
    }
    assert.equal(why(settings(), fresh, { ...get, responseStarted: true }), 'response-started')
    assert.equal(why(settings({ attempts: 1 }), fresh, { ...get, tries: 2 }), 'attempts')
    assert.equal(why(settings({ on: ['connect-failure'] }), fresh, get), 'not-retried')
    assert.equal(why(settings(), { ...fresh, code: 'SWY_UPSTREAM_CONNECT' }, get), 'retry')
    assert.equal(why(settings({ on: ['reset'] }), { ...fresh, code: 'SWY_UPSTREAM_CONNECT' }, get), 'not-retried')
    assert.equal(why(settings(), fresh, { ...get, method: 'POST' }), 'not-idempotent')
    assert.equal(why(settings(), fresh, { ...get, replayable: false }), 'not-replayable')
    assert.equal(why(settings(), fresh, { ...get, budgetAvailable: false }), 'budget')
  })

  it('backs off with full jitter: a random share of base × 2^(retry − 1), at most max', () => {
    const s = settings({ attempts: 5, backoff: { base: '100ms', max: '300ms' } })
    const delay = (tries: number, u: number) => {
      const d = decideRetry(s, fresh, { ...get, tries }, () => u)
      assert.equal(d.kind, 'retry')
      return d.kind === 'retry' ? d.delayMs : -1
    }
    assert.equal(delay(1, 0.5), 50)
    assert.equal(delay(2, 0.5), 100)
    assert.equal(delay(2, 0.999), 199.8)
    assert.equal(delay(3, 1 - 1e-9) <= 300, true)
    assert.equal(delay(1, 0), 0)
  })
})
