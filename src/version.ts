/** The package version, read once from package.json next to the build. */
import { readFileSync } from 'node:fs'

/** The npm package's name (`switchyard` on npm is an unrelated package); the command is still `switchyard`. */
export const PACKAGE_NAME = 'switchyard-lb'

function readVersion(): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, import.meta.url), 'utf8')) as { name?: string; version?: string }
      if (pkg.name === PACKAGE_NAME && pkg.version) return pkg.version
    } catch {
      // try the next location (src/ vs dist/)
    }
  }
  return '0.0.0'
}

export const VERSION = readVersion()
