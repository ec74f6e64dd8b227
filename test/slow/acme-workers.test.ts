/**
 * Automatic certificates with workers, through the real CLI: the supervisor orders from pebble (once,
 * for the whole instance), both workers answer the http-01 challenge and serve the certificate, and a
 * renewal after a reload reaches every worker without a failed handshake.
 */
import assert from 'node:assert/strict'
import type { X509Certificate } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, it } from 'node:test'
import { connect as tlsConnect } from 'node:tls'
import { freePort, type Pebble, pebbleSkip, startPebble } from '../helpers/acme.js'
import { startBackend, type TestBackend } from '../helpers/backends.js'
import { configFiles, runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/wait.js'

const skipAcme = await pebbleSkip()

function serial(port: number, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port, servername: 'shop.example.test', ca }, () => {
      const c = s.getPeerX509Certificate() as X509Certificate
      s.end()
      resolve(c.serialNumber)
    })
    s.on('error', reject)
  })
}

describe('ACME with workers', { skip: skipAcme }, () => {
  const file = configFiles('switchyard-acme-workers-')
  let pebble: Pebble
  let backend: TestBackend
  let httpPort: number
  let httpsPort: number
  let root: string
  const storage = mkdtempSync(path.join(tmpdir(), 'switchyard-acme-w-'))

  before(async () => {
    httpPort = await freePort()
    httpsPort = await freePort()
    pebble = await startPebble({ httpPort, tlsPort: await freePort() })
    root = await pebble.root()
    backend = await startBackend('app')
  })

  after(async () => {
    await pebble?.stop()
    await backend?.close()
    rmSync(storage, { recursive: true, force: true })
  })

  const yaml = (renewBefore: string) => `
workers: 2
listeners:
  - name: plain
    listen: 127.0.0.1:${httpPort}
    routes: [{ pool: web }]
  - name: secure
    listen: 127.0.0.1:${httpsPort}
    protocol: https
    tls:
      acme:
        domains: [shop.example.test]
        directory: ${pebble.directory}
        directoryCa: ${pebble.directoryCa}
        storage: ${storage}
        renewBefore: ${renewBefore}
    routes: [{ pool: web }]
pools:
  - name: web
    servers: [${backend.url}]
`

  it('orders once in the supervisor, serves from every worker, and renews on a reload', async () => {
    const config = await file('acme.yaml', yaml('720h'))
    const p = runCli(['--config', config])
    try {
      await p.waitForLog((l) => l.msg === '2 workers serving', 30_000)
      await p.waitForLog((l) => String(l.msg).startsWith('ACME: certificate for shop.example.test issued'), 30_000)
      // Both workers reload onto it; every new connection then gets it, whichever worker accepts.
      let first = ''
      await waitFor(
        async () => {
          const got = await Promise.all(Array.from({ length: 10 }, () => serial(httpsPort, root).catch(() => '')))
          first = got[0] as string
          return got.every((s) => s !== '' && s === first)
        },
        'every connection served the issued certificate',
        { timeoutMs: 20_000, intervalMs: 100 },
      )
      const orders = () =>
        p
          .stdout()
          .split('\n')
          .filter((l) => l.includes('ACME: ordering a certificate')).length
      assert.equal(orders(), 1, 'one order for the whole instance')
      // Renewal: the config now asks for it (pebble's certificates last 5 years); SIGHUP reloads.
      await file('acme.yaml', yaml('50000h'))
      p.kill('SIGHUP')
      await waitFor(
        async () => {
          const got = await Promise.all(Array.from({ length: 10 }, () => serial(httpsPort, root)))
          return got.every((s) => s !== first)
        },
        'the renewed certificate on every connection',
        { timeoutMs: 30_000, intervalMs: 100 },
      )
      assert.equal(orders(), 2)
    } catch (err) {
      const relevant = p
        .stdout()
        .split('\n')
        .filter((l) => /ACME|certificates|generation|reload/i.test(l))
      throw new Error(`${(err as Error).message}\n${relevant.join('\n')}`)
    } finally {
      p.kill('SIGTERM')
      await p.exited()
    }
  })
})
