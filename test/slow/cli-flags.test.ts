/**
 * The `switchyard` command's flags and usage errors, in real child processes: one process per case, so
 * the suite takes seconds (moved out of test/cli.test.ts, which keeps the validation tests).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import { configFiles, runCliToEnd } from '../helpers/cli.js'

const file = configFiles('switchyard-cli-flags-')

describe('switchyard flags', () => {
  it('--watch without --config is a usage error', async () => {
    const r = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', 'http://127.0.0.1:1', '--watch'])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /--watch needs --config FILE/)
  })

  it('--version and --help', async () => {
    const v = await runCliToEnd(['--version'])
    assert.equal(v.code, 0)
    assert.match(v.stdout, /^\d+\.\d+\.\d+\n$/)
    const h = await runCliToEnd(['--help'])
    assert.equal(h.code, 0)
    for (const flag of ['--listen', '--to', '--balance', '--admin', '--config', 'validate', 'demo', '--log-level'])
      assert.ok(h.stdout.includes(flag), `help mentions ${flag}`)
  })

  it('rejects unknown flags and bad quick-mode values with exit 2', async () => {
    const u = await runCliToEnd(['--frobnicate'])
    assert.equal(u.code, 2)
    assert.match(u.stderr, /Unknown option '--frobnicate'/)
    const b = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', 'ftp://x', '--balance', 'fastest'])
    assert.equal(b.code, 2)
    assert.match(b.stderr, /--balance: expected "round-robin" or "weighted-round-robin"/)
    assert.match(b.stderr, /--balance: expected "round-robin" or .* or "maglev", found "fastest"\n/)
    assert.match(b.stderr, /--to #1: expected an http:\/\/, https:\/\/ \(or tcp:\/\/\) URL, found "ftp:\/\/x"/)
  })

  it('the installed bin runs (needs the build from npm ci)', {
    skip: !existsSync('dist/cli.js') && 'dist/ not built',
  }, async () => {
    const { execFile } = await import('node:child_process')
    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, ['bin/switchyard.js', '--version'], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    )
    assert.match(out, /^\d+\.\d+\.\d+\n$/)
  })

  it('a port already in use gives a one-line error naming the flag or the config key, and exit 1', async () => {
    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    const { port } = blocker.address() as AddressInfo
    const taken = `127.0.0.1:${port}`
    try {
      const listen = await runCliToEnd(['--listen', taken, '--to', 'http://127.0.0.1:1'])
      assert.equal(listen.code, 1)
      assert.equal(listen.stderr, `switchyard: --listen ${taken}: address already in use\n`)
      const admin = await runCliToEnd(['--listen', '127.0.0.1:0', '--to', 'http://127.0.0.1:1', '--admin', taken])
      assert.equal(admin.code, 1)
      assert.equal(admin.stderr, `switchyard: --admin ${taken}: address already in use\n`)
      const demo = await runCliToEnd(['demo', '--listen', '127.0.0.1:0', '--admin', taken])
      assert.equal(demo.code, 1)
      assert.equal(demo.stderr, `switchyard: --admin ${taken}: address already in use\n`)
      // With workers, the listener is bound in the worker processes; the error is the same.
      const workers = await runCliToEnd(['--listen', taken, '--to', 'http://127.0.0.1:1', '--workers', '2'])
      assert.equal(workers.code, 1)
      assert.equal(workers.stderr, `switchyard: --listen ${taken}: address already in use\n`)

      const body = (listenAt: string, adminAt: string) =>
        `admin: { listen: "${adminAt}" }\nlisteners:\n  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: p }] }\n  - { name: api, listen: "${listenAt}", routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1] }\n`
      const f1 = await file('in-use-listener.yaml', body(taken, '127.0.0.1:0'))
      const l = await runCliToEnd(['-c', f1])
      assert.equal(l.code, 1)
      assert.equal(l.stderr, `switchyard: ${f1}: listener "api" (listen: ${taken}): address already in use\n`)
      const f2 = await file('in-use-admin.yaml', body('127.0.0.1:0', taken))
      const a = await runCliToEnd(['-c', f2])
      assert.equal(a.code, 1)
      assert.equal(a.stderr, `switchyard: ${f2}: admin.listen ${taken}: address already in use\n`)
    } finally {
      blocker.close()
    }
  })
})
