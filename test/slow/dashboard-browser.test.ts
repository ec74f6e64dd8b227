/**
 * The dashboard in a real browser: headless Chromium (Debian's /usr/bin/chromium, through
 * playwright-core) against a real load balancer with real backends. It signs in with the token (kept
 * in sessionStorage, never in a URL), shows every pool and server, follows the traffic through the
 * event stream, and steers servers with its buttons: a drained server gets no request after the API
 * acknowledged the drain, as its backend counts.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Page, Request } from 'playwright-core'
import { createLoadBalancer, type LoadBalancer } from '../../src/index.js'
import { adminClient } from '../helpers/admin.js'
import { startBackends, type TestBackend } from '../helpers/backends.js'
import { type Browser, chromiumSkip, ensureDashboard, launchChromium } from '../helpers/dashboard.js'

// The functions given to page.evaluate run in the page; these are the page's globals they use.
declare const sessionStorage: { getItem(key: string): string | null }
declare const localStorage: { readonly length: number }
declare const window: { readonly innerWidth: number }
declare const document: {
  readonly documentElement: { readonly scrollWidth: number }
  querySelector(selector: string): { readonly textContent: string | null; readonly clientWidth: number } | null
}

const TOKEN = 'dashboard-browser-token-0123456789'
const TOKEN_KEY = 'switchyard.adminToken'

const skip = chromiumSkip()

describe('dashboard in Chromium', { skip }, () => {
  let backends: TestBackend[]
  let lb: LoadBalancer
  let web: string
  let admin: string
  let browser: Browser
  let page: Page
  /** Every request the browser made, to check that none carries the token in its URL. */
  const requests: Request[] = []

  before(async () => {
    const [, b] = await Promise.all([ensureDashboard(), startBackends(4)])
    backends = b
    lb = createLoadBalancer({
      admin: { listen: '127.0.0.1:0', token: TOKEN },
      listeners: [
        { name: 'web', listen: '127.0.0.1:0', routes: [{ pool: 'app' }] },
        { name: 'side', listen: '127.0.0.1:0', routes: [{ pool: 'spare' }] },
      ],
      pools: [
        {
          name: 'app',
          servers: backends.slice(0, 3).map((x) => ({ url: x.url, name: x.name })),
          connections: { maxClientShare: 1 },
        },
        { name: 'spare', balance: 'least-connections', servers: [{ url: backends[3]?.url ?? '', name: 'b4' }] },
      ],
    })
    await lb.start()
    web = `http://127.0.0.1:${lb.addresses().web?.port}`
    admin = `http://127.0.0.1:${lb.adminAddress()?.port}`
    browser = await launchChromium()
    browser.context.on('request', (r) => requests.push(r))
    page = await browser.context.newPage()
  })
  after(async () => {
    await browser?.close()
    await lb?.close({ gracePeriodMs: 100 })
    await Promise.all((backends ?? []).map((b) => b.close()))
  })

  const send = async (n: number, url = `${web}/`) => {
    const names: string[] = []
    for (let i = 0; i < n; i++) {
      const r = await fetch(url)
      assert.equal(r.status, 200)
      names.push(await r.text())
    }
    return names
  }

  it('asks for the token, refuses a wrong one, and keeps the right one in sessionStorage only', async () => {
    await page.goto(admin)
    await page.waitForSelector('form.login #token')
    await page.fill('#token', 'not-the-token-at-all-0000')
    await page.click('form.login button[type=submit]')
    await page.waitForSelector('form.login .error:has-text("refused")')
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), null)
    await page.fill('#token', TOKEN)
    await page.click('form.login button[type=submit]')
    await page.waitForSelector('[data-testid="link"].link-live')
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), TOKEN_KEY), TOKEN)
    assert.equal(await page.evaluate(() => localStorage.length), 0)
    assert.deepEqual(await browser.context.cookies(), [])
    // Kept for the tab: a reload goes straight in.
    await page.reload()
    await page.waitForSelector('[data-testid="link"].link-live')
    assert.equal(await page.locator('form.login').count(), 0)
    // Another tab has its own session storage: it asks again.
    const other = await browser.context.newPage()
    await other.goto(admin)
    await other.waitForSelector('form.login #token')
    await other.close()
  })

  it('shows every pool and server with its state, and its counters move within 2 s as traffic flows', async () => {
    for (const [pool, servers] of [
      ['app', ['b1', 'b2', 'b3']],
      ['spare', ['b4']],
    ] as const) {
      const card = page.locator(`section.pool[data-pool="${pool}"]`)
      await card.waitFor()
      for (const s of servers) {
        const row = card.locator(`tr.server[data-server="${s}"]`)
        await row.waitFor()
        assert.equal(await row.getAttribute('data-state'), 'up')
        assert.match((await row.locator('.pill').textContent()) ?? '', /up/i)
      }
    }
    assert.equal(await page.locator('article.listener').count(), 2)
    const counter = page.locator('article.listener[data-listener="web"] [data-testid="listener-requests"]')
    const before = Number(((await counter.textContent()) ?? '').replaceAll(',', ''))
    await send(10)
    // Within 2 s of the requests: the stats event of the next second shows them.
    await page.waitForFunction(
      ([sel, n]) => Number(document.querySelector(sel as string)?.textContent?.replaceAll(',', '')) >= (n as number),
      ['article.listener[data-listener="web"] [data-testid="listener-requests"]', before + 10],
      { timeout: 2000 },
    )
    const b1 = page.locator('section.pool[data-pool="app"] tr.server[data-server="b1"] [data-testid="server-requests"]')
    await page.waitForFunction(
      ([el, n]) => Number((el as { textContent: string | null }).textContent?.replaceAll(',', '')) === n,
      [await b1.elementHandle(), backends[0]?.requests.length],
      { timeout: 2000 },
    )
    // The charts are drawn: uPlot's canvases, one per chart.
    assert.ok((await page.locator('section.pool[data-pool="app"] .uplot canvas').count()) >= 2)
  })

  it('drains a server with its button, after a confirmation: no request reaches it once the API acknowledged it', async () => {
    const b2 = backends[1] as TestBackend
    const row = page.locator('section.pool[data-pool="app"] tr.server[data-server="b2"]')
    await row.locator('button[data-action="drain"]').click()
    const dialog = page.locator('dialog.modal[open]')
    await dialog.waitFor()
    assert.match((await dialog.locator('h3').textContent()) ?? '', /Drain app\/b2\?/)
    // Cancel does nothing.
    await dialog.locator('button:has-text("Cancel")').click()
    await dialog.waitFor({ state: 'detached' })
    assert.equal((await adminClient(admin, TOKEN).get('/api/v1/pools/app/servers/b2')).state, 'up')
    await row.locator('button[data-action="drain"]').click()
    const acknowledged = page.waitForResponse(
      (r) => r.request().method() === 'PATCH' && r.url().endsWith('/api/v1/pools/app/servers/b2'),
    )
    await page.locator('dialog.modal[open] button[data-confirm]').click()
    const answer = await acknowledged
    assert.equal(answer.status(), 200)
    const seen = b2.requests.length
    assert.equal(answer.request().headers().authorization, `Bearer ${TOKEN}`)
    assert.deepEqual(answer.request().postDataJSON(), { state: 'draining' })
    await page.waitForSelector('section.pool[data-pool="app"] tr.server[data-server="b2"][data-state="draining"]')
    const names = await send(30)
    assert.equal(b2.requests.length, seen, 'no new request for the drained server')
    assert.equal(names.filter((x) => x === 'b2').length, 0)
    assert.ok(names.includes('b1') && names.includes('b3'))
    // The change is on the timeline, from the event stream.
    await page.waitForSelector('aside.timeline li.event[data-type="change"]:has-text("b2")', { timeout: 3000 })
    await page.waitForSelector('.toast:has-text("app/b2 is draining")')
  })

  it('enables, sets a weight and adds a server from its dialogs', async () => {
    const api = adminClient(admin, TOKEN)
    const row = page.locator('section.pool[data-pool="app"] tr.server[data-server="b2"]')
    await row.locator('button[data-action="enable"]').click()
    await page.locator('dialog.modal[open] button[data-confirm]').click()
    await page.waitForSelector('section.pool[data-pool="app"] tr.server[data-server="b2"][data-state="up"]')
    assert.equal((await api.get('/api/v1/pools/app/servers/b2')).state, 'up')

    await row.locator('button[data-action="weight"]').click()
    await page.fill('dialog.modal[open] input[data-field="weight"]', '1001')
    await page.locator('dialog.modal[open] button[data-confirm]').click()
    await page.waitForSelector('dialog.modal[open] .error:has-text("weight")')
    await page.fill('dialog.modal[open] input[data-field="weight"]', '3')
    await page.locator('dialog.modal[open] button[data-confirm]').click()
    await page.locator('dialog.modal[open]').waitFor({ state: 'detached' })
    assert.equal((await api.get('/api/v1/pools/app/servers/b2')).weight, 3)

    const spare = page.locator('section.pool[data-pool="spare"]')
    await spare.locator('button[data-action="add"]').click()
    await page.fill('dialog.modal[open] input[data-field="url"]', backends[0]?.url ?? '')
    await page.fill('dialog.modal[open] input[data-field="name"]', 'extra')
    await page.locator('dialog.modal[open] button[data-confirm]').click()
    await spare.locator('tr.server[data-server="extra"]').waitFor()
    const added = await api.get('/api/v1/pools/spare/servers/extra')
    assert.equal(added.source, 'runtime')
    assert.equal(added.url, backends[0]?.url)
  })

  it('reads on a phone: nothing wider than the screen but the servers table, which scrolls in its card', async () => {
    const phone = await browser.context.newPage()
    await phone.setViewportSize({ width: 390, height: 844 })
    await phone.goto(admin)
    await phone.fill('#token', TOKEN)
    await phone.click('form.login button[type=submit]')
    await phone.waitForSelector('section.pool[data-pool="app"] .uplot canvas')
    const widths = await phone.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      screen: window.innerWidth,
      wrap: document.querySelector('.table-wrap')?.clientWidth ?? 0,
    }))
    assert.ok(widths.page <= widths.screen, `page ${widths.page} px on a ${widths.screen} px screen`)
    assert.ok(widths.wrap <= widths.screen)
    await phone.close()
  })

  it('never put the token in a URL', () => {
    assert.ok(requests.length > 10, `${requests.length} requests seen`)
    for (const r of requests) assert.ok(!r.url().includes(TOKEN), r.url())
    const api = requests.filter((r) => new URL(r.url()).pathname.startsWith('/api/'))
    assert.ok(
      api.some((r) => r.url().endsWith('/api/v1/events')),
      'the stream was read',
    )
    assert.ok(!requests.some((r) => new URL(r.url()).search.includes('token')))
  })
})
