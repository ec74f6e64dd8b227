/**
 * Waiting in tests: on a condition, with a deadline. A test waits for what it needs to see (a log line,
 * a count, a state), never for a fixed time; a fixed wait is only for asserting that nothing happens
 * within it, and says so where it is used.
 */

/**
 * Checks `condition` every `intervalMs` (default 10) until it holds. Rejects, naming `what`, once
 * `timeoutMs` (default 10 000) has passed without it: a clear failure well inside the runner's own
 * per-test timeout.
 */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  { timeoutMs = 10_000, intervalMs = 10 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = performance.now() + timeoutMs
  while (!(await condition())) {
    if (performance.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
