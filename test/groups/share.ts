/**
 * `npm test` runs the suites in a few processes rather than one per file: each process loads the
 * source graph through tsx's loader once, which costs about 2 s of CPU, 40 times over otherwise. A
 * group imports its share of the files; every file still runs alone with
 * `node --import tsx --test test/NAME.test.ts`.
 *
 * - `src/<area>/*.test.ts` (unit tests) all go in one group.
 * - `test/*.test.ts` (integration tests) are dealt round-robin, in name order, over GROUPS groups.
 *
 * The files list their own servers, timers and handles and close them in their hooks, so the next
 * file in a process starts clean; none sets a process-wide option.
 */
import { readdirSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

/** How many groups the integration tests are dealt into (test/groups/integration-N.test.ts). */
export const GROUPS = 6

/** Imports the unit test files under src/. */
export async function importUnits(): Promise<void> {
  const src = new URL('../../src/', import.meta.url)
  const files: string[] = []
  for (const area of readdirSync(src, { withFileTypes: true }))
    if (area.isDirectory())
      for (const name of readdirSync(new URL(`${area.name}/`, src)))
        if (name.endsWith('.test.ts')) files.push(`${area.name}/${name}`)
  for (const f of files.sort()) await import(fileURLToPath(new URL(f, src)))
}

/** Imports group `n` (0-based) of the integration test files in test/. */
export async function importShare(n: number): Promise<void> {
  const dir = new URL('../', import.meta.url)
  const files = readdirSync(dir)
    .filter((name) => name.endsWith('.test.ts'))
    .sort()
  for (const [i, f] of files.entries()) if (i % GROUPS === n) await import(fileURLToPath(new URL(f, dir)))
}
