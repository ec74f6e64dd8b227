import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { AccessList, parseCidr } from './access-list.js'
import { gcra, InFlight, MemoryRateStore, ratePolicy } from './index.js'
import { BoundedLru } from './lru.js'

describe('gcra', () => {
  it('a key held over its limit gets rate × time + burst, plus the first request', () => {
    const policy = ratePolicy(100, 1000, 50)
    const store = new MemoryRateStore(10)
    let accepted = 0
    // A request every 0.25 ms for 10 s: far over 100/s.
    for (let t = 0; t < 10_000; t += 0.25) if (store.take('k', 1000 + t, policy, 0).kind === 'allow') accepted++
    assert.equal(accepted, 1000 + 50)
    // Evenly spaced at exactly the rate, nothing is refused.
    const even = new MemoryRateStore(10)
    let refused = 0
    for (let t = 0; t < 5000; t += 10) if (even.take('k', t, ratePolicy(100, 1000, 0), 0).kind !== 'allow') refused++
    assert.equal(refused, 0)
  })

  it('burst, remaining, reset and retry-after', () => {
    const policy = ratePolicy(10, 1000, 2) // one per 100 ms, 2 more at once
    let tat: number | undefined
    const kinds: string[] = []
    const remaining: number[] = []
    for (let i = 0; i < 4; i++) {
      const r = gcra(tat, 0, policy, 0)
      tat = r.tat
      kinds.push(r.decision.kind)
      remaining.push(r.decision.remaining)
    }
    assert.deepEqual(kinds, ['allow', 'allow', 'allow', 'deny'])
    assert.deepEqual(remaining, [2, 1, 0, 0])
    const denied = gcra(tat, 0, policy, 0).decision
    assert.equal(denied.delayMs, 100) // the next conforming slot
    assert.equal(denied.resetMs, 300) // three intervals until the bucket is full
    // 100 ms later one more conforms.
    assert.equal(gcra(tat, 100, policy, 0).decision.kind, 'allow')
    // A long-forgotten TAT is the same as a new key.
    assert.equal(gcra(tat, 10_000, policy, 0).decision.remaining, 2)
  })

  it('delay: a request that conforms within maxDelay waits for its slot, and holds it', () => {
    const policy = ratePolicy(10, 1000, 0)
    let tat = gcra(undefined, 0, policy, 250).tat
    const second = gcra(tat, 0, policy, 250)
    assert.equal(second.decision.kind, 'delay')
    assert.equal(second.decision.delayMs, 100)
    tat = second.tat
    const third = gcra(tat, 0, policy, 250)
    assert.equal(third.decision.delayMs, 200)
    tat = third.tat
    // The fourth would wait 300 ms: over maxDelay, refused, and the TAT is unchanged.
    const fourth = gcra(tat, 0, policy, 250)
    assert.equal(fourth.decision.kind, 'deny')
    assert.equal(fourth.tat, tat)
  })
})

describe('BoundedLru', () => {
  it('evicts the least recently used key, reads count as use', () => {
    const lru = new BoundedLru<number>(2)
    lru.set('a', 1)
    lru.set('b', 2)
    assert.equal(lru.get('a'), 1) // a is now the most recent
    lru.set('c', 3) // evicts b
    assert.equal(lru.get('b'), undefined)
    assert.equal(lru.get('a'), 1)
    assert.equal(lru.get('c'), 3)
    lru.set('c', 4)
    assert.equal(lru.size, 2)
    lru.delete('c')
    assert.equal(lru.size, 1)
  })

  it('sprayed keys keep the table at maxKeys, the most recent ones kept', () => {
    // The 1,000,000-key RSS bound is measured in test/slow/limits-memory.test.ts.
    const store = new MemoryRateStore(1000)
    const policy = ratePolicy(1, 1000, 0)
    for (let i = 0; i < 50_000; i++) store.take(`k${i}`, i, policy, 0)
    assert.equal(store.size, 1000)
    // The newest key is still limited (its one request per second is used); an evicted one starts afresh.
    assert.equal(store.take('k49999', 50_000, policy, 0).kind, 'deny')
    assert.equal(store.take('k0', 50_000, policy, 0).kind, 'allow')
  })
})

describe('InFlight', () => {
  it('counts per key up to a limit and forgets keys at 0', () => {
    const f = new InFlight()
    assert.equal(f.tryAcquire('a', 2), true)
    assert.equal(f.tryAcquire('a', 2), true)
    assert.equal(f.tryAcquire('a', 2), false)
    assert.equal(f.tryAcquire('b', 2), true)
    assert.equal(f.count('a'), 2)
    f.release('a')
    assert.equal(f.tryAcquire('a', 2), true)
    f.release('a')
    f.release('a')
    f.release('b')
    f.release('zzz')
    assert.equal(f.size, 0)
  })
})

describe('AccessList', () => {
  it('IPv4 and IPv6 ranges, deny wins, an allow list denies the rest, mapped addresses count as IPv4', () => {
    const list = new AccessList(['10.0.0.0/8', '2001:db8::/32', '192.0.2.7'], ['10.9.0.0/16', '2001:db8:bad::/48'])
    assert.equal(list.allows('10.1.2.3'), true)
    assert.equal(list.allows('10.9.1.1'), false, 'deny wins')
    assert.equal(list.allows('11.0.0.1'), false, 'not in the allow list')
    assert.equal(list.allows('192.0.2.7'), true)
    assert.equal(list.allows('192.0.2.8'), false)
    assert.equal(list.allows('2001:db8::1'), true)
    assert.equal(list.allows('2001:db8:bad::1'), false)
    assert.equal(list.allows('2001:db9::1'), false)
    assert.equal(list.allows('::ffff:10.1.2.3'), true, 'IPv4-mapped, checked as IPv4')
    assert.equal(list.allows('::FFFF:10.9.0.1'), false)
    // Asked twice: the kept answer is the same.
    assert.equal(list.allows('10.9.1.1'), false)
    assert.equal(list.allows('not an address'), false, 'not an IP: denied under an allow list')
    const denyOnly = new AccessList([], ['127.0.0.2'])
    assert.equal(denyOnly.allows('127.0.0.3'), true)
    assert.equal(denyOnly.allows('127.0.0.2'), false)
    assert.equal(denyOnly.allows(''), true, 'no allow list: what is not denied passes')
  })

  it('parseCidr takes addresses and ranges, and refuses the rest', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
    assert.deepEqual(parseCidr('::1'), { address: '::1', prefix: 128, family: 'ipv6' })
    for (const bad of ['10.0.0.0/33', '10.0.0/8', '::1/129', 'host.example', '10.0.0.0/x', '10.0.0.0/'])
      assert.equal(parseCidr(bad), undefined, bad)
  })
})
