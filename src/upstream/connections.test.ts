/** The registry: one set of connections per server, engine and settings, and the engine it picks. */
import assert from 'node:assert/strict'
import { afterEach, describe, it } from 'node:test'
import { memoryLogger } from '../../test/helpers/log.js'
import type { Backend } from '../core/backend.js'
import { Http1Agent } from '../http1/agent.js'
import { resetNativeParserCheck } from '../http1/parser.js'
import { UndiciConnections } from '../http1/upstream-undici.js'
import { ConnectionRegistry, type ConnectionSettings, engineFor, resetFallbackWarning } from './connections.js'

const backend: Backend = {
  id: 'b',
  pool: 'p',
  host: '127.0.0.1',
  port: 1,
  origin: 'http://127.0.0.1:1',
  tls: false,
  weight: 1,
  backup: false,
  draining: false,
  disabled: false,
}

function settings(over: Partial<ConnectionSettings> = {}): ConnectionSettings {
  return {
    maxPerServer: 4,
    keepAliveMs: 4000,
    maxRequestsPerConnection: 0,
    maxConcurrentStreams: 100,
    connectMs: 1000,
    engine: 'native',
    ...over,
  }
}

afterEach(() => {
  resetNativeParserCheck()
  resetFallbackWarning()
})

describe('ConnectionRegistry', () => {
  it('gives native pools the native engine and node pools undici, shared per server and settings', async () => {
    const registry = new ConnectionRegistry()
    const a = registry.acquire(backend, settings())
    const b = registry.acquire(backend, settings())
    const c = registry.acquire(backend, settings({ engine: 'node' }))
    const d = registry.acquire(backend, settings({ maxRequestsPerConnection: 10 }))
    assert.ok(a.connections instanceof Http1Agent)
    assert.equal(a.connections, b.connections)
    assert.equal(a.load, b.load)
    assert.ok(c.connections instanceof UndiciConnections)
    assert.notEqual(d.connections, a.connections)
    assert.equal(registry.size, 3)
    registry.release(a.key)
    assert.equal(registry.size, 3, 'still referenced')
    registry.release(b.key)
    assert.equal(registry.size, 2)
    await registry.closeAll(0)
    assert.equal(registry.size, 0)
  })

  it('falls back to undici when the parser self-test fails, and says so once per process', async () => {
    resetNativeParserCheck({ ok: false, reason: 'HTTPParser.kOnHeaders is missing' })
    assert.deepEqual(engineFor('native'), { engine: 'node', fallback: 'HTTPParser.kOnHeaders is missing' })
    assert.deepEqual(engineFor('node'), { engine: 'node' })
    const log = memoryLogger()
    const one = new ConnectionRegistry(log.logger)
    const two = new ConnectionRegistry(log.logger)
    const a = one.acquire(backend, settings())
    two.acquire({ ...backend, port: 2, origin: 'http://127.0.0.1:2' }, settings())
    assert.ok(a.connections instanceof UndiciConnections)
    const warnings = log.lines.filter((l) => l.level === 40)
    assert.equal(warnings.length, 1)
    assert.match(String(warnings[0]!.msg), /native HTTP\/1.1 engine is not available.*kOnHeaders is missing/)
    await one.closeAll(0)
    await two.closeAll(0)
  })
})
