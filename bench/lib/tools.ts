// Finding the external programs and npm packages the bench can use, and their versions, without
// running anything heavier than `--version`. A missing one is reported, never an error: the runner
// skips what needs it and says so in the report.
import { spawnSync } from 'node:child_process'
import { accessSync, constants, readFileSync } from 'node:fs'
import path from 'node:path'

/** Directories searched besides $PATH: nginx and haproxy live in /usr/sbin, often not on a user's PATH. */
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin']

/** Absolute path of an executable named `name`, from $PATH or the sbin directories; undefined if none. */
export function findBinary(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter).filter((d) => d !== ''), ...EXTRA_DIRS]
  for (const dir of dirs) {
    const file = path.join(dir, name)
    try {
      accessSync(file, constants.X_OK)
      return file
    } catch {
      // Not here; next directory.
    }
  }
  return undefined
}

/** Version of an npm package installed under `rootDir`/node_modules; undefined if it is not installed. */
export function packageVersion(rootDir: string, name: string): string | undefined {
  try {
    const json = JSON.parse(readFileSync(path.join(rootDir, 'node_modules', name, 'package.json'), 'utf8')) as {
      version?: unknown
    }
    return typeof json.version === 'string' ? json.version : 'unknown'
  } catch {
    return undefined
  }
}

/** How each tool prints its version: the arguments, and a pattern whose group 1 is the version. */
const VERSION_PROBES: Readonly<Record<string, { readonly args: readonly string[]; readonly re: RegExp }>> = {
  // `wrk -v` prints its version, then usage, and exits 1.
  wrk: { args: ['-v'], re: /^wrk\s+(\S+)/m },
  nginx: { args: ['-v'], re: /nginx version: nginx\/(\S+)/ },
  haproxy: { args: ['-v'], re: /HAProxy version (\S+)/ },
  // hey has no version flag; its usage text says nothing about the version either.
  hey: { args: ['-h'], re: /(?!)/ },
  // `h2load --version` prints `h2load nghttp2/1.52.0`.
  h2load: { args: ['--version'], re: /nghttp2\/(\S+)/ },
}

export type Tool = 'wrk' | 'nginx' | 'haproxy' | 'hey' | 'h2load'

/** The Debian package each tool comes in, for the "install it with" hints. */
export const TOOL_PACKAGES: Readonly<Record<Tool, string>> = {
  wrk: 'wrk',
  nginx: 'nginx',
  haproxy: 'haproxy',
  hey: 'hey',
  h2load: 'nghttp2-client',
}

export interface FoundTool {
  readonly path: string
  readonly version: string
}

/** The tool's path and version, or undefined when it is not installed. */
export function probeTool(tool: Tool): FoundTool | undefined {
  const file = findBinary(tool)
  if (file === undefined) return undefined
  const probe = VERSION_PROBES[tool]!
  const out = spawnSync(file, probe.args, { encoding: 'utf8', timeout: 5_000 })
  const version = probe.re.exec(`${out.stdout}${out.stderr}`)?.[1] ?? debianVersion(TOOL_PACKAGES[tool]) ?? 'unknown'
  return { path: file, version }
}

/** The Debian package version of `pkg`, when dpkg knows it. */
function debianVersion(pkg: string): string | undefined {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax, not a template.
  const out = spawnSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8', timeout: 5_000 })
  return out.status === 0 && out.stdout.trim() !== '' ? `debian/${out.stdout.trim()}` : undefined
}
