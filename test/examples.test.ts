/**
 * Every example config stays valid, every example cases file (`*.cases.yaml`, not a config) passes
 * under `switchyard test`, and the embedding example runs.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { formatIssue, loadConfigFile } from '../src/index.js'
import { runCasesFiles } from '../src/testkit/index.js'

const run = promisify(execFile)

describe('examples/', async () => {
  const yaml = (await readdir('examples')).filter((f) => f.endsWith('.yaml'))
  const files = yaml.filter((f) => !f.endsWith('.cases.yaml'))
  const cases = yaml.filter((f) => f.endsWith('.cases.yaml'))

  it('has example configs', () => assert.ok(files.length >= 4))

  for (const f of files) {
    it(`${f} is valid`, async () => {
      const r = await loadConfigFile(`examples/${f}`, { API_HOST: '127.0.0.1' })
      assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
    })
  }

  for (const f of cases) {
    it(`${f} passes (switchyard test)`, async () => {
      const lines: string[] = []
      const code = await runCasesFiles([`examples/${f}`], { out: (t) => lines.push(t), err: (t) => lines.push(t) })
      assert.equal(code, 0, lines.join('\n'))
    })
  }

  it('embed.ts runs: round-robin over two backends, then a reload to one', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/embed.ts'], { timeout: 20_000 })
    assert.equal(stdout, 'hello from one\nhello from two\nhello from one\nhello from two\nhello from two\n')
  })
})
