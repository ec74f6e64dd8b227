/**
 * Builds the dashboard (src/dashboard/) into dist/dashboard/: esbuild bundles main.ts with preact,
 * htm and uPlot into app.js and their CSS into app.css, minified, with no source maps and no
 * reference to anything outside (the page works offline); index.html is copied; manifest.json, written
 * last, lists each file with its size and gzip size, and marks a finished build for the admin server
 * (src/admin/assets.ts).
 *
 * `npm run build` runs it; so do the tests that need the page (test/helpers/dashboard.ts). Each file is
 * written to a temporary name and renamed, so a build running beside another, or beside a server
 * reading the files, never leaves half a file.
 *
 *   npx tsx scripts/build-dashboard.ts [OUT_DIR]
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
export const DASHBOARD_SRC = path.join(ROOT, 'src', 'dashboard')
export const DASHBOARD_OUT = path.join(ROOT, 'dist', 'dashboard')

/** What the page may weigh, JS and CSS together, gzipped: the bound the tests assert. */
export const MAX_GZIP_BYTES = 100 * 1024

export interface BuiltFile {
  readonly name: string
  readonly bytes: number
  readonly gzipBytes: number
}

export interface Manifest {
  readonly builtAt: string
  readonly files: readonly BuiltFile[]
}

export async function buildDashboard(outDir: string = DASHBOARD_OUT): Promise<Manifest> {
  const result = await build({
    entryPoints: { app: path.join(DASHBOARD_SRC, 'main.ts') },
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome111', 'firefox111', 'safari16'],
    platform: 'browser',
    outdir: outDir,
    write: false,
    legalComments: 'none',
    sourcemap: false,
    logLevel: 'silent',
    define: { 'process.env.NODE_ENV': '"production"' },
  })
  const outputs = new Map<string, Uint8Array>()
  for (const f of result.outputFiles) outputs.set(path.basename(f.path), f.contents)
  outputs.set('index.html', await readFile(path.join(DASHBOARD_SRC, 'index.html')))
  for (const name of ['app.js', 'app.css', 'index.html'])
    if (!outputs.has(name)) throw new Error(`build-dashboard: esbuild wrote no ${name}`)
  await mkdir(outDir, { recursive: true })
  const files: BuiltFile[] = []
  for (const [name, contents] of outputs) {
    await writeAtomically(path.join(outDir, name), contents)
    files.push({ name, bytes: contents.length, gzipBytes: gzipSync(contents, { level: 9 }).length })
  }
  const manifest: Manifest = { builtAt: new Date().toISOString(), files }
  await writeAtomically(path.join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  return manifest
}

async function writeAtomically(file: string, contents: Uint8Array | string): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`
  await writeFile(tmp, contents)
  await rename(tmp, file)
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const out = process.argv[2] === undefined ? DASHBOARD_OUT : path.resolve(process.argv[2])
  const manifest = await buildDashboard(out)
  const assets = manifest.files.filter((f) => f.name !== 'index.html')
  const total = assets.reduce((n, f) => n + f.gzipBytes, 0)
  const kb = (n: number) => `${(n / 1024).toFixed(1)} KB`
  for (const f of manifest.files)
    console.log(`  ${f.name.padEnd(12)} ${kb(f.bytes).padStart(9)}  ${kb(f.gzipBytes)} gzipped`)
  console.log(`dashboard: ${path.relative(process.cwd(), out) || '.'}, JS and CSS ${kb(total)} gzipped`)
  if (total > MAX_GZIP_BYTES) {
    console.error(`dashboard: over the ${kb(MAX_GZIP_BYTES)} bound`)
    process.exitCode = 1
  }
}
