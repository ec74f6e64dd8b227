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

const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Json
mkdirSync(new URL('../schema/', import.meta.url), { recursive: true })
writeFileSync(
  new URL('../schema/switchyard.schema.json', import.meta.url),
  `${JSON.stringify({ ...schema, title: 'Switchyard configuration' }, null, 2)}\n`,
)

/** One row per key: path, type, default, description. */
function rows(node: Json, path: string, out: string[][], required: boolean): void {
  const description = typeof node.description === 'string' ? node.description : ''
  const variants = (node.anyOf ?? node.oneOf) as Json[] | undefined
  if (path) out.push([`\`${path}\``, typeText(node), defaultText(node, required), description])
  const objects = [node, ...(variants ?? [])].filter((n) => n.type === 'object' && n.properties)
  for (const obj of objects) {
    const req = new Set((obj.required as string[] | undefined) ?? [])
    for (const [key, child] of Object.entries(obj.properties as Record<string, Json>)) {
      if (key === '$schema') continue
      rows(child, path ? `${path}.${key}` : key, out, req.has(key))
    }
  }
  const arrays = [node, ...(variants ?? [])].filter((n) => n.type === 'array' && n.items)
  for (const arr of arrays) {
    const items = arr.items as Json
    const itemVariants = ((items.anyOf ?? items.oneOf) as Json[] | undefined) ?? [items]
    if (itemVariants.some((v) => v.type === 'object'))
      rows({ ...items, description: undefined }, `${path}[]`, out, true)
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
