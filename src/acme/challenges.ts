/**
 * http-01 challenge answers (RFC 8555 §8.3): while an order runs, the ACME manager writes each
 * token's key authorization to `<storage>/challenges/<token>`; every HTTP listener answers
 * `GET /.well-known/acme-challenge/<token>` from there, before routing and rules, so that a redirect to
 * HTTPS or an access rule cannot stand in the way. Files, not memory, so that every worker answers,
 * whichever process ordered. A token that is not there falls through to the routes (an application may
 * answer its own challenges).
 */
import { readFileSync } from 'node:fs'
import path from 'node:path'

export const CHALLENGE_PREFIX = '/.well-known/acme-challenge/'

/** A token: base64url, as RFC 8555 §8.1 has it. */
const TOKEN_RE = /^[A-Za-z0-9_-]{1,256}$/

/** Where a tls-alpn-01 challenge certificate for `domain` is kept (its key and certificate, PEM). */
export function alpnChallengeFile(storageDir: string, domain: string): string {
  return path.join(storageDir, 'challenges', 'tls-alpn-01', `${domain.toLowerCase()}.pem`)
}

/** ALPN protocol of tls-alpn-01 validations (RFC 8737 §6.2). */
export const ACME_TLS_ALPN = 'acme-tls/1'

/** Where a token's answer is kept under a storage directory. */
export function challengeFile(storageDir: string, token: string): string {
  return path.join(storageDir, 'challenges', token)
}

export class ChallengeAnswers {
  readonly #dirs: readonly string[]

  /** `storageDirs`: the `tls.acme.storage` of every listener that has one. */
  constructor(storageDirs: readonly string[]) {
    this.#dirs = [...new Set(storageDirs)]
  }

  /** The key authorization for the request path `url`, if it asks for a token being validated. */
  answer(url: string): string | undefined {
    if (!url.startsWith(CHALLENGE_PREFIX)) return undefined
    const token = url.slice(CHALLENGE_PREFIX.length)
    if (!TOKEN_RE.test(token)) return undefined
    for (const dir of this.#dirs) {
      try {
        return readFileSync(challengeFile(dir, token), 'utf8')
      } catch {
        // not this directory's
      }
    }
    return undefined
  }
}
