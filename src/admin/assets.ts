/**
 * The dashboard's files, as `npm run build` (scripts/build-dashboard.ts) writes them to
 * dist/dashboard/: index.html, app.js, app.css, and manifest.json, which marks a finished build.
 * Found beside the running code (dist/admin/ → dist/dashboard/) or, when running from the TypeScript
 * sources (src/admin/ under tsx), in the checkout's dist/dashboard/.
 *
 * Each file is read once, on its first request, and kept with its gzip form and an ETag. They hold
 * no data (that comes from the API, with the token), so they are served without one.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

export interface Asset {
  readonly type: string
  readonly body: Buffer
  readonly gzip: Buffer
  readonly etag: string
}

/** Served name → file in the build directory. */
const FILES: Readonly<Record<string, { readonly file: string; readonly type: string }>> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
}

/** Where the built dashboard is; undefined when it was never built (a checkout before `npm run build`). */
export function dashboardDir(): string | undefined {
  for (const candidate of ['../dashboard/', '../../dist/dashboard/']) {
    const dir = fileURLToPath(new URL(candidate, import.meta.url))
    if (existsSync(`${dir}manifest.json`)) return dir
  }
  return undefined
}

/**
 * The Content-Security-Policy of the dashboard's files: its own script, style and API calls, nothing
 * else (no CDN, no inline script, no frames).
 */
export const DASHBOARD_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export class DashboardAssets {
  readonly #cache = new Map<string, Asset>()
  readonly #dir: () => string | undefined

  constructor(dir: () => string | undefined = dashboardDir) {
    this.#dir = dir
  }

  /** Is `path` one of the dashboard's files? */
  static serves(path: string): boolean {
    return Object.hasOwn(FILES, path)
  }

  /** The file served at `path`; undefined when the dashboard is not built. */
  get(path: string): Asset | undefined {
    const spec = FILES[path]
    if (spec === undefined) return undefined
    const cached = this.#cache.get(path)
    if (cached !== undefined) return cached
    const dir = this.#dir()
    if (dir === undefined) return undefined
    const body = readFileSync(`${dir}${spec.file}`)
    const asset = {
      type: spec.type,
      body,
      gzip: gzipSync(body, { level: 9 }),
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    }
    this.#cache.set(path, asset)
    return asset
  }
}

/** What `/` answers when there is no build: how to make one. */
export const NOT_BUILT_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard admin</title></head>
<body><h1>Switchyard admin</h1><p>The dashboard is not built. Run <code>npm run build</code> (or
<code>npx tsx scripts/build-dashboard.ts</code>), which writes <code>dist/dashboard/</code>.</p>
<p>The admin API serves as usual: <code>/api/v1/openapi.json</code>, <code>/metrics</code>.</p></body></html>
`
