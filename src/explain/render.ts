/**
 * The two forms of an explanation: the compact `x-switchyard-explain` response header, and the JSON of
 * the access log's `explain` field. Both are bounded, whatever the pool size or the names.
 *
 * The header is `key=value` items joined by `; `, in this order, each left out when it does not apply:
 *
 *   route=api; filters=rateLimit,headers; pool=web; lb=peak-ewma(p2c); sticky=cookie(new);
 *   picked=app-2; scores=app-2(ewma 1.2ms),app-1(ewma 3.4ms); skipped=app-3(ejected),app-4(draining);
 *   retries=app-2(reset); noRetry=attempts; server=app-1; queued=3.1ms; error=SWY_UPSTREAM_RESET
 *
 * A value is a list of entries joined by `,`; an entry is a token with an optional note in
 * parentheses. Tokens (names, codes) hold only `A-Za-z0-9 . _ : [ ] -`; notes hold no `;`, `,`, `(`
 * or `)`. Any other character is written as `_`. A long list ends with `+N` (N more entries), and a
 * value that would pass MAX_HEADER_CHARS ends with `truncated=1`. See docs/explain.md.
 */
import type { ExplainRecord, ServerChoice } from './model.js'

/** Longest header value, in characters (ASCII). */
export const MAX_HEADER_CHARS = 1024
/** Longest access-log `explain` JSON, in characters: the line stays one write (access-log.ts). */
export const MAX_JSON_CHARS = 2048
/** Entries of a header list shown before `+N`. */
const HEADER_LIST = 8

/** The compact header value of an explanation. */
export function explainHeader(record: ExplainRecord): string {
  const items: string[] = []
  const add = (key: string, value: string | undefined) => {
    if (value !== undefined && value !== '') items.push(`${key}=${value}`)
  }
  add(
    'route',
    record.route === null ? '-' : typeof record.route === 'number' ? `#${record.route}` : token(record.route),
  )
  add(
    'filters',
    list(
      record.filters.map((f, i) =>
        entry(f, i === record.filters.length - 1 && record.answeredBy === f ? 'answered' : ''),
      ),
    ),
  )
  const choice = record.choice
  add('pool', record.pool === undefined ? undefined : entry(record.pool, choice?.panic === true ? 'panic' : ''))
  if (choice !== undefined) {
    add('lb', entry(choice.algorithm, lbNote(choice)))
    const sticky = choice.sticky
    if (sticky !== undefined)
      add(
        'sticky',
        entry(
          sticky.mode,
          [sticky.decision, sticky.bound === undefined ? '' : `${token(sticky.bound)}`, sticky.boundState ?? '']
            .filter((s) => s !== '')
            .join(' '),
        ),
      )
    add(
      'picked',
      choice.picked === undefined ? '-' : entry(choice.picked, choice.candidates[0]?.backup ? 'backup' : ''),
    )
    const scored = choice.candidates.filter((c) => c.note !== '')
    add('scores', list(scored.map((c) => entry(c.server, c.note))))
    add('skipped', list(choice.skipped.map((s) => entry(s.server, s.reason))))
  }
  const retried = record.tries.filter((t) => t.retry !== undefined)
  add(
    'retries',
    list(
      retried.map((t) =>
        entry(t.server, t.retry === 'status' && t.status !== undefined ? `status ${t.status}` : (t.retry ?? '')),
      ),
    ),
  )
  add('noRetry', record.noRetry)
  const last = record.tries.at(-1)?.server
  if (last !== undefined && last !== choice?.picked) add('server', token(last))
  if (choice?.queuedMs !== undefined) add('queued', `${round(choice.queuedMs)}ms`)
  add('error', record.error === undefined ? undefined : token(record.error))
  return bounded(items)
}

/** The access log's `explain` value: the record as JSON, shortened (lists first) to MAX_JSON_CHARS. */
export function explainJson(record: ExplainRecord): string {
  const full = JSON.stringify(record)
  if (full.length <= MAX_JSON_CHARS) return full
  for (const keep of [16, 4, 1]) {
    const short = shorten(record, keep)
    const text = JSON.stringify(short)
    if (text.length <= MAX_JSON_CHARS) return text
  }
  return JSON.stringify({
    route: record.route,
    pool: record.pool,
    picked: record.choice?.picked,
    error: record.error,
    truncated: true,
  })
}

/** The record with every list cut to `keep` entries (and a count of the rest). */
function shorten(record: ExplainRecord, keep: number): Record<string, unknown> {
  const choice = record.choice
  const cut = <T>(items: readonly T[] | undefined) => (items === undefined ? undefined : items.slice(0, keep))
  const more = (items: readonly unknown[] | undefined) =>
    items !== undefined && items.length > keep ? items.length - keep : undefined
  return {
    ...record,
    filters: cut(record.filters),
    filtersMore: more(record.filters),
    choice:
      choice === undefined
        ? undefined
        : {
            ...choice,
            candidates: cut(choice.candidates)?.map(({ detail: _detail, ...c }) => c),
            skipped: cut(choice.skipped),
            skippedMore: more(choice.skipped),
            selectedBy: cut(choice.selectedBy),
          },
    tries: cut(record.tries),
    triesMore: more(record.tries),
    truncated: true,
  }
}

function lbNote(choice: ServerChoice): string {
  const parts = [choice.method]
  if (choice.hashOn !== undefined) parts.push(choice.hashOn)
  const h = choice.hash
  if (h !== undefined) parts.push(`hash ${h.value} ${h.unit} ${h.at}/${h.size}`)
  if (choice.selectedBy !== undefined) parts.push(`by ${choice.selectedBy.join(' ')}`)
  return parts.join(' ')
}

/** A list value: at most HEADER_LIST entries, then `+N`. */
function list(entries: readonly string[]): string {
  if (entries.length <= HEADER_LIST) return entries.join(',')
  return `${entries.slice(0, HEADER_LIST).join(',')},+${entries.length - HEADER_LIST}`
}

function entry(name: string, note: string): string {
  const n = note.replace(/[^\x20-\x7e]|[;,()]/g, '_').trim()
  return n === '' ? token(name) : `${token(name)}(${n})`
}

function token(text: string): string {
  return text.replace(/[^A-Za-z0-9._:[\]-]/g, '_')
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10
}

/** The items joined, cut at an item boundary (with `truncated=1`) when they pass MAX_HEADER_CHARS. */
function bounded(items: readonly string[]): string {
  let out = ''
  for (const item of items) {
    const next = out === '' ? item : `${out}; ${item}`
    if (next.length > MAX_HEADER_CHARS - '; truncated=1'.length)
      return out === '' ? 'truncated=1' : `${out}; truncated=1`
    out = next
  }
  return out
}

/** One entry of a header value: its token, and its note if it has one. */
export interface HeaderEntry {
  readonly token: string
  readonly note?: string | undefined
}

/**
 * Reads a header value back: each key with its entries (for tools and tests). Unknown keys are kept;
 * `+N` is an entry of its own.
 */
export function parseExplainHeader(value: string): Map<string, HeaderEntry[]> {
  const out = new Map<string, HeaderEntry[]>()
  for (const item of value.split('; ')) {
    const eq = item.indexOf('=')
    if (eq <= 0) continue
    const entries = item
      .slice(eq + 1)
      .split(',')
      .map((e): HeaderEntry => {
        const open = e.indexOf('(')
        if (open < 0 || !e.endsWith(')')) return { token: e }
        return { token: e.slice(0, open), note: e.slice(open + 1, -1) }
      })
    out.set(item.slice(0, eq), entries)
  }
  return out
}
