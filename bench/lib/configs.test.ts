// The generated nginx and HAProxy configurations pass the servers' own checks (`nginx -t`,
// `haproxy -c`). Skipped when the server is not installed. Run with `npm run bench:test`.
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { after, describe, it } from 'node:test'
import { haproxyConf, haproxyMaxconn } from './haproxy.js'
import { backendConf, NGINX_DIRS, nginxArgs, proxyConf } from './nginx.js'
import { findBinary } from './tools.js'

const dir = mkdtempSync(path.join(os.tmpdir(), 'switchyard-bench-test-'))
chmodSync(dir, 0o755)
after(() => rmSync(dir, { recursive: true, force: true }))

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
})

describe('HAProxy configuration', { skip: findBinary('haproxy') === undefined && 'haproxy is not installed' }, () => {
  it('passes haproxy -c', () => {
    const cfg = path.join(dir, 'haproxy.cfg')
    writeFileSync(cfg, haproxyConf(4, [1, 2, 3], 2, 1_000))
    check(findBinary('haproxy') ?? 'haproxy', ['-c', '-f', cfg])
  })
  it('fits maxconn to the open-file limit', () => {
    if (haproxyMaxconn(undefined) !== 20_000 || haproxyMaxconn(20_000) !== 9_950) throw new Error('wrong maxconn')
  })
})
