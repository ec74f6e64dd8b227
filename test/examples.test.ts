/** Every example config stays valid, and the embedding example runs. */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { describe, it } from 'node:test'
import { promisify } from 'node:util'
import { formatIssue, loadConfigFile } from '../src/index.js'

const run = promisify(execFile)

describe('examples/', async () => {
  const files = (await readdir('examples')).filter((f) => f.endsWith('.yaml'))

  it('has example configs', () => assert.ok(files.length >= 4))

  for (const f of files) {
    it(`${f} is valid`, async () => {
      const r = await loadConfigFile(`examples/${f}`, { API_HOST: '127.0.0.1' })
      assert.ok(r.ok, r.ok ? '' : r.issues.map(formatIssue).join('\n'))
    })
  }

  it('embed.ts runs: round-robin over two backends, then a reload to one', async () => {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'examples/embed.ts'], { timeout: 20_000 })
    assert.equal(stdout, 'hello from one\nhello from two\nhello from one\nhello from two\nhello from two\n')
  })
})
