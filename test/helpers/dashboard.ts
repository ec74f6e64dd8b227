/**
 * The dashboard for tests: built once per test process into dist/dashboard/ (where the admin server
 * serves it from when running from src/), and headless Chromium to open it.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { type BrowserContext, chromium } from 'playwright-core'
import { buildDashboard, type Manifest } from '../../scripts/build-dashboard.js'
import { CHROMIUM, CHROMIUM_ARGS } from '../../scripts/chromium.js'

let built: Promise<Manifest> | undefined

/** Builds the dashboard (once per process: a fresh clone has none, and a stale one would test old code). */
export function ensureDashboard(): Promise<Manifest> {
  built ??= buildDashboard()
  return built
}

/**
 * The `skip` of a test that needs Chromium: false when /usr/bin/chromium is there, else the reason.
 * Under CI (CI=true, as .ci/run runs) or SWITCHYARD_REQUIRE_CHROMIUM=1 a missing one is an error instead.
 */
export function chromiumSkip(): false | string {
  if (existsSync(CHROMIUM)) return false
  if (process.env.CI === 'true' || process.env.SWITCHYARD_REQUIRE_CHROMIUM === '1')
    throw new Error(`${CHROMIUM} is required here but not installed (apt-get install chromium)`)
  return `${CHROMIUM} is not installed (apt-get install chromium)`
}

export interface Browser {
  readonly context: BrowserContext
  close(): Promise<void>
}

/** Headless Chromium with a fresh profile in a temporary directory, removed on close. */
export async function launchChromium(): Promise<Browser> {
  const profile = await mkdtemp(path.join(tmpdir(), 'switchyard-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1400, height: 900 },
  })
  return {
    context,
    async close() {
      await context.close()
      await rm(profile, { recursive: true, force: true })
    },
  }
}
