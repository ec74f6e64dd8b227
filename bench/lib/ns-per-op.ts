// Timing a synchronous function in-process, for `npm run bench:layers`: a warm-up of a tenth of the
// iterations (so the JIT settles), then `rounds` timed rounds; the figure is the median round's ns per
// call. No I/O; the caller keeps the function's results observable so that nothing is optimised away.

/** One row of an ns/op table: what it measures, and one request's worth of it. */
export interface NsRow {
  readonly name: string
  readonly run: () => void
  /** Calls per round, when the row is too slow for the table's default. */
  readonly iterations?: number
}

/** Median ns per call of `run` over `rounds` rounds of `iterations` calls, after a warm-up. */
export function nsPerOp(run: () => void, iterations: number, rounds: number): number {
  for (let i = 0; i < iterations / 10; i++) run()
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) run()
    samples.push(Number(process.hrtime.bigint() - start) / iterations)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(rounds / 2)] ?? Number.NaN
}
