/**
 * Generates, from the zod config schema (run by `npm run build`):
 * - schema/switchyard.schema.json, for editor completion;
 * - the key reference in docs/configuration.md, between the GENERATED markers, so that every key is
 *   documented from the same descriptions the schema carries.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { z } from 'zod'
import { configSchema } from '../src/config/schema.js'

type Json = { [k: string]: unknown }

// The documented default engine is the built-in one, whatever SWITCHYARD_ENGINE says in this shell.
delete process.env.SWITCHYARD_ENGINE
const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json
mkdirSync(new URL('../schema/', import.meta.url), { recursive: true })
writeFileSync(
  new URL('../schema/switchyard.schema.json', import.meta.url),
  `${JSON.stringify({ ...schema, title: 'Switchyard configuration' }, null, 2)}\n`,
)

const variantsOf = (node: Json): Json[] =>
  (((node.anyOf ?? node.oneOf) as Json[] | undefined) ?? []).flatMap((v) => (v.anyOf || v.oneOf ? variantsOf(v) : [v]))
const isObject = (n: Json) => n.type === 'object' && n.properties !== undefined

/** One row per key: path, type, default, description. */
function rows(node: Json, path: string, out: string[][], required: boolean): void {
  const description = typeof node.description === 'string' ? node.description : ''
  const variants = variantsOf(node)
  if (path) out.push([`\`${path}\``, typeText(node), defaultText(node, required), description])
  const objects = [node, ...variants].filter(isObject)
  if (objects.length > 1) mergeVariants(objects, path, out)
  else for (const obj of objects) properties(obj, path, out)
  const arrays = [node, ...variants].filter((n) => n.type === 'array' && n.items)
  for (const arr of arrays) {
    const items = arr.items as Json
    const itemVariants = variantsOf(items)
    if ((itemVariants.length > 0 ? itemVariants : [items]).some((v) => v.type === 'object'))
      rows({ ...items, description: undefined }, `${path}[]`, out, true)
  }
}

function properties(obj: Json, path: string, out: string[][]): void {
  const req = new Set((obj.required as string[] | undefined) ?? [])
  for (const [key, child] of Object.entries(obj.properties as Record<string, Json>)) {
    if (key === '$schema') continue
    rows(child, path ? `${path}.${key}` : key, out, req.has(key))
  }
}

/**
 * The options of a union (a listener per protocol, a health check per type, an algorithm's options):
 * one row per key, its types merged, and a note on the keys that only some options have.
 */
function mergeVariants(objects: readonly Json[], path: string, out: string[][]): void {
  const props = (o: Json) => o.properties as Record<string, Json>
  const discriminator = Object.keys(props(objects[0]!)).find((k) =>
    objects.every((o) => props(o)[k]?.const !== undefined || Array.isArray(props(o)[k]?.enum)),
  )
  const valuesOf = (o: Json): string[] => {
    const d = discriminator === undefined ? undefined : props(o)[discriminator]
    return (d === undefined ? [] : d.const !== undefined ? [d.const] : (d.enum as unknown[])).map(String)
  }
  const label = (values: readonly string[]) => `\`${discriminator}: ${values.join('` or `')}\``
  const merged = new Map<string, { row: string[]; types: Set<string>; values: string[]; notes: string[] }>()
  for (const o of objects) {
    const sub: string[][] = []
    properties(o, path, sub)
    for (const row of sub) {
      const [key, type, dflt, description] = row as [string, string, string, string]
      const seen = merged.get(key)
      if (seen === undefined) {
        merged.set(key, { row, types: new Set([type]), values: valuesOf(o), notes: [] })
        continue
      }
      seen.types.add(type)
      seen.values.push(...valuesOf(o))
      if (seen.row[2] === '' || seen.row[2] === 'required') seen.row[2] = dflt || seen.row[2]!
      if (description !== '' && description !== seen.row[3] && !seen.notes.includes(description))
        seen.notes.push(`With ${label(valuesOf(o))}: ${description}`)
    }
  }
  const all = objects.flatMap(valuesOf).length
  for (const { row, types, values, notes } of merged.values()) {
    const only = values.length < all ? `Only with ${label(values)}. ` : ''
    out.push([row[0]!, [...types].join(' \\| '), row[2]!, `${only}${[row[3], ...notes].filter(Boolean).join(' ')}`])
  }
}

function typeText(node: Json): string {
  const variants = (node.anyOf ?? node.oneOf) as Json[] | undefined
  if (variants) return [...new Set(variants.map(typeText))].join(' \\| ')
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``
  if (Array.isArray(node.enum)) return node.enum.map((v) => `\`${String(v)}\``).join(', ')
  if (node.type === 'array') return `list of ${typeText(node.items as Json)}`
  if (node.type === 'object') return node.additionalProperties && !node.properties ? 'map' : 'object'
  if (node.type === 'integer') return 'integer'
  return String(node.type ?? 'any')
}

function defaultText(node: Json, required: boolean): string {
  if (node.default !== undefined) return `\`${JSON.stringify(node.default)}\``
  return required ? 'required' : ''
}

const out: string[][] = []
rows(schema, '', out, true)
const table = [
  '| key | type | default | description |',
  '|---|---|---|---|',
  ...out.filter((r) => !r[0]!.endsWith('[]`')).map((r) => `| ${r.map((c) => c.replace(/\n/g, ' ')).join(' | ')} |`),
].join('\n')

const docPath = new URL('../docs/configuration.md', import.meta.url)
const BEGIN = '<!-- BEGIN GENERATED: npm run build -->'
const END = '<!-- END GENERATED -->'
let doc: string
try {
  doc = readFileSync(docPath, 'utf8')
} catch {
  doc = `# Configuration reference\n\n${BEGIN}\n${END}\n`
}
const start = doc.indexOf(BEGIN)
const end = doc.indexOf(END)
if (start === -1 || end === -1) throw new Error('docs/configuration.md lacks the GENERATED markers')
writeFileSync(docPath, `${doc.slice(0, start + BEGIN.length)}\n${table}\n${doc.slice(end)}`)
console.log(`wrote schema/switchyard.schema.json and ${out.length} keys to docs/configuration.md`)
