// CPU profile of Switchyard's request path: runs Switchyard (from a build's bin/switchyard.js) under
// `node --cpu-prof` in front of 3 Node backends, drives it with wrk, and prints the functions with the
// most self time, as a share of the samples in which the process was busy (idle samples left out).
// Writes the table to bench/results/profile-<label>.md as well.
// With --perf, Linux `perf record` (cpu-clock, so it works in VMs without hardware counters) samples
// the process instead, kernel included, with JavaScript frames named through --perf-basic-prof. It
// attributes time far better than V8's sampler, which charges the kernel's TCP work to socket writes.
// With --docs, the profiles recorded so far (bench/results/profile-{before,current}[-perf].md) are
// copied into their section of docs/benchmarks.md, which `npm run bench` carries over.
// Usage: npm run bench:profile -- [--root DIR] [--label NAME] [--duration S] [--access-log] [--perf] [--docs]
//   --root DIR   a checkout whose dist/ is built (default: this one, rebuilt first); profile an older
//                commit with `git worktree add /tmp/old COMMIT`, a node_modules symlink and `npx tsc -p
//                tsconfig.build.json` there
import { spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { Children, freePorts } from './lib/children.js'
import { replaceSection } from './lib/docs-section.js'
import { PROFILE_BEGIN, PROFILE_END } from './lib/report.js'
import { runWrk } from './lib/wrk.js'

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const TOP = 20

interface CpuProfileNode {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}
interface CpuProfile {
  readonly nodes: readonly CpuProfileNode[]
  readonly samples: readonly number[]
  readonly timeDeltas: readonly number[]
}

/** Self time per function (name and file:line), in µs, from a .cpuprofile. */
function selfTimes(profile: CpuProfile): Map<string, number> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const out = new Map<string, number>()
  profile.samples.forEach((id, i) => {
    const frame = byId.get(id)?.callFrame
    if (!frame) return
    const file = frame.url
      .replace(/^file:\/\//, '')
      .replace(/^.*\/node_modules\//, '')
      .replace(`${ROOT}/`, '')
    const key = `${frame.functionName || '(anonymous)'} ${file ? `${file}:${frame.lineNumber + 1}` : ''}`.trim()
    out.set(key, (out.get(key) ?? 0) + (profile.timeDeltas[i] ?? 0))
  })
  return out
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      root: { type: 'string' },
      label: { type: 'string', default: 'current' },
      duration: { type: 'string', default: '8' },
      'access-log': { type: 'boolean', default: false },
      perf: { type: 'boolean', default: false },
      docs: { type: 'boolean', default: false },
    },
  })
  const usePerf = values.perf
  const root = path.resolve(values.root ?? ROOT)
  if (values.root === undefined) {
    const built = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
    if (built.status !== 0) throw new Error('npm run build failed')
  }
  const durationS = Number(values.duration)
  const profDir = mkdtempSync(path.join(tmpdir(), 'switchyard-prof-'))
  const children = new Children(ROOT)
  const aborter = new AbortController()
  try {
    const [lbPort, ...backendPorts] = await freePorts(4)
    const backends = children.start('backends', process.execPath, [
      '--import',
      'tsx',
      path.join(ROOT, 'bench', 'peers', 'backends.ts'),
      ...backendPorts.map(String),
    ])
    for (const p of backendPorts) await children.waitForPort(backends, p, 10_000, aborter.signal)
    const lb = children.start('switchyard', process.execPath, [
      ...(usePerf ? ['--perf-basic-prof'] : ['--cpu-prof', `--cpu-prof-dir=${profDir}`]),
      path.join(root, 'bin', 'switchyard.js'),
      '--listen',
      `127.0.0.1:${lbPort}`,
      ...backendPorts.flatMap((p) => ['--to', `http://127.0.0.1:${p}`]),
      ...(values['access-log'] ? [] : ['--log-level', 'warn']),
    ])
    await children.waitForPort(lb, lbPort!, 10_000, aborter.signal)
    const url = `http://127.0.0.1:${lbPort}/`
    await runWrk(children, { url, connections: 50, durationS: 2 }, aborter.signal)
    const accessLog = values['access-log'] ? 'on' : 'off'
    if (usePerf) {
      const data = path.join(profDir, 'perf.data')
      const load = runWrk(children, { url, connections: 50, durationS }, aborter.signal)
      await new Promise((r) => setTimeout(r, 500))
      const rec = await children.run(
        'perf',
        [
          'record',
          '-e',
          'cpu-clock',
          '-F',
          '2000',
          '-p',
          String(lb.pid),
          '-o',
          data,
          '--',
          'sleep',
          String(durationS - 1),
        ],
        aborter.signal,
      )
      if (rec.code !== 0) throw new Error(`perf record failed: ${rec.stderr}`)
      const wrk = await load
      await children.stopAll()
      const report = await children.run(
        'perf',
        ['report', '-i', data, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none'],
        aborter.signal,
      )
      const rows = report.stdout
        .split('\n')
        .map((l) => /^\s*([\d.]+)%\s+\[([.k])\]\s+(.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({
          pct: Number(m[1]),
          kernel: m[2] === 'k',
          sym: m[3]!
            .trim()
            .replace(`file://${root}/`, '')
            .replace(/\S*node_modules\//, ''),
        }))
      const total = (pred: (r: (typeof rows)[number]) => boolean) =>
        rows
          .filter(pred)
          .reduce((a, r) => a + r.pct, 0)
          .toFixed(1)
      const text = [
        `Profile "${values.label}" (perf): ${Math.round(wrk.reqPerS)} req/s while sampled (wrk -t1 -c50 -d${durationS}s, Node backends, access log ${accessLog}).`,
        `Kernel ${total((r) => r.kernel)}%, JavaScript ${total((r) => r.sym.startsWith('JS:'))}% (Switchyard's own ${total((r) => r.sym.includes('dist/'))}%), V8 builtins and runtime ${total((r) => !r.kernel && !r.sym.startsWith('JS:') && /Builtins_|v8::|RegExp/.test(r.sym))}% of the process's samples.`,
        `Top ${TOP} symbols by self time:`,
        '',
        '| self % | symbol |',
        '|---:|---|',
        ...rows
          .slice(0, TOP)
          .map(
            (r) =>
              `| ${r.pct.toFixed(1)} | ${r.kernel ? '[kernel] ' : ''}\`${r.sym.slice(0, 110).replace(/\|/g, '\\|')}\` |`,
          ),
      ].join('\n')
      process.stdout.write(`${text}\n`)
      mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
      writeFileSync(path.join(ROOT, 'bench', 'results', `profile-${values.label}-perf.md`), `${text}\n`)
      if (values.docs) writeDocsSection()
      return 0
    }
    const wrk = await runWrk(children, { url, connections: 50, durationS }, aborter.signal)
    await children.stopAll()
    const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'))
    if (!file) throw new Error(`no .cpuprofile in ${profDir}`)
    const times = selfTimes(JSON.parse(readFileSync(path.join(profDir, file), 'utf8')) as CpuProfile)
    times.delete('(idle)')
    const busy = [...times.values()].reduce((a, b) => a + b, 0)
    // Frames without a file are native: socket writes (V8's sampler charges the kernel's TCP work to
    // them), GC, and the like. They are summed on one line; the table ranks JavaScript frames.
    const isNative = (k: string) => !k.includes(' ') || k.startsWith('(')
    const native = [...times].filter(([k]) => isNative(k))
    const nativeShare = native.reduce((a, [, t]) => a + t, 0) / busy
    const rows = [...times]
      .filter(([k]) => !isNative(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, TOP)
    const pct = (t: number) => ((100 * t) / busy).toFixed(1)
    const lines = [
      `Profile "${values.label}": ${Math.round(wrk.reqPerS)} req/s under --cpu-prof (wrk -t1 -c50 -d${durationS}s, Node backends, access log ${accessLog}).`,
      `Native frames: ${(100 * nativeShare).toFixed(1)}% of busy samples (${native
        .sort((a, b) => b[1] - a[1])
        .slice(0, 4)
        .map(([k, t]) => `${k} ${pct(t)}%`)
        .join(', ')}).`,
      `Top ${TOP} JavaScript functions by self time, as a share of busy samples (idle excluded):`,
      '',
      '| self % | function |',
      '|---:|---|',
      ...rows.map(([k, t]) => `| ${pct(t)} | \`${k}\` |`),
    ]
    const text = lines.join('\n')
    process.stdout.write(`${text}\n`)
    mkdirSync(path.join(ROOT, 'bench', 'results'), { recursive: true })
    writeFileSync(path.join(ROOT, 'bench', 'results', `profile-${values.label}.md`), `${text}\n`)
    if (values.docs) writeDocsSection()
    return 0
  } finally {
    await children.stopAll()
  }
}

/** Copies the recorded profiles into their section of docs/benchmarks.md. */
function writeDocsSection(): void {
  const read = (name: string): string | undefined => {
    try {
      return readFileSync(path.join(ROOT, 'bench', 'results', name), 'utf8').trim()
    } catch {
      return undefined
    }
  }
  const parts = [
    ['Before this round of work (commit da80080), perf', 'profile-before-perf.md'],
    ['Now, perf', 'profile-current-perf.md'],
    ['Before, V8 sampler (`--cpu-prof`)', 'profile-before.md'],
    ['Now, V8 sampler (`--cpu-prof`)', 'profile-current.md'],
  ].flatMap(([title, file]) => {
    const text = read(file!)
    return text === undefined ? [] : [`### ${title}\n\n${text}`]
  })
  const section = `${PROFILE_BEGIN}
Made with \`npm run bench:profile -- --perf\` (and without \`--perf\` for V8's sampler), on the current build
and on an older one (\`--root\` pointing at a worktree of commit da80080, built with \`tsc\`). Both run one
Switchyard process with the access log off, in front of the Node backends, under \`wrk -t1 -c50\`. V8's
sampler charges the kernel's TCP work to the socket-write functions (\`writev\`, \`writeLatin1String\`), so
perf, which sees the kernel, is the better guide. The request path is spread thin: the kernel's TCP stack,
V8 builtins, Node's http and undici take almost all of it, and Switchyard's own functions a few percent.

${parts.join('\n\n')}
${PROFILE_END}`
  const docsPath = path.join(ROOT, 'docs', 'benchmarks.md')
  const text = readFileSync(docsPath, 'utf8')
  writeFileSync(
    docsPath,
    replaceSection(
      text,
      PROFILE_BEGIN,
      PROFILE_END,
      section,
      (t, s) => `${t.trimEnd()}\n\n## Where the time goes: profiles before and after\n\n${s}\n`,
    ),
  )
  process.stdout.write('updated the profile section of docs/benchmarks.md\n')
}

main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    process.stderr.write(`bench:profile: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exitCode = 1
  },
)
