/**
 * Who may ask for an explanation: a listener's `explain` settings, compiled once per snapshot. A
 * request asks with `x-switchyard-explain: 1`; it is honoured from a trusted client address, or with
 * the admin token in `x-switchyard-token` (compared in constant time, core/token.ts). Both headers are
 * removed from what goes upstream whether or not the request is honoured, so a client can neither
 * reach a server with them nor learn the token's use from a server's echo. A listener without
 * `explain` has no policy, and its requests pay one field test for the feature.
 */
import type { ExplainSettings } from '../config/index.js'
import { tokenMatches } from '../core/token.js'
import { removeHeaders } from '../l7/head-draft.js'
import type { RequestHead } from '../l7/headers.js'
import { AccessList } from '../limits/index.js'

/** The request header that asks (value `1`), and the response header that answers. */
export const EXPLAIN_HEADER = 'x-switchyard-explain'
/** The request header that carries the admin token. */
export const TOKEN_HEADER = 'x-switchyard-token'

/** Why a request is explained: its address is trusted, or it carried the admin token. */
export type ExplainGrant = 'trusted' | 'token'

export class ExplainPolicy {
  /** Undefined: no address is trusted. */
  readonly #trusted: AccessList | undefined
  /** SHA-256 of the admin token; undefined: the token is not accepted. */
  readonly #token: Buffer | undefined

  constructor(settings: ExplainSettings) {
    this.#trusted = settings.trusted.length === 0 ? undefined : new AccessList(settings.trusted, [])
    this.#token = settings.token === undefined ? undefined : Buffer.from(settings.token, 'hex')
  }

  /** The listener's policy; undefined when it has no `explain` (off). */
  static of(settings: ExplainSettings | undefined): ExplainPolicy | undefined {
    return settings === undefined ? undefined : new ExplainPolicy(settings)
  }

  /**
   * Whether the request (its raw head as received, and `head`, what goes upstream) is explained, and
   * why; undefined when it does not ask, or may not. Removes both headers from `head` either way.
   */
  check(raw: readonly string[], head: RequestHead, clientIp: string): ExplainGrant | undefined {
    let asked: string | undefined
    let token: string | undefined
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string
      if (name.length === EXPLAIN_HEADER.length && name.toLowerCase() === EXPLAIN_HEADER) asked ??= raw[i + 1]
      else if (name.length === TOKEN_HEADER.length && name.toLowerCase() === TOKEN_HEADER) token ??= raw[i + 1]
    }
    if (asked === undefined && token === undefined) return undefined
    for (const name of [EXPLAIN_HEADER, TOKEN_HEADER]) {
      const at = removeHeaders(head.headers, name)
      // The entries after `at` moved: only those before it are still the client's, as checked.
      if (at >= 0 && at < head.checked) head.checked = at
    }
    if (asked?.trim() !== '1') return undefined
    if (this.#trusted?.allows(clientIp) === true) return 'trusted'
    if (this.#token !== undefined && token !== undefined && tokenMatches(token.trim(), this.#token)) return 'token'
    return undefined
  }
}
