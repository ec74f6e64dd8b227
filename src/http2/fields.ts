/** node:http2 header objects built from `[name, value]` pairs. */

/** Adds `value` under `name` (lower-case) to a node:http2 header object: a repeated name becomes an array. */
export function addField(fields: Record<string, string | string[]>, name: string, value: string): void {
  const prev = fields[name]
  if (prev === undefined) fields[name] = value
  else if (Array.isArray(prev)) prev.push(value)
  else fields[name] = [prev, value]
}
