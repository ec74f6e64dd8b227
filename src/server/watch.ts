/**
 * Watches a config file for changes, for `--watch`. The directory is watched rather than the file,
 * so that editors and deploy tools that replace the file (write a temporary file, then rename it over
 * the old one) are seen as well. Events are debounced, and a change is reported only when the file's
 * content differs from what was last reported, since one save fires several events.
 */
import { createHash } from 'node:crypto'
import { type FSWatcher, watch } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { basename, dirname, resolve } from 'node:path'

/** Quiet time after the last event before the file is read (ms). */
const DEBOUNCE_MS = 200

/** Calls `onChange` after each change of `file`'s content. Returns a function that stops watching. */
export async function watchConfigFile(file: string, onChange: () => void): Promise<() => void> {
  const path = resolve(file)
  const name = basename(path)
  let last = await digest(path)
  let timer: NodeJS.Timeout | undefined
  const check = async () => {
    timer = undefined
    const now = await digest(path)
    // A file that is missing for a moment (mid-replace) is not a change; its next version will be.
    if (now === undefined || now === last) return
    last = now
    onChange()
  }
  const watcher: FSWatcher = watch(dirname(path), { persistent: false }, (_event, changed) => {
    if (changed !== null && changed.toString() !== name) return
    if (timer !== undefined) clearTimeout(timer)
    timer = setTimeout(() => void check(), DEBOUNCE_MS)
  })
  watcher.on('error', () => {})
  return () => {
    if (timer !== undefined) clearTimeout(timer)
    watcher.close()
  }
}

async function digest(path: string): Promise<string | undefined> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex')
  } catch {
    return undefined
  }
}
