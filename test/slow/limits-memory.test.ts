/**
 * The rate-limit key table's memory bound (docs/security.md): 1,000,000 sprayed client addresses
 * against the default `maxKeys` of 100,000 keep the table at 100,000 keys, and the process's RSS grows
 * by less than the documented 160 MB (measured: 12.7 MB of live heap, about 130 bytes a key; RSS grows by
70 to 110 MB, V8 keeping the pages that the spray's garbage took).
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const run = promisify(execFile)
const script = fileURLToPath(new URL('../helpers/spray-keys.ts', import.meta.url))

describe('rate-limit key table', () => {
  it('1,000,000 sprayed keys: the table stays at maxKeys, RSS under 160 MB more, heap under 24 MB more', async () => {
    const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
      env: { ...process.env, KEYS: '1000000', MAX_KEYS: '100000' },
      timeout: 120_000,
    })
    const m = JSON.parse(stdout) as { size: number; rssMb: number; heapMb: number }
    assert.equal(m.size, 100_000)
    assert.ok(m.heapMb < 24, `heap grew ${m.heapMb.toFixed(1)} MB`)
    assert.ok(m.rssMb < 160, `RSS grew ${m.rssMb.toFixed(1)} MB`)
    process.stdout.write(`# sprayed 1,000,000 keys: heap +${m.heapMb.toFixed(1)} MB, RSS +${m.rssMb.toFixed(1)} MB\n`)
  })
})
