import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CHECK_TYPES, createProbe, HEALTH_CHECKS, type HealthCheckTable, healthCheckSchema } from './index.js'

describe('health check registry', () => {
  it('derives the type names and the config union from the one table', () => {
    assert.deepEqual(CHECK_TYPES, Object.keys(HEALTH_CHECKS))
    for (const [name, entry] of Object.entries(HEALTH_CHECKS)) {
      assert.equal(entry.schema.shape.type.value, name, `${name}: its schema's type literal`)
      assert.equal(healthCheckSchema.safeParse({ type: name }).success, true, name)
    }
  })

  it('builds probes from the table, or from a caller-given one', async () => {
    const options = healthCheckSchema.parse({ type: 'tcp' })
    assert.equal(typeof createProbe(options), 'function')
    const table: HealthCheckTable = {
      ...HEALTH_CHECKS,
      tcp: { ...HEALTH_CHECKS.tcp, create: () => async () => 'stub' },
    }
    assert.equal(await createProbe(options, table)({ host: '127.0.0.1', port: 1 }, 10), 'stub')
    assert.throws(() => createProbe(options, {}), /unknown health check type "tcp"/)
  })
})
