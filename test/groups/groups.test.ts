/** The groups cover share.ts's GROUPS shares, so no integration test file is left out of `npm test`. */
import assert from 'node:assert/strict'
import { readdirSync } from 'node:fs'
import { it } from 'node:test'
import { GROUPS } from './share.js'

it('has one integration group file per share, and a unit group', () => {
  const names = readdirSync(new URL('./', import.meta.url)).filter((n) => n.endsWith('.test.ts'))
  const shares = Array.from({ length: GROUPS }, (_, i) => `integration-${i + 1}.test.ts`)
  assert.deepEqual(names.filter((n) => n.startsWith('integration-')).sort(), shares.sort())
  assert.ok(names.includes('units.test.ts'))
})
