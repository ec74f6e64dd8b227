/**
 * The hash that every hashing algorithm uses: 32-bit FNV-1a over the string's UTF-16 code units, then
 * murmur3's finalizer so that similar keys ("10.0.0.1", "10.0.0.2") land far apart. It has no
 * per-process seed, so separate instances (processes, machines, restarts) with the same server list
 * map every key to the same server.
 */
export function hash32(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** True when `n` is prime (trial division: for table sizes, off the request path). */
export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false
  if (n % 2 === 0) return n === 2
  for (let d = 3; d * d <= n; d += 2) if (n % d === 0) return false
  return true
}
