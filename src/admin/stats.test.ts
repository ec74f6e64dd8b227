import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DURATION_BUCKETS_S } from '../metrics/index.js'
import { EMPTY_HISTOGRAM, type HistogramReport, type ListenerReport, type PoolReport } from '../server/reports.js'
import { LATENCY_SPAN_MS, StatsRecorder } from './stats.js'

/** A histogram with `n` observations in the bucket whose upper bound is `boundS`. */
function hist(entries: readonly [boundS: number, n: number][]): HistogramReport {
  const counts = [...EMPTY_HISTOGRAM.counts]
  let count = 0
  let sum = 0
  for (const [bound, n] of entries) {
    const i = DURATION_BUCKETS_S.indexOf(bound)
    assert.ok(i >= 0, `bucket ${bound}`)
    counts[i] = (counts[i] ?? 0) + n
    count += n
    sum += bound * n
  }
  return { counts, count, sum }
}

function pool(servers: { name: string; requests: number; errors?: number; duration?: HistogramReport }[]): PoolReport {
  return {
    name: 'p',
    algorithm: 'round-robin',
    queued: 0,
    servers: servers.map((s) => ({
      name: s.name,
      url: `http://127.0.0.1/${s.name}`,
      weight: 1,
      backup: false,
      state: 'up',
      sinceMs: 0,
      inFlight: 1,
      requests: s.requests,
      errors: s.errors === undefined ? {} : { SWY_UPSTREAM_RESET: s.errors },
      retries: 0,
      ejections: 0,
      duration: s.duration ?? EMPTY_HISTOGRAM,
      ttfb: EMPTY_HISTOGRAM,
      health: undefined,
    })),
  }
}

function listener(classes: number[], connections = 3): ListenerReport {
  const requests = classes.reduce((n, c) => n + c, 0)
  return { name: 'web', address: '127.0.0.1:1', connections, inFlight: 0, classes, requests, failed: classes[4] ?? 0 }
}

describe('StatsRecorder', () => {
  it('gives rates over the interval, null on a first reading and for an interval without requests', () => {
    let now = 1_000_000
    const stats = new StatsRecorder({ now: () => now })
    const first = stats.record([pool([{ name: 'a', requests: 10 }])], [listener([0, 10, 0, 0, 0])])
    assert.equal(first.servers.get('p\0a')?.rps, null)
    assert.equal(first.listeners.get('web')?.rps, null)
    now += 2000
    const second = stats.record([pool([{ name: 'a', requests: 30, errors: 5 }])], [listener([0, 26, 0, 2, 2])])
    const a = second.servers.get('p\0a')
    assert.equal(a?.rps, 10)
    assert.equal(a?.errorRate, 0.25)
    assert.equal(second.pools.get('p')?.rps, 10)
    assert.equal(second.pools.get('p')?.errorRate, 0.25)
    const web = second.listeners.get('web')
    assert.equal(web?.rps, 10)
    assert.deepEqual(web?.classes, { '1xx': 0, '2xx': 8, '3xx': 0, '4xx': 1, '5xx': 1 })
    assert.equal(web?.errorRate, 0.1)
    now += 1000
    const idle = stats.record([pool([{ name: 'a', requests: 30, errors: 5 }])], [listener([0, 26, 0, 2, 2])])
    assert.equal(idle.servers.get('p\0a')?.rps, 0)
    assert.equal(idle.servers.get('p\0a')?.errorRate, null)
    assert.equal(idle.listeners.get('web')?.errorRate, null)
  })

  it('gives no rate for an interval where a counter went down (a worker lost), then rates again', () => {
    let now = 0
    const stats = new StatsRecorder({ now: () => now })
    stats.record([pool([{ name: 'a', requests: 100 }])], [listener([0, 100, 0, 0, 0])])
    now += 1000
    // The sum over workers drops: not 4 requests in a second, and not 100,000 either.
    const r = stats.record([pool([{ name: 'a', requests: 4 }])], [listener([0, 3, 0, 0, 0])])
    assert.equal(r.servers.get('p\0a')?.rps, null)
    assert.equal(r.pools.get('p')?.rps, null)
    assert.equal(r.listeners.get('web')?.classes['2xx'], null)
    assert.equal(r.listeners.get('web')?.rps, null)
    now += 1000
    const next = stats.record([pool([{ name: 'a', requests: 14 }])], [listener([0, 13, 0, 0, 0])])
    assert.equal(next.servers.get('p\0a')?.rps, 10)
    assert.equal(next.listeners.get('web')?.classes['2xx'], 10)
  })

  it('takes percentiles over the last LATENCY_SPAN_MS, pool-wide over its servers', () => {
    let now = 0
    const stats = new StatsRecorder({ now: () => now })
    // Slow tries long ago, then only fast ones: the span forgets the slow ones.
    let a = hist([[1, 100]])
    stats.record([pool([{ name: 'a', requests: 100, duration: a }])], [])
    for (let t = 1; t <= LATENCY_SPAN_MS / 1000 + 1; t++) {
      now = t * 1000
      a = hist([
        [1, 100],
        [0.005, t * 10],
      ])
      stats.record([pool([{ name: 'a', requests: 100 + t * 10, duration: a }])], [])
    }
    const last = stats.last
    const p99 = last?.servers.get('p\0a')?.latencyMs.p99 ?? 0
    assert.ok(p99 > 2.5 && p99 <= 5, `p99 ${p99} ms: the fast bucket only`)
    now += 1000
    const two = stats.record(
      [
        {
          ...pool([
            { name: 'a', requests: 200, duration: a },
            { name: 'b', requests: 10, duration: hist([[0.5, 10]]) },
          ]),
        },
      ],
      [],
    )
    // b is new: all its tries count, and they are the slow ones of the pool.
    const poolP99 = two.pools.get('p')?.latencyMs.p99 ?? 0
    assert.ok(poolP99 > 250 && poolP99 <= 500, `pool p99 ${poolP99}`)
    // No tries for a whole span: no percentiles.
    for (let i = 0; i <= LATENCY_SPAN_MS / 1000; i++) {
      now += 1000
      stats.record([pool([{ name: 'a', requests: 200, duration: a }])], [])
    }
    assert.deepEqual(stats.last?.servers.get('p\0a')?.latencyMs, { p50: null, p95: null, p99: null })
  })

  it('keeps a columnar history of at most historyMs, with nulls where nothing was measured', () => {
    let now = 0
    const stats = new StatsRecorder({ now: () => now, intervalMs: 1000, historyMs: 4000 })
    for (let t = 0; t < 6; t++) {
      now = t * 1000
      const servers = [{ name: 'a', requests: t * 5 }]
      if (t >= 4) servers.push({ name: 'b', requests: t })
      stats.record([pool(servers)], [listener([0, t * 2, 0, 0, 0], t)])
    }
    const h = stats.history()
    assert.deepEqual(h.time, [2000, 3000, 4000, 5000])
    assert.equal(h.intervalMs, 1000)
    assert.equal(h.windowMs, 4000)
    assert.deepEqual(h.pools.p?.servers.a?.rps, [5, 5, 5, 5])
    assert.deepEqual(h.pools.p?.servers.b?.rps, [null, null, null, 1])
    assert.deepEqual(h.pools.p?.rps, [5, 5, 5, 6])
    assert.deepEqual(h.pools.p?.inFlight, [1, 1, 2, 2])
    assert.deepEqual(h.listeners.web?.['2xx'], [2, 2, 2, 2])
    assert.deepEqual(h.listeners.web?.connections, [2, 3, 4, 5])
    assert.deepEqual(h.listeners.web?.['5xx'], [0, 0, 0, 0])
    // The newest reading's point has the same paths, one value each.
    const point = stats.last?.point as unknown as {
      pools: { p: { servers: { b: { rps: number } } } }
      listeners: { web: { connections: number } }
    }
    assert.equal(point.pools.p.servers.b.rps, 1)
    assert.equal(point.listeners.web.connections, 5)
  })

  it('drops the series of a server gone for a whole history', () => {
    let now = 0
    const stats = new StatsRecorder({ now: () => now, intervalMs: 1000, historyMs: 3000 })
    stats.record(
      [
        pool([
          { name: 'a', requests: 1 },
          { name: 'gone', requests: 1 },
        ]),
      ],
      [],
    )
    for (let t = 1; t <= 3; t++) {
      now = t * 1000
      stats.record([pool([{ name: 'a', requests: 1 + t }])], [])
    }
    assert.deepEqual(stats.history().pools.p?.servers.gone?.rps, [null, null, null])
    now = 5000
    stats.record([pool([{ name: 'a', requests: 9 }])], [])
    assert.equal(stats.history().pools.p?.servers.gone, undefined)
    assert.ok(stats.history().pools.p?.servers.a)
  })
})
