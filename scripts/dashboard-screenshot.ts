/**
 * Takes docs/img/dashboard.png: a demo-like instance (two listeners, three pools, a slow pool, a
 * flaky server that gets ejected, a server whose health check fails), real traffic through it for a
 * while, a weight change and a drain through the admin API, then the dashboard in headless Chromium
 * (Debian's /usr/bin/chromium, driven by playwright-core).
 *
 *   npx tsx scripts/dashboard-screenshot.ts [OUT.png] [--seconds 40] [--phone] [--serve]
 *
 * `--phone` takes it at a phone's size (390 × 844 CSS pixels, twice as dense). *
 * `--serve` keeps everything running after the picture (the admin URL and token are printed), for
 * working on the dashboard. Traffic goes to 127.0.0.1 only, and stops with the script.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { chromium } from 'playwright-core'
import { createLoadBalancer } from '../src/index.js'
import { buildDashboard } from './build-dashboard.js'
import { CHROMIUM, CHROMIUM_ARGS } from './chromium.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TOKEN = 'dashboard-screenshot-token-0123456789'

interface Sample {
  readonly name: string
  readonly url: string
  readonly server: Server
}

/** A server that answers after about `meanMs` (log-normal), with status 503 for a share `failRate` of requests. */
async function sample(name: string, meanMs: number, failRate = 0): Promise<Sample> {
  const server = createServer((req, res) => {
    req.resume()
    const delay = meanMs * Math.exp(0.6 * gaussian() - 0.18)
    setTimeout(() => {
      const status = req.url?.startsWith('/missing') ? 404 : Math.random() < failRate ? 503 : 200
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ server: name, status }))
    }, delay)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { name, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server }
}

function gaussian(): number {
  return Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random())
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      seconds: { type: 'string', default: '40' },
      phone: { type: 'boolean', default: false },
      serve: { type: 'boolean', default: false },
    },
  })
  const out = path.resolve(positionals[0] ?? path.join(ROOT, 'docs', 'img', 'dashboard.png'))
  const seconds = Math.min(600, Math.max(5, Number(values.seconds)))
  await buildDashboard()

  const web = [await sample('web-1', 6), await sample('web-2', 7), await sample('web-3', 9)]
  const api = [await sample('api-1', 38), await sample('api-2', 45), await sample('api-3', 40, 0.12)]
  const assets = [await sample('assets-1', 1.2), await sample('assets-2', 1.5)]
  const all = [...web, ...api, ...assets]
  const lb = createLoadBalancer({
    admin: { listen: '127.0.0.1:0', token: TOKEN },
    listeners: [
      {
        name: 'public',
        listen: '127.0.0.1:0',
        routes: [
          { match: { pathPrefix: '/api/' }, pool: 'api' },
          { match: { pathPrefix: '/assets/' }, pool: 'assets' },
          { pool: 'web' },
        ],
      },
      { name: 'partners', listen: '127.0.0.1:0', routes: [{ pool: 'api' }] },
    ],
    pools: [
      { name: 'web', balance: 'round-robin', servers: web.map((s) => ({ url: s.url, name: s.name })) },
      {
        name: 'api',
        balance: { algorithm: 'least-request' },
        servers: api.map((s) => ({ url: s.url, name: s.name })),
        retries: { attempts: 1, on: ['connect-failure', 'reset', '503'] },
        outlierDetection: {
          consecutiveFailures: 4,
          errorRate: { threshold: 0.1, minRequests: 30, window: '10s' },
          baseEjectionTime: '8s',
        },
      },
      {
        name: 'assets',
        balance: 'least-connections',
        servers: [
          ...assets.map((s) => ({ url: s.url, name: s.name })),
          { url: 'http://127.0.0.1:9', name: 'assets-3' },
        ],
        healthCheck: { type: 'tcp', interval: '1s', timeout: '500ms', rise: 2, fall: 2 },
      },
    ],
  })
  await lb.start()
  const admin = `http://127.0.0.1:${lb.adminAddress()?.port}`
  const publicUrl = `http://127.0.0.1:${lb.addresses().public?.port}`
  const partnersUrl = `http://127.0.0.1:${lb.addresses().partners?.port}`
  const patch = (pool: string, server: string, body: unknown) =>
    fetch(`${admin}/api/v1/pools/${pool}/servers/${server}`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then((r) => r.body?.cancel())

  // Traffic: a few clients in a loop, bounded in time, with a wave in its rate.
  const started = Date.now()
  let stop = false
  const client = async (i: number) => {
    while (!stop) {
      const r = Math.random()
      const url =
        i % 4 === 3
          ? `${partnersUrl}/orders`
          : r < 0.45
            ? `${publicUrl}/`
            : r < 0.75
              ? `${publicUrl}/assets/app.js`
              : r < 0.97
                ? `${publicUrl}/api/items`
                : `${publicUrl}/missing`
      await fetch(url)
        .then((res) => res.body?.cancel())
        .catch(() => {})
      const wave = 1 + Math.sin((Date.now() - started) / 6000)
      await new Promise((resolve) => setTimeout(resolve, 4 + wave * 8))
    }
  }
  const clients = Array.from({ length: 8 }, (_, i) => client(i))
  const at = (s: number, f: () => Promise<unknown>) =>
    setTimeout(() => void f().catch((err) => console.error(err)), s * 1000)
  at(Math.round(seconds * 0.3), () => patch('web', 'web-1', { weight: 2 }))
  at(Math.round(seconds * 0.6), () => patch('web', 'web-3', { state: 'draining' }))
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000))

  const profile = await mkdtemp(path.join(tmpdir(), 'switchyard-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: values.phone ? { width: 390, height: 844 } : { width: 1600, height: 1000 },
    deviceScaleFactor: values.phone ? 2 : 1,
  })
  try {
    const page = await context.newPage()
    await page.goto(admin)
    await page.fill('#token', TOKEN)
    await page.click('button[type=submit]')
    await page.waitForSelector('tr.server[data-server="web-3"][data-state="draining"]')
    await page.waitForSelector('[data-testid="link"].link-live')
    // Two stats events, so that every figure has its rates.
    await page.waitForTimeout(2500)
    await page.click('tr.server[data-server="api-3"] button.link')
    await page.waitForTimeout(1200)
    await mkdir(path.dirname(out), { recursive: true })
    // A phone's page is long: its first screen, and the first pool's.
    if (values.phone) {
      await page.screenshot({ path: out })
      await page.locator('section.pool').first().scrollIntoViewIfNeeded()
      await page.screenshot({ path: out.replace(/\.png$/, '-pool.png') })
    } else await page.screenshot({ path: out, fullPage: true })
    console.log(`screenshot: ${path.relative(process.cwd(), out)}`)
    if (values.serve) {
      console.log(`admin: ${admin}  token: ${TOKEN}  (Ctrl-C stops)`)
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()))
    }
  } finally {
    await context.close()
    await rm(profile, { recursive: true, force: true })
    stop = true
    await Promise.all(clients)
    await lb.close({ gracePeriodMs: 100 })
    for (const s of all) s.server.close()
  }
}

await main()
