/**
 * Run as its own process (`node --expose-gc --import tsx`): sprays `KEYS` distinct client addresses
 * at one in-memory rate-limit table of `MAX_KEYS` and prints, as JSON, the table's size and what the
 * process's RSS and heap grew by (after a full GC on each side). test/slow/limits-memory.test.ts reads it.
 */
import { MemoryRateStore, ratePolicy } from '../../src/limits/index.js'

const keys = Number(process.env.KEYS ?? 1_000_000)
const maxKeys = Number(process.env.MAX_KEYS ?? 100_000)
const gc = globalThis.gc
if (gc === undefined) throw new Error('run with --expose-gc')
const store = new MemoryRateStore(maxKeys)
const policy = ratePolicy(100, 1000, 50)
gc()
const before = process.memoryUsage()
for (let i = 0; i < keys; i++) store.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, i / 10, policy, 0)
gc()
const after = process.memoryUsage()
process.stdout.write(
  `${JSON.stringify({
    size: store.size,
    rssMb: (after.rss - before.rss) / 2 ** 20,
    heapMb: (after.heapUsed - before.heapUsed) / 2 ** 20,
  })}\n`,
)
