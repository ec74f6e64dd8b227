/** Lets a draining listener wait until its work in progress is done, or its grace period is over. */
export class IdleWait {
  #waiters: (() => void)[] = []

  /** The listener calls this when its count of work in progress drops to zero. */
  notifyIdle(): void {
    if (this.#waiters.length > 0) for (const w of this.#waiters.splice(0)) w()
  }

  /** Resolves at the next `notifyIdle()` or after `graceMs`, whichever comes first. */
  async until(graceMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      new Promise<void>((resolve) => this.#waiters.push(resolve)),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, graceMs)
      }),
    ])
    clearTimeout(timer)
  }
}
