/**
 * A real ACME server for tests: Debian's `pebble`, with `pebble-challtestsrv` as its DNS server (every
 * name resolves to 127.0.0.1), both started on free loopback ports and stopped by PID. Pebble checks
 * http-01 challenges on `httpPort` and tls-alpn-01 ones on `tlsPort` of 127.0.0.1: the test's
 * listeners. Its own HTTPS certificate is made here; its issuing root is fetched from its management
 * port, so that a test client can verify what it issued.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { request } from 'node:https'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { certDir } from './certs.js'
import { waitFor } from './wait.js'

export interface Pebble {
  /** The ACME directory URL. */
  readonly directory: string
  /** The PEM file that pebble's own HTTPS certificate verifies against. */
  readonly directoryCa: string
  /** The root that pebble's issued certificates chain to (PEM). */
  root(): Promise<string>
  stop(): Promise<void>
}

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Whether pebble is installed (.ci/run installs it). */
export async function pebbleInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('pebble', ['-h'], { stdio: 'ignore' })
    p.on('error', () => resolve(false))
    p.on('exit', () => resolve(true))
  })
}

/**
 * The `skip` of a test that needs pebble: false when it is installed, else the reason. Where
 * SWITCHYARD_REQUIRE_PEBBLE=1 (.ci/run) a missing pebble is an error instead, so that CI cannot skip.
 */
export async function pebbleSkip(): Promise<false | string> {
  if (await pebbleInstalled()) return false
  if (process.env.SWITCHYARD_REQUIRE_PEBBLE === '1') throw new Error('pebble is required here but not installed')
  return 'pebble is not installed (apt-get install pebble)'
}

export async function startPebble(opts: { httpPort: number; tlsPort: number }): Promise<Pebble> {
  const certs = certDir('pebble')
  const own = certs.makeCert('pebble', ['localhost'])
  const [acmePort, managementPort, dnsPort] = [await freePort(), await freePort(), await freePort()]
  const configFile = join(own.cert, '..', 'pebble-config.json')
  writeFileSync(
    configFile,
    JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${acmePort}`,
        managementListenAddress: `127.0.0.1:${managementPort}`,
        certificate: own.cert,
        privateKey: own.key,
        httpPort: opts.httpPort,
        tlsPort: opts.tlsPort,
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
      },
    }),
  )
  const children: ChildProcess[] = []
  const output: string[] = []
  const started = (cmd: string, args: string[], env: Record<string, string>) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
    children.push(child)
    return child
  }
  started(
    'pebble-challtestsrv',
    [
      '-dns01',
      `127.0.0.1:${dnsPort}`,
      '-http01',
      '',
      '-https01',
      '',
      '-tlsalpn01',
      '',
      '-defaultIPv4',
      '127.0.0.1',
      '-defaultIPv6',
      '',
    ],
    {},
  )
  started('pebble', ['-config', configFile, '-dnsserver', `127.0.0.1:${dnsPort}`], {
    // No random waits before validations, no rejected nonces, a fresh authorization for each order.
    PEBBLE_VA_NOSLEEP: '1',
    PEBBLE_WFE_NONCEREJECT: '0',
    PEBBLE_AUTHZREUSE: '0',
  })
  // If the test process ends without stopping them (a timeout, a crash), they go with it.
  const killAll = () => {
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  }
  process.once('exit', killAll)
  const stop = async () => {
    process.removeListener('exit', killAll)
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM')
    await Promise.all(
      children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : Promise.resolve())),
    )
    certs.remove()
  }
  try {
    await waitFor(() => output.join('').includes('Listening on'), 'pebble to listen', { timeoutMs: 15_000 })
  } catch (err) {
    await stop()
    throw new Error(`${(err as Error).message}: ${output.join('')}`)
  }
  const get = (url: string) =>
    new Promise<string>((resolve, reject) => {
      request(url, { ca: readFileSync(own.cert) }, (res) => {
        let body = ''
        res.setEncoding('utf8')
        res.on('data', (c: string) => {
          body += c
        })
        res.on('end', () => resolve(body))
      })
        .on('error', reject)
        .end()
    })
  return {
    directory: `https://localhost:${acmePort}/dir`,
    directoryCa: own.cert,
    root: () => get(`https://localhost:${managementPort}/roots/0`),
    stop,
  }
}
