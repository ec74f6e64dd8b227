/**
 * The `switchyard` command as a user runs it, in a real child process (and, where only its output is
 * checked, its `main` in this process, which saves a process start): validation. Its flags and usage
 * errors are in test/slow/cli-flags.test.ts, the tests that start a serving process in
 * test/slow/cli-serving.test.ts.
 */
import assert from 'node:assert/strict'
import path, { join } from 'node:path'
import { describe, it } from 'node:test'
import { main } from '../src/cli.js'
import { configFiles, runCliToEnd } from './helpers/cli.js'

const file = configFiles('switchyard-cli-')

/** `main` in this process, its output captured as the command would print it. */
async function runMain(argv: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const code = await main(argv, { out: (t) => (stdout += `${t}\n`), err: (t) => (stderr += `${t}\n`) })
  return { code, stdout, stderr }
}

describe('switchyard validate', () => {
  it('prints a one-line summary and exits 0 for a valid file', async () => {
    const f = await file(
      'ok.yaml',
      'listeners:\n  - { name: a, listen: 127.0.0.1:0, routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1, http://127.0.0.1:2] }\n',
    )
    const r = await runCliToEnd(['validate', f])
    assert.equal(r.code, 0)
    assert.equal(r.stdout, `${f}: ok (1 listener, 1 route, 1 pool, 2 servers)\n`)
  })

  it('prints every problem as FILE:LINE:COL: key.path: expected/found and exits 2', async () => {
    const f = await file(
      'bad.yaml',
      [
        'listeners:',
        '  - name: a',
        '    listen: 127.0.0.1:0',
        '    routes: [{ pool: nope }]',
        'pools:',
        '  - name: p',
        '    servers:',
        '      - url: http://127.0.0.1:1',
        '        weight: heavy',
        '    colour: blue',
        '',
      ].join('\n'),
    )
    const r = await runMain(['validate', f])
    assert.equal(r.code, 2)
    assert.equal(
      r.stderr,
      [
        `${f}:4:22: listeners[0].routes[0].pool: expected the name of a pool (p), found "nope"`,
        `${f}:9:17: pools[0].servers[0].weight: expected a number, found "heavy"`,
        `${f}:10:5: pools[0].colour: unknown key, expected one of name, balance, engine, protocol, servers, sendProxyProtocol, tls, sticky, healthCheck, outlierDetection, retries, ejectOnConnectFailure, panicThreshold, slowStart, preserveHost, timeouts, connections, queue`,
        '3 problems found',
        '',
      ].join('\n'),
    )
  })

  it('says so when the file is missing', async () => {
    const r = await runMain(['validate', join(path.dirname(await file('here.yaml', '')), 'missing.yaml')])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /missing\.yaml:1:1: \(file\): cannot read: no such file/)
  })

  it('refuses to start with an invalid config, with the same positioned errors', async () => {
    const f = await file('bad2.yaml', 'listeners: []\npools: []\n')
    const r = await runCliToEnd(['--config', f])
    assert.equal(r.code, 2)
    assert.match(r.stderr, /bad2\.yaml:1:12: listeners: expected at least 1 item, found 0/)
  })
})
