/**
 * GCRA, the generic cell rate algorithm: a token bucket kept as one number per key, the theoretical
 * arrival time (TAT) of the next request, and no timer. A request conforms when it comes no earlier
 * than `TAT - tolerance`; each conforming request moves the TAT one emission interval later. Exact to
 * the clock it is given (`performance.now()` milliseconds on the request path).
 *
 * Semantics (nginx's `limit_req rate burst`): `rate` requests per `per`, steady; `burst` requests more
 * may come at once on top of the steady one, so a fresh key may send `1 + burst` requests at the same
 * instant, and a key held over its limit for `d` ms gets `d × rate / per + burst` (plus that first one).
 */

export interface RatePolicy {
  /** Milliseconds between two conforming requests at the steady rate (`per / rate`). */
  readonly intervalMs: number
  /** How far ahead of now the TAT may run: `burst × intervalMs`. */
  readonly toleranceMs: number
}

/** `rate` requests per `perMs`, and `burst` more at once; rate ≥ 1, perMs ≥ 1, burst ≥ 0. */
export function ratePolicy(rate: number, perMs: number, burst: number): RatePolicy {
  const intervalMs = perMs / rate
  return Object.freeze({ intervalMs, toleranceMs: burst * intervalMs })
}

export interface RateDecision {
  /**
   * `allow`: now; `delay`: the request holds its slot and goes after `delayMs`; `deny`: refused, and
   * a request would conform after `delayMs` (Retry-After). A refused request leaves the key unchanged.
   */
  readonly kind: 'allow' | 'delay' | 'deny'
  readonly delayMs: number
  /** Requests the key may still send at once, after this one. */
  readonly remaining: number
  /** Milliseconds until the key is back to a full bucket. */
  readonly resetMs: number
}

/**
 * One request against a key whose TAT is `tat` (undefined: a key never seen, or forgotten), at `nowMs`.
 * `maxDelayMs` > 0 accepts a request that would conform within that time, delayed. Returns the
 * decision and the key's new TAT (unchanged when denied).
 */
export function gcra(
  tat: number | undefined,
  nowMs: number,
  policy: RatePolicy,
  maxDelayMs: number,
): { readonly decision: RateDecision; readonly tat: number | undefined } {
  const base = tat === undefined || tat < nowMs ? nowMs : tat
  const conformsAt = base - policy.toleranceMs
  const wait = conformsAt - nowMs
  // A microsecond of slack for floating-point error in `base` (a sum of intervals).
  if (wait > maxDelayMs + 0.001) {
    const resetMs = base - nowMs
    return { decision: { kind: 'deny', delayMs: wait, remaining: 0, resetMs }, tat }
  }
  const next = base + policy.intervalMs
  const fill = next - nowMs
  const capacity = policy.toleranceMs + policy.intervalMs
  const remaining = Math.max(0, Math.floor((capacity - fill + 1e-9) / policy.intervalMs))
  const decision: RateDecision =
    wait > 0.001
      ? { kind: 'delay', delayMs: wait, remaining, resetMs: fill }
      : { kind: 'allow', delayMs: 0, remaining, resetMs: fill }
  return { decision, tat: next }
}
