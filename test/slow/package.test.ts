/**
 * The published package, as a user gets it: `npm pack` makes the tarball, which is installed into an
 * empty folder with npm. The installed `switchyard` command answers `--version` and `validate`, and the
 * library (`switchyard-lb` and `switchyard-lb/testing`) imports, type-checks and serves a request.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string }

interface Run {
  code: number
  stdout: string
  stderr: string
}

function run(cmd: string, args: readonly string[], cwd: string, timeoutMs = 120_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : 1
      resolve({ code, stdout, stderr })
    })
  })
}

// The package does not depend on the engine or the Node version under test: CI runs this once, in its
// first slow run, and sets SWITCHYARD_PACKAGE_TEST=0 for the others (it takes about a minute).
const skip = process.env.SWITCHYARD_PACKAGE_TEST === '0' ? 'SWITCHYARD_PACKAGE_TEST=0: run in another pass' : false

describe(`the npm package (${pkg.name})`, { skip }, () => {
  let work: string
  let app: string
  let files: string[] = []

  before(async () => {
    if (skip !== false) return
    work = await mkdtemp(join(tmpdir(), 'switchyard-pack-'))
    // `npm pack` runs `prepare` (the build) first, so the tarball holds a fresh dist/.
    const packed = await run('npm', ['pack', '--json', '--pack-destination', work], ROOT, 300_000)
    assert.equal(packed.code, 0, packed.stderr)
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as {
      filename: string
      files: { path: string }[]
    }[]
    assert.ok(info !== undefined)
    files = info.files.map((f) => f.path)
    app = join(work, 'app')
    await run('mkdir', ['-p', app], work)
    await writeFile(join(app, 'package.json'), '{ "name": "an-app", "private": true, "type": "module" }\n')
    const installed = await run(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', join(work, info.filename)],
      app,
      300_000,
    )
    assert.equal(installed.code, 0, installed.stderr)
  })

  after(async () => {
    if (work !== undefined) await rm(work, { recursive: true, force: true })
  })

  it('ships the build, the command and the schema, and no tests or sources', () => {
    for (const f of ['bin/switchyard.js', 'dist/index.js', 'dist/index.d.ts', 'dist/cli.js', 'dist/testing.js'])
      assert.ok(files.includes(f), `${f} is in the tarball`)
    assert.ok(
      files.some((f) => f.startsWith('schema/') && f.endsWith('.json')),
      'the JSON schema is in the tarball',
    )
    assert.deepEqual(
      files.filter((f) => /\.test\.|^src\/|^test\//.test(f)),
      [],
    )
  })

  it('installs the switchyard command: --version and validate', async () => {
    const bin = join(app, 'node_modules', '.bin', 'switchyard')
    const v = await run(bin, ['--version'], app)
    assert.equal(v.code, 0, v.stderr)
    assert.equal(v.stdout, `${pkg.version}\n`)

    await writeFile(
      join(app, 'good.yaml'),
      'listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes: [{ pool: web }]\npools:\n  - name: web\n    servers: [http://127.0.0.1:3001]\n',
    )
    const good = await run(bin, ['validate', 'good.yaml'], app)
    assert.equal(good.code, 0, good.stderr)

    await writeFile(
      join(app, 'bad.yaml'),
      'listeners:\n  - name: public\n    listen: 127.0.0.1:0\n    routes: [{ pool: web }]\npools:\n  - name: web\n    balance: fastest\n    servers: [http://127.0.0.1:3001]\n',
    )
    const bad = await run(bin, ['validate', 'bad.yaml'], app)
    assert.equal(bad.code, 2)
    assert.match(bad.stderr + bad.stdout, /bad\.yaml:7:\d+: pools\[0\]\.balance/)
  })

  it('imports and type-checks as a library, and serves a request', async () => {
    const source = `import { createLoadBalancer, definePlugin, VERSION } from '${pkg.name}'
import { balancerConformance } from '${pkg.name}/testing'

const plugin = definePlugin({ name: 'hello', onRequest: () => ({ kind: 'respond', status: 200, body: 'hello\\n' }) })
const lb = createLoadBalancer(
  {
    listeners: [{ name: 'public', listen: '127.0.0.1:0', routes: [{ pool: 'web' }] }],
    pools: [{ name: 'web', servers: ['http://127.0.0.1:3001'] }],
  },
  { plugins: [plugin] },
)
await lb.start()
const port: number = lb.addresses().public?.port ?? 0
const res = await fetch(\`http://127.0.0.1:\${port}/\`)
console.log(JSON.stringify({ version: VERSION, status: res.status, body: await res.text(), conformance: typeof balancerConformance }))
await lb.close()
`
    await writeFile(join(app, 'main.ts'), source)
    await writeFile(join(app, 'main.mjs'), source.replace('const port: number', 'const port'))
    const out = await run(process.execPath, ['main.mjs'], app, 30_000)
    assert.equal(out.code, 0, out.stderr)
    assert.deepEqual(JSON.parse(out.stdout), {
      version: pkg.version,
      status: 200,
      body: 'hello\n',
      conformance: 'function',
    })

    // The declarations the package ships are enough for a strict TypeScript project.
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'nodenext',
          moduleResolution: 'nodenext',
          target: 'es2022',
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          types: ['node'],
          typeRoots: [join(ROOT, 'node_modules', '@types')],
        },
        files: ['main.ts'],
      }),
    )
    const tsc = await run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], app)
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr)
  })
})
