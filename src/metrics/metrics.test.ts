// One instance's registry: the series of servers and pools that went are dropped, the gauges read what
// their sources give when scraped, and the Node process metrics are one set per process.
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseMetrics, series, sum } from '../../test/helpers/prometheus.js'
import { Metrics, type PoolGauges } from './metrics.js'
import { processMetricsStarted, processRegistry } from './process.js'

describe('Metrics', () => {
  it('starts the process metrics on the first scrape only, once for every instance of the process', async () => {
    // Unit tests share a process (test/groups/): an earlier file may have scraped already.
    const startedBefore = processMetricsStarted()
    const instances = Array.from({ length: 20 }, () => new Metrics())
    assert.equal(processMetricsStarted(), startedBefore, 'nothing started by making instances')
    const registry = processRegistry()
    for (const m of instances) {
      const s = parseMetrics(await m.text())
      assert.equal(series(s, 'nodejs_version_info').length, 1)
      assert.equal(series(s, 'switchyard_build_info').length, 0, 'no version set on a bare instance')
    }
    assert.equal(processRegistry(), registry)
    assert.equal(registry.getSingleMetric('nodejs_version_info') !== undefined, true)
  })

  it("labels the process metrics of a worker's scrape, and sums them as they are", async () => {
    const json = await new Metrics().json({ worker: '3' })
    const version = json.find((m) => m.name === 'nodejs_version_info')
    assert.equal(version?.aggregator, 'sum')
    assert.equal(version?.values[0]?.labels.worker, '3')
    const start = json.find((m) => m.name === 'process_start_time_seconds')
    assert.equal(start?.aggregator, 'sum', "prom-client's own is omit, which would drop it")
    const own = json.find((m) => m.name === 'switchyard_http_requests_total')
    assert.equal(own?.aggregator, 'sum')
  })

  it('drops the series of servers and pools that went, every per-server one included', async () => {
    const m = new Metrics()
    for (const [pool, server] of [
      ['p', 'a'],
      ['p', 'b'],
      ['q', 'c'],
    ] as const) {
      const cells = m.forServer(pool, server)
      cells.requests.value = 1
      cells.error('5xx')
      cells.duration.observe(0.1)
      m.retryOf(pool, server, 'reset').value = 1
      m.ejectionOf(pool, server, 'outlier').value = 1
    }
    m.retryOf('q', '', 'connect-failure').value = 1
    m.retryBudgetOf('p').value = 2
    m.retryBudgetOf('q').value = 3
    m.queueWaitOf('q').observe(0.5)
    m.retainServers(new Map([['p', new Set(['a'])]]))
    const s = parseMetrics(await m.registry.metrics())
    const servers = new Set(s.samples.flatMap((x) => (x.labels.server === undefined ? [] : [x.labels.server])))
    assert.deepEqual([...servers], ['a'])
    assert.ok(
      s.samples.every((x) => x.labels.pool !== 'q'),
      'nothing of the pool that went',
    )
    assert.equal(sum(s, 'switchyard_upstream_requests_total'), 1)
    assert.equal(sum(s, 'switchyard_upstream_ejections_total'), 1)
    assert.equal(sum(s, 'switchyard_upstream_retry_budget_exhausted_total', { pool: 'p' }), 2)
    // A server that comes back starts afresh.
    assert.equal(m.forServer('p', 'b').requests.value, 0)
  })

  it('reads the pool gauges and the runtime overrides from their sources when scraped', async () => {
    const m = new Metrics()
    let pools: PoolGauges[] = []
    m.setPools(() => pools)
    m.setOverrides(() => [{ pool: 'p', server: 'a', state: 'disabled', weight: 0 }])
    let s = parseMetrics(await m.registry.metrics())
    assert.deepEqual(series(s, 'switchyard_pool_queue_depth'), [])
    pools = [
      {
        name: 'p',
        queued: 4,
        ejected: new Map([
          ['a', 'outlier'],
          ['b', 'connect-failure'],
          ['c', 'outlier'],
        ]),
        pending: () => [
          ['a', 2],
          ['b', 0],
        ],
      },
    ]
    s = parseMetrics(await m.registry.metrics())
    assert.equal(sum(s, 'switchyard_pool_queue_depth', { pool: 'p' }), 4)
    assert.equal(sum(s, 'switchyard_upstream_ejected_servers', { pool: 'p', reason: 'outlier' }), 2)
    assert.equal(sum(s, 'switchyard_upstream_ejected_servers', { pool: 'p', reason: 'connect-failure' }), 1)
    assert.equal(sum(s, 'switchyard_upstream_requests_pending', { pool: 'p', server: 'a' }), 2)
    assert.equal(series(s, 'switchyard_upstream_requests_pending').length, 2)
    assert.deepEqual(
      series(s, 'switchyard_override_state').map((x) => [x.labels, x.value]),
      [[{ pool: 'p', server: 'a', state: 'disabled' }, 1]],
    )
    assert.equal(sum(s, 'switchyard_override_weight', { pool: 'p', server: 'a' }), 0)
    assert.equal(series(s, 'switchyard_override_weight').length, 1, 'a weight of 0 is a weight')
  })

  it('counts rate-limit and access rejections under labels of the config', async () => {
    const m = new Metrics()
    m.rateLimitOf('web', '', 'default', 'rate').value = 2
    m.rateLimitOf('web', 'login', 'login', 'concurrent').value = 1
    assert.equal(m.rateLimitOf('web', '', 'default', 'rate').value, 2, 'the same cell again')
    m.accessDeniedOf('web', '3').value = 5
    const s = parseMetrics(await m.registry.metrics())
    assert.deepEqual(
      series(s, 'switchyard_rate_limit_rejections_total').map((x) => [x.labels, x.value]),
      [
        [{ listener: 'web', route: '', limit: 'default', kind: 'rate' }, 2],
        [{ listener: 'web', route: 'login', limit: 'login', kind: 'concurrent' }, 1],
      ],
    )
    assert.deepEqual(
      series(s, 'switchyard_access_denied_total').map((x) => [x.labels, x.value]),
      [[{ listener: 'web', route: '3' }, 5]],
    )
  })
})
