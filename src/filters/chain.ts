/**
 * Runs one phase of the pipeline over its filters, in order, until one answers. A filter that returns
 * synchronously costs a call: the phase creates a promise (and a closure) only from the first filter
 * that returns one, and an empty phase is skipped by the caller. A filter that throws or rejects ends
 * the phase with an `error` outcome naming it.
 */
import type { Filter, FilterContext, HookResult, Reject, Respond, ResponseDraft } from './types.js'

export type PhaseOutcome =
  | { readonly kind: 'continue' }
  | Respond
  | Reject
  | { readonly kind: 'error'; readonly filter: string; readonly error: unknown }

export const CONTINUE: PhaseOutcome = { kind: 'continue' }

/** Calls one filter's hook for the phase. */
export type PhaseCall<A = undefined> = (filter: Filter, ctx: FilterContext, arg: A) => HookResult

export function runPhase<A>(
  filters: readonly Filter[],
  call: PhaseCall<A>,
  ctx: FilterContext,
  arg: A,
  from = 0,
): PhaseOutcome | Promise<PhaseOutcome> {
  for (let i = from; i < filters.length; i++) {
    const filter = filters[i] as Filter
    let verdict: HookResult
    try {
      verdict = call(filter, ctx, arg)
    } catch (error) {
      return { kind: 'error', filter: filter.name, error }
    }
    if (isThenable(verdict)) return continueAsync(filters, call, ctx, arg, i, verdict)
    const outcome = settle(filter, verdict)
    if (outcome !== undefined) return outcome
  }
  return CONTINUE
}

async function continueAsync<A>(
  filters: readonly Filter[],
  call: PhaseCall<A>,
  ctx: FilterContext,
  arg: A,
  at: number,
  pending: PromiseLike<Awaited<HookResult>>,
): Promise<PhaseOutcome> {
  const filter = filters[at] as Filter
  let verdict: Awaited<HookResult>
  try {
    verdict = await pending
  } catch (error) {
    return { kind: 'error', filter: filter.name, error }
  }
  return settle(filter, verdict) ?? runPhase(filters, call, ctx, arg, at + 1)
}

/** The outcome a verdict ends the phase with, or undefined to go on. */
function settle(filter: Filter, verdict: Awaited<HookResult>): PhaseOutcome | undefined {
  if (verdict === undefined || verdict === null) return undefined
  switch (verdict.kind) {
    case 'continue':
      return undefined
    case 'respond':
    case 'reject':
      return verdict
    default: {
      const unknown: never = verdict
      return { kind: 'error', filter: filter.name, error: new Error(`unknown verdict ${JSON.stringify(unknown)}`) }
    }
  }
}

export function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | undefined)?.then === 'function'
}

export const callOnRequest: PhaseCall = (f, ctx) => f.onRequest?.(ctx)
export const callOnRoute: PhaseCall = (f, ctx) => f.onRoute?.(ctx)
export const callOnResponse: PhaseCall<ResponseDraft> = (f, ctx, response) => f.onResponse?.(ctx, response)
