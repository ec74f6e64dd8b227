// The generated nginx, HAProxy and Switchyard configurations pass the servers' own checks (`nginx -t`,
// `haproxy -c`, Switchyard's config loader). nginx and HAProxy checks are skipped when the server (or
// nginx's stream module) is not installed. Run with `npm run bench:test`.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { loadConfigFile } from '../../src/index.js'
import { haproxyConf, haproxyMaxconn, haproxyTcpConf } from './haproxy.js'
import { backendConf, NGINX_DIRS, nginxArgs, proxyConf, streamConf, streamSupport } from './nginx.js'
import { switchyardConf } from './switchyard.js'
import { TLS_FILE_NAMES, tlsFileContents, tlsFilesIn } from './tls.js'
import { findBinary } from './tools.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-test-'))
chmodSync(dir, 0o755)
after(() => rmSync(dir, { recursive: true, force: true }))
for (const [name, content] of Object.entries(tlsFileContents(path.join(import.meta.dirname, '..', '..'))))
  writeFileSync(path.join(dir, name), content)

function check(file: string, args: readonly string[]): void {
  const out = spawnSync(file, args, { encoding: 'utf8', timeout: 10_000 })
  if (out.status !== 0) throw new Error(`${file} ${args.join(' ')} failed:\n${out.stdout}${out.stderr}`)
}

describe('nginx configurations', { skip: findBinary('nginx') === undefined && 'nginx is not installed' }, () => {
  const nginx = findBinary('nginx') ?? 'nginx'
  for (const d of NGINX_DIRS) mkdirSync(path.join(dir, d), { recursive: true })
  it('backends pass nginx -t', () => {
    const conf = path.join(dir, 'backends.conf')
    writeFileSync(conf, backendConf(dir, dir, [1, 2, 3]))
    check(nginx, ['-t', ...nginxArgs(dir, conf).slice(0, -2)])
  })
  it('the proxy passes nginx -t', () => {
    const conf = path.join(dir, 'proxy.conf')
    writeFileSync(conf, proxyConf(dir, 4, [1, 2, 3], 2))
    check(nginx, ['-t', ...nginxArgs(dir, conf).slice(0, -2)])
  })
  it('the TLS-terminating proxy passes nginx -t', () => {
    const conf = path.join(dir, 'https.conf')
    writeFileSync(conf, proxyConf(dir, 4, [1, 2, 3], 1, { tls: tlsFilesIn(dir) }))
    check(nginx, ['-t', ...nginxArgs(dir, conf).slice(0, -2)])
  })
  it('the HTTP/2 proxies, h2c and over TLS, pass nginx -t', () => {
    for (const [name, listener] of [
      ['h2c', { http2: true }],
      ['h2', { http2: true, tls: tlsFilesIn(dir) }],
    ] as const) {
      const conf = path.join(dir, `${name}.conf`)
      const text = proxyConf(dir, 4, [1, 2, 3], 1, listener)
      const listen = /listen 127\.0\.0\.1:4([^;]*);/.exec(text)?.[1]
      if (listen !== (name === 'h2c' ? ' http2' : ' ssl http2')) throw new Error(`unexpected listen line in:\n${text}`)
      writeFileSync(conf, text)
      check(nginx, ['-t', ...nginxArgs(dir, conf).slice(0, -2)])
    }
  })
  it('the stream proxy passes nginx -t, or nginx has no stream module', (t) => {
    const support = streamSupport(nginx)
    if (support.kind === 'missing') return t.skip(support.reason)
    const conf = path.join(dir, 'stream.conf')
    writeFileSync(conf, streamConf(dir, 4, [1, 2, 3], 1, support.kind === 'dynamic' ? support.moduleFile : undefined))
    check(nginx, ['-t', ...nginxArgs(dir, conf).slice(0, -2)])
  })
})

describe('HAProxy configuration', { skip: findBinary('haproxy') === undefined && 'haproxy is not installed' }, () => {
  it('passes haproxy -c', () => {
    const cfg = path.join(dir, 'haproxy.cfg')
    writeFileSync(cfg, haproxyConf(4, [1, 2, 3], 2, 1_000))
    check(findBinary('haproxy') ?? 'haproxy', ['-c', '-f', cfg])
  })
  it('passes haproxy -c with TLS terminated', () => {
    const cfg = path.join(dir, 'https.cfg')
    writeFileSync(cfg, haproxyConf(4, [1, 2, 3], 1, 1_000, { crtFile: path.join(dir, TLS_FILE_NAMES.combined) }))
    check(findBinary('haproxy') ?? 'haproxy', ['-c', '-f', cfg])
  })
  it('passes haproxy -c with HTTP/2, h2c and over TLS', () => {
    const crtFile = path.join(dir, TLS_FILE_NAMES.combined)
    for (const [name, front, bind] of [
      ['h2c', { http2: true }, ' proto h2'],
      ['h2', { http2: true, crtFile }, ` ssl crt ${crtFile} alpn h2,http/1.1`],
    ] as const) {
      const cfg = path.join(dir, `${name}.cfg`)
      const text = haproxyConf(4, [1, 2, 3], 1, 1_000, front)
      if (!text.includes(`  bind 127.0.0.1:4${bind}\n`)) throw new Error(`unexpected bind line in:\n${text}`)
      writeFileSync(cfg, text)
      check(findBinary('haproxy') ?? 'haproxy', ['-c', '-f', cfg])
    }
  })
  it('passes haproxy -c in mode tcp', () => {
    const cfg = path.join(dir, 'tcp.cfg')
    writeFileSync(cfg, haproxyTcpConf(4, [1, 2, 3], 1, 1_000))
    check(findBinary('haproxy') ?? 'haproxy', ['-c', '-f', cfg])
  })
  it('fits maxconn to the open-file limit', () => {
    if (haproxyMaxconn(undefined) !== 20_000 || haproxyMaxconn(20_000) !== 9_950) throw new Error('wrong maxconn')
  })
})

describe('Switchyard configurations', () => {
  for (const [name, text] of [
    ['tcp', switchyardConf(4, [1, 2, 3], { protocol: 'tcp' })],
    ['https', switchyardConf(4, [1, 2, 3], { protocol: 'https', tls: tlsFilesIn(dir) })],
    ['h2c', switchyardConf(4, [1, 2, 3], { protocol: 'http', http2: true })],
    ['h2', switchyardConf(4, [1, 2, 3], { protocol: 'https', tls: tlsFilesIn(dir), http2: true })],
  ] as const) {
    it(`the ${name} listener loads`, async () => {
      const file = path.join(dir, `switchyard-${name}.yaml`)
      writeFileSync(file, text)
      const result = await loadConfigFile(file)
      if (!result.ok) throw new Error(`${file}:\n${JSON.stringify(result.issues, null, 2)}`)
      const http2 = result.config.listeners[0]?.http2
      if ((name === 'h2c' || name === 'h2') !== (http2 !== undefined))
        throw new Error(`${name}: http2 is ${JSON.stringify(http2)} in ${file}`)
    })
  }
})
