/** The embedding API: createLoadBalancer / start / reload / close, as a library user calls it. */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type ConfigInput, createLoadBalancer, isSwitchyardError } from '../src/index.js'
import { startBackends, type TestBackend } from './helpers/backends.js'
import { waitFor } from './helpers/wait.js'

describe('library API', () => {
  let backends: TestBackend[]
  before(async () => {
    backends = await startBackends(3)
  })
  after(async () => {
    await Promise.all(backends.map((b) => b.close()))
  })

  it('throws SWY_CONFIG_INVALID with every issue for a bad config object', () => {
    assert.throws(
      () => createLoadBalancer({ listeners: [], pools: [{ name: 'p', servers: ['nope'] }] } as ConfigInput),
      (err: unknown) => {
        assert.ok(isSwitchyardError(err))
        assert.equal(err.code, 'SWY_CONFIG_INVALID')
        const issues = err.details?.issues as { path: string; message: string }[]
        assert.deepEqual(
          issues.map((i) => i.path),
          ['listeners', 'pools[0].servers[0]'],
        )
        return true
      },
    )
  })

  it('reload() swaps pools while serving, keeps listeners, and rejects a bad config without effect', async () => {
    const cfg = (servers: string[]): ConfigInput => ({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers }],
    })
    const lb = createLoadBalancer(cfg([backends[0]!.url]))
    await lb.start()
    try {
      const port = lb.addresses().l!.port
      const url = `http://127.0.0.1:${port}/`
      assert.equal(await (await fetch(url)).text(), 'b1')

      // Reload under concurrent load: every request answers 200.
      let failures = 0
      let count = 0
      const load = Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = 0; i < 40; i++) {
            count++
            const r = await fetch(url).catch(() => undefined)
            if (r?.status !== 200) failures++
            await r?.arrayBuffer()
          }
        }),
      )
      await lb.reload(cfg([backends[1]!.url, backends[2]!.url]))
      await load
      assert.equal(failures, 0, `${failures} of ${count} requests failed during reload`)
      assert.equal(lb.addresses().l!.port, port, 'the listener kept its socket')
      const after = new Set<string>()
      for (let i = 0; i < 4; i++) after.add(await (await fetch(url)).text())
      assert.deepEqual([...after].sort(), ['b2', 'b3'])
      assert.equal(lb.status().generation, 2)

      await assert.rejects(
        lb.reload({ listeners: 'nope' }),
        (err: unknown) => isSwitchyardError(err) && err.code === 'SWY_CONFIG_INVALID',
      )
      assert.equal(lb.status().generation, 2)
      assert.equal(await (await fetch(url)).text().then((t) => t.startsWith('b')), true)
    } finally {
      await lb.close()
    }
  })

  it('reload() moves a listener to a new address: binds the new one first, drains the old one', async () => {
    const lb = createLoadBalancer({
      listeners: [{ name: 'a', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [{ name: 'p', servers: [backends[0]!.url] }],
    })
    await lb.start()
    try {
      const oldPort = lb.addresses().a!.port
      await lb.reload({
        listeners: [{ name: 'a', listen: '[::1]:0', routes: [{ pool: 'p' }] }],
        pools: [{ name: 'p', servers: [backends[0]!.url] }],
      })
      const moved = lb.addresses().a!
      assert.equal(moved.address, '::1')
      assert.equal(await (await fetch(`http://[::1]:${moved.port}/`)).text(), 'b1')
      await waitFor(
        () =>
          fetch(`http://127.0.0.1:${oldPort}/`).then(
            () => false,
            () => true,
          ),
        'the old address to close',
      )
    } finally {
      await lb.close()
    }
  })

  it('status() reports listeners, pools and servers from the active snapshot', async () => {
    const lb = createLoadBalancer({
      listeners: [{ name: 'l', listen: '127.0.0.1:0', routes: [{ pool: 'p' }] }],
      pools: [
        { name: 'p', balance: 'weighted-round-robin', servers: [{ url: backends[0]!.url, weight: 5, name: 'alpha' }] },
      ],
    })
    await lb.start()
    try {
      const s = lb.status()
      assert.equal(s.listeners[0]!.name, 'l')
      assert.deepEqual(s.pools, [
        {
          name: 'p',
          algorithm: 'weighted-round-robin',
          servers: [{ id: 'alpha', origin: backends[0]!.url, weight: 5, backup: false }],
        },
      ])
    } finally {
      await lb.close()
    }
  })
})
