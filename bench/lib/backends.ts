// The three upstream servers every case runs against. nginx when it is installed (one process,
// `worker_processes 1`, one `server` per port, static files), otherwise the Node backends in
// bench/peers/backends.ts. Either way `/` answers 100 bytes and `/16k` 16,384 bytes
// (bench/lib/bodies.ts), over keep-alive connections that live 65 s and a million requests.
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { BODIES, LARGE_BODY, SMALL_BODY } from './bodies.js'
import type { Child, Children } from './children.js'
import { backendConf, NGINX_DIRS, nginxArgs } from './nginx.js'
import { findBinary } from './tools.js'

/** How long the backends get to start accepting connections. */
const START_TIMEOUT_MS = 15_000

export type BackendKind = 'nginx' | 'node'

export interface Backends {
  readonly kind: BackendKind
  /** One line of Markdown for the report. */
  readonly description: string
  readonly ports: readonly number[]
  /** The process that serves them all (nginx's master, or the Node process). */
  readonly child: Child
}

/**
 * Starts the backends on `ports`: nginx under `dir` (created, world-readable, so that nginx's
 * unprivileged worker can read the files when the bench runs as root), or Node if nginx is missing
 * or `prefer` says so. Resolves once every port accepts connections.
 */
export async function startBackends(
  children: Children,
  rootDir: string,
  dir: string,
  ports: readonly number[],
  prefer: BackendKind | 'auto',
  signal: AbortSignal,
): Promise<Backends> {
  const nginx = prefer === 'node' ? undefined : findBinary('nginx')
  if (prefer === 'nginx' && nginx === undefined) throw new Error('--backends nginx: nginx is not installed')
  let backends: Backends
  if (nginx !== undefined) {
    const docRoot = path.join(dir, 'www')
    for (const d of [dir, docRoot, ...NGINX_DIRS.map((d) => path.join(dir, d))]) {
      mkdirSync(d, { recursive: true })
      chmodSync(d, 0o755)
    }
    writeFileSync(path.join(docRoot, 'small'), SMALL_BODY, { mode: 0o644 })
    writeFileSync(path.join(docRoot, '16k'), LARGE_BODY, { mode: 0o644 })
    const conf = path.join(dir, 'nginx.conf')
    writeFileSync(conf, backendConf(dir, docRoot, ports))
    backends = {
      kind: 'nginx',
      description: `nginx (\`worker_processes 1\`, one \`server\` per port, static files, no access log, \`keepalive_requests 1000000\`, \`keepalive_timeout 65s\`; \`bench/lib/nginx.ts\`)`,
      ports,
      child: children.start('backends (nginx)', nginx, nginxArgs(dir, conf)),
    }
  } else {
    backends = {
      kind: 'node',
      description:
        'Node (`bench/peers/backends.ts`: one process, one `node:http` server per port; nginx was not found)',
      ports,
      child: children.start('backends (node)', process.execPath, [
        '--import',
        'tsx',
        path.join(rootDir, 'bench', 'peers', 'backends.ts'),
        ...ports.map(String),
      ]),
    }
  }
  for (const port of ports) await children.waitForPort(backends.child, port, START_TIMEOUT_MS, signal)
  return backends
}

/** Throws unless every port answers each path in bench/lib/bodies.ts with 200 and exactly its bytes. */
export async function checkBodies(ports: readonly number[], signal: AbortSignal): Promise<void> {
  for (const port of ports) {
    for (const [reqPath, body] of BODIES) {
      const res = await fetch(`http://127.0.0.1:${port}${reqPath}`, { signal })
      const got = Buffer.from(await res.arrayBuffer())
      if (res.status !== 200 || !got.equals(body)) {
        throw new Error(
          `backend 127.0.0.1:${port}${reqPath} answered ${res.status} with ${got.length} bytes, not ${body.length}`,
        )
      }
    }
  }
}
