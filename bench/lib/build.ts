// Building dist/ before a bench, so that a run measures the current source, not a stale build.
import { spawnSync } from 'node:child_process'

/** Runs `npm run build` in `rootDir`, its errors to our stderr; throws if it fails. */
export function ensureBuilt(rootDir: string, log: (line: string) => void): void {
  log('building dist/ (npm run build)')
  const out = spawnSync('npm', ['run', 'build'], { cwd: rootDir, stdio: ['ignore', 'ignore', 'inherit'] })
  if (out.status !== 0) throw new Error(`npm run build failed (exit ${out.status ?? out.signal})`)
}

/** `d` as YYYY-MM-DD in local time: the name of a day's results file. */
export function localDate(d: Date): string {
  const pad = (n: number): string => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
}
