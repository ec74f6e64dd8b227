/**
 * logrotate's way with the access log, against the real `switchyard` command in a child process: the
 * file is renamed, SIGUSR1 is sent, and the lines after the reopen go to a new file at the path, with
 * none lost or doubled. With `workers: 2`, the supervisor passes the reopen to every worker, and the
 * workers' lines, appended to one file by two processes, stay whole.
 */
import assert from 'node:assert/strict'
import { readFile, rename } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { Agent, request } from 'undici'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { type CliProcess, configFiles, runCli, runCliToEnd } from '../helpers/cli.js'

const file = configFiles('switchyard-reopen-')

/** The access lines of `path`, parsed; every line must be whole JSON. */
async function accessLines(path: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(path, 'utf8')
  assert.ok(text === '' || text.endsWith('\n'), 'the file ends with a whole line')
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
}

describe('access log reopen on SIGUSR1', () => {
  let backend: TestBackend
  before(async () => {
    backend = await startBackend('b1')
  })
  after(() => backend.close())

  for (const workers of [1, 2]) {
    it(`moves to a new file after a rename, losing no line (workers: ${workers})`, async () => {
      const cfg = await file(
        `reopen-${workers}.yaml`,
        [
          `workers: ${workers}`,
          'logging:',
          `  accessLog: { file: access-${workers}.log }`,
          'listeners:',
          '  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: app }] }',
          'pools:',
          `  - { name: app, servers: ["${backend.url}"] }`,
          '',
        ].join('\n'),
      )
      // Relative to the config file's directory.
      const log = join(dirname(cfg), `access-${workers}.log`)
      // Round-robin hand-out of connections, so that both workers serve (and write).
      const p: CliProcess = runCli(['-c', cfg], workers > 1 ? { NODE_CLUSTER_SCHED_POLICY: 'rr' } : {})
      const agent = new Agent({ connections: 8, pipelining: 1 })
      try {
        const ready = await p.waitForLog((l) => l.listener === 'web' && typeof l.address === 'string')
        await p.waitForLog((l) => String(l.msg).includes('running as pid'))
        const base = `http://${String(ready.address)}`
        let sent = 0
        const batch = async (n: number, tag: string) => {
          await Promise.all(
            Array.from({ length: n }, async () => {
              const i = sent++
              const r = await request(`${base}/${tag}/${i}`, { dispatcher: agent })
              assert.equal(r.statusCode, 200)
              await r.body.text()
            }),
          )
        }
        await batch(60, 'before')
        await rename(log, `${log}.1`)
        // Written after the rename, before the reopen: to the renamed file (the descriptor is still its).
        await batch(40, 'renamed')
        p.kill('SIGUSR1')
        for (let w = 0; w < workers; w++)
          await p.waitForLog((l) => l.msg === `access log ${log} reopened` && (workers === 1 || l.worker === w), 15_000)
        await batch(50, 'after')
        p.kill('SIGTERM')
        assert.equal(await p.exited(), 0)
      } finally {
        p.kill('SIGKILL')
        await agent.close()
      }
      assert.doesNotMatch(p.stderr(), /Debugger listening/, 'SIGUSR1 did not start the inspector')
      const old = await accessLines(`${log}.1`)
      const fresh = await accessLines(log)
      const tags = (ls: Record<string, unknown>[]) => ls.map((l) => String(l.url).split('/')[1])
      assert.deepEqual([...new Set(tags(old))].sort(), ['before', 'renamed'])
      assert.deepEqual([...new Set(tags(fresh))], ['after'])
      const urls = [...old, ...fresh].map((l) => String(l.url))
      assert.equal(urls.length, 150, 'one line per request')
      assert.equal(new Set(urls).size, 150, 'no line twice')
      for (const l of [...old, ...fresh]) assert.equal(l.type, 'access')
      if (workers > 1) {
        const by = new Set([...old, ...fresh].map((l) => l.worker))
        assert.deepEqual([...by].sort(), [0, 1], 'both workers wrote to the file')
      }
    })
  }

  for (const workers of [1, 2]) {
    it(`does not start when the file cannot be opened, and says why (workers: ${workers})`, async () => {
      const cfg = await file(
        `unopenable-${workers}.yaml`,
        [
          `workers: ${workers}`,
          'logging:',
          '  accessLog: { file: no-such-dir/access.log }',
          'listeners:',
          '  - { name: web, listen: 127.0.0.1:0, routes: [{ pool: app }] }',
          'pools:',
          `  - { name: app, servers: ["${backend.url}"] }`,
          '',
        ].join('\n'),
      )
      const r = await runCliToEnd(['-c', cfg])
      assert.equal(r.code, 1)
      assert.match(
        r.stderr,
        new RegExp(`logging\\.accessLog\\.file: cannot open ${dirname(cfg)}/no-such-dir/access\\.log: ENOENT`),
      )
    })
  }
})
