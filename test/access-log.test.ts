/**
 * The access log's own file, its text formats and its sampling, through a real load balancer in front
 * of real backends. The reopen on SIGUSR1 (logrotate), with one process and with workers, is in
 * test/slow/access-log-reopen.test.ts.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { createLoadBalancer, formatIssue, type LoadBalancer, parseConfigText } from '../src/index.js'
import { deadPort, startBackend, type TestBackend } from './helpers/backends.js'
import { memoryLogger } from './helpers/log.js'

const dir = mkdtempSync(join(tmpdir(), 'swy-access-'))
const lines = (file: string): string[] => readFileSync(file, 'utf8').split('\n').filter(Boolean)

/** A backend that answers `/status/N` with N, everything else with 200 and 5 bytes. */
const statusHandler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
  req.resume()
  const m = /\/status\/(\d{3})/.exec(req.url ?? '')
  res.writeHead(m ? Number(m[1]) : 200, { 'content-type': 'text/plain' })
  res.end('hello')
}

describe('access log file and formats', () => {
  let backend: TestBackend
  before(async () => {
    backend = await startBackend('b1', statusHandler)
  })
  after(() => backend.close())

  /** A load balancer whose only route takes `/api/`, over `backend`, with `accessLog` as given. */
  async function start(
    accessLog: unknown,
    extra: Record<string, unknown> = {},
  ): Promise<{ lb: LoadBalancer; url: string }> {
    const lb = createLoadBalancer({
      logging: { accessLog } as never,
      listeners: [
        { name: 'main', listen: '127.0.0.1:0', routes: [{ name: 'api', match: { pathPrefix: '/api/' }, pool: 'web' }] },
      ],
      pools: [{ name: 'web', servers: [{ url: backend.url, name: 'b1' }] }],
      ...extra,
    })
    await lb.start()
    return { lb, url: `http://127.0.0.1:${lb.addresses().main?.port}` }
  }

  it('writes combined-extended lines to its own file: head fields, timing, upstream, code', async () => {
    const file = join(dir, 'extended.log')
    const { lb, url } = await start({ format: 'combined-extended', file })
    const auth = `Basic ${Buffer.from('alice:pw').toString('base64')}`
    const ok = await fetch(`${url}/api/x?q="1"`, {
      headers: {
        'user-agent': 'test-agent/1.0',
        referer: 'http://ref.example/',
        authorization: auth,
        'x-request-id': 'rid-1',
      },
    })
    assert.equal(ok.status, 200)
    await ok.text()
    const missing = await fetch(`${url}/elsewhere`, { headers: { 'x-request-id': 'rid-2' } })
    assert.equal(missing.status, 404)
    await missing.text()
    await lb.close({ gracePeriodMs: 500 })
    const [first, second, ...rest] = lines(file)
    assert.equal(rest.length, 0)
    assert.match(
      first!,
      /^127\.0\.0\.1 - alice \[\d{2}\/\w{3}\/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] "GET \/api\/x\?q=%221%22 HTTP\/1\.1" 200 5 "http:\/\/ref\.example\/" "test-agent\/1\.0" \d+\.\d{3} "web" "b1" \d+\.\d{3} "rid-1" "-" "-"$/,
    )
    assert.match(
      second!,
      /"GET \/elsewhere HTTP\/1\.1" 404 \d+ "-" "[^"]*" \d+\.\d{3} "-" "-" - "rid-2" "SWY_NO_ROUTE" "-"$/,
    )
  })

  it('writes JSON lines to its file whatever the log level, and nothing of them to the process log', async () => {
    const file = join(dir, 'json.log')
    const mem = memoryLogger('error')
    const lb = createLoadBalancer(
      {
        logging: { level: 'error', accessLog: { file } },
        listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
        pools: [{ name: 'web', servers: [backend.url] }],
      },
      { logger: mem.logger },
    )
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    for (const path of ['/a', '/status/503']) await (await fetch(`${url}${path}`)).text()
    await lb.close({ gracePeriodMs: 500 })
    const access = lines(file).map((l) => JSON.parse(l) as Record<string, unknown>)
    assert.deepEqual(
      access.map((l) => [l.type, l.url, l.status, l.level]),
      [
        ['access', '/a', 200, 'info'],
        ['access', '/status/503', 503, 'info'],
      ],
    )
    assert.equal(
      mem.lines.filter((l) => l.type === 'access').length,
      0,
      'the access lines go to the file, not the process log',
    )
  })

  it('keeps every failure and a share of the successes', async () => {
    const file = join(dir, 'sampled.log')
    const dead = await deadPort()
    const { lb, url } = await start(
      { format: 'json', file, sample: 0 },
      {
        pools: [
          { name: 'web', servers: [{ url: backend.url, name: 'b1' }] },
          { name: 'gone', servers: [`http://127.0.0.1:${dead}`], retries: { attempts: 0 } },
        ],
        listeners: [
          {
            name: 'main',
            listen: '127.0.0.1:0',
            routes: [
              { match: { pathPrefix: '/gone/' }, pool: 'gone' },
              { match: { pathPrefix: '/api/' }, pool: 'web' },
            ],
          },
        ],
      },
    )
    const paths = ['/api/ok', '/api/status/404', '/api/ok', '/api/status/500', '/nowhere', '/gone/x', '/api/ok']
    for (const p of paths) await (await fetch(`${url}${p}`)).text()
    await lb.close({ gracePeriodMs: 500 })
    const kept = lines(file).map((l) => JSON.parse(l) as { url: string; status: number; level: string })
    assert.deepEqual(
      kept.map((l) => [l.url, l.status]),
      [
        ['/api/status/404', 404],
        ['/api/status/500', 500],
        ['/nowhere', 404],
        ['/gone/x', 502],
      ],
    )
    assert.equal(kept.at(-1)?.level, 'warn')

    const halfFile = join(dir, 'half.log')
    const half = await start({ file: halfFile, sample: 0.5 })
    const total = 300
    for (let i = 0; i < total; i++) await (await fetch(`${half.url}/api/${i}`)).text()
    await half.lb.close({ gracePeriodMs: 500 })
    const n = lines(halfFile).length
    // Binomial(300, 0.5): outside 100..200 with a probability below 1e-8.
    assert.ok(n > 100 && n < 200, `${n} of ${total} successes logged`)
  })

  it('moves to the file a reload names, and rejects a reload whose file cannot be opened', async () => {
    const one = join(dir, 'one.log')
    const two = join(dir, 'two.log')
    const config = (file: string) => ({
      logging: { accessLog: { file } },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [backend.url] }],
    })
    const lb = createLoadBalancer(config(one))
    await lb.start()
    const url = `http://127.0.0.1:${lb.addresses().main?.port}`
    await (await fetch(`${url}/first`)).text()
    await lb.reload(config(two))
    await (await fetch(`${url}/second`)).text()
    await assert.rejects(lb.reload(config(join(dir, 'no', 'such', 'dir.log'))), (err: Error) => {
      assert.match(err.message, /logging\.accessLog\.file: cannot open .*no\/such\/dir\.log: ENOENT/)
      return true
    })
    await (await fetch(`${url}/third`)).text()
    await lb.close({ gracePeriodMs: 500 })
    const urls = (f: string) => lines(f).map((l) => (JSON.parse(l) as { url: string }).url)
    assert.deepEqual(urls(one), ['/first'])
    assert.deepEqual(urls(two), ['/second', '/third'])
  })

  it('refuses to start when its file cannot be opened', async () => {
    const lb = createLoadBalancer({
      logging: { accessLog: { file: join(dir, 'missing-dir', 'a.log') } },
      listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
      pools: [{ name: 'web', servers: [backend.url] }],
    })
    await assert.rejects(lb.start(), /SWY_CONFIG_INVALID|cannot open .*missing-dir\/a\.log/)
  })

  it('logs TCP connections in the stream format', async () => {
    const file = join(dir, 'tcp.log')
    const dead = await deadPort()
    const lb = createLoadBalancer({
      logging: { accessLog: { file, format: 'combined-extended', sample: 0 } },
      listeners: [
        { name: 'db', listen: '127.0.0.1:0', protocol: 'tcp', routes: [{ pool: 'down' }] },
        { name: 'up', listen: '127.0.0.1:0', protocol: 'tcp', routes: [{ pool: 'up' }] },
      ],
      pools: [
        { name: 'down', servers: [`tcp://127.0.0.1:${dead}`] },
        { name: 'up', servers: [`tcp://127.0.0.1:${backend.port}`] },
      ],
    })
    await lb.start()
    for (const name of ['db', 'up'] as const) {
      const s = connect(lb.addresses()[name]!.port, '127.0.0.1')
      s.on('error', () => {})
      if (name === 'up') s.end('GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n')
      s.resume()
      await new Promise((r) => s.once('close', r))
    }
    await lb.close({ gracePeriodMs: 500 })
    // sample 0: the connection that went well is not logged, the failed one is.
    const [line, ...rest] = lines(file)
    assert.equal(rest.length, 0)
    assert.match(
      line!,
      /^127\.0\.0\.1 \[[^\]]+\] TCP 502 0 0 \d+\.\d{3} "down" "127\.0\.0\.1:\d+" - "SWY_UPSTREAM_CONNECT"$/,
    )
  })
})

describe('logging.accessLog config', () => {
  const base =
    'listeners:\n  - { name: a, listen: 127.0.0.1:0, routes: [{ pool: p }] }\npools:\n  - { name: p, servers: [http://127.0.0.1:1] }\n'
  const check = (extra: string) => {
    const r = parseConfigText(`${base}${extra}\n`, 'sy.yaml', {})
    return r.ok ? r.config : r.issues.map(formatIssue)
  }

  it('takes a boolean as before, or an object, with the file relative to nothing given here', () => {
    const off = check('logging: { accessLog: false }')
    assert.ok(!Array.isArray(off))
    assert.deepEqual(off.logging.accessLog, { enabled: false, format: 'json', file: undefined, sample: 1 })
    const on = check('')
    assert.ok(!Array.isArray(on))
    assert.deepEqual(on.logging.accessLog, { enabled: true, format: 'json', file: undefined, sample: 1 })
    const object = check('logging: { accessLog: { format: combined, file: /var/log/sy.log, sample: 0.1 } }')
    assert.ok(!Array.isArray(object))
    assert.deepEqual(object.logging.accessLog, {
      enabled: true,
      format: 'combined',
      file: '/var/log/sy.log',
      sample: 0.1,
    })
  })

  it('says what is wrong with a bad value', () => {
    assert.deepEqual(check('logging: { accessLog: yes }'), [
      'sy.yaml:5:23: logging.accessLog: expected a boolean or a mapping, found "yes"',
    ])
    assert.deepEqual(check('logging: { accessLog: { format: xml, sample: 2, fil: x } }'), [
      'sy.yaml:5:33: logging.accessLog.format: expected "json" or "combined" or "combined-extended", found "xml"',
      'sy.yaml:5:46: logging.accessLog.sample: expected at most 1, found number 2',
      'sy.yaml:5:49: logging.accessLog.fil: unknown key, expected one of format, file, sample',
    ])
  })
})
