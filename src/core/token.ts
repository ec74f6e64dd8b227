/**
 * Secret tokens checked in constant time: the admin API's bearer token, and the same token where an
 * explained request carries it (explain/policy.ts). Both sides are SHA-256 digests, so the comparison
 * takes the same time whatever was sent, whatever its length; only the digest needs to be kept.
 */
import { createHash, timingSafeEqual } from 'node:crypto'

/** The SHA-256 digest of a token, as `tokenMatches` compares it. */
export function tokenDigest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

/** True when `given` is the token whose digest is `expected`. */
export function tokenMatches(given: string, expected: Buffer): boolean {
  const digest = tokenDigest(given)
  return digest.length === expected.length && timingSafeEqual(digest, expected)
}
