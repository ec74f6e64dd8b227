/** Writes schema/switchyard.schema.json from the zod config schema (run by `npm run build`). */
import { mkdirSync, writeFileSync } from 'node:fs'
import { z } from 'zod'
import { configSchema } from '../src/config/schema.js'

const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' })
const out = { ...schema, title: 'Switchyard configuration' }
mkdirSync(new URL('../schema/', import.meta.url), { recursive: true })
writeFileSync(new URL('../schema/switchyard.schema.json', import.meta.url), `${JSON.stringify(out, null, 2)}\n`)
console.log('wrote schema/switchyard.schema.json')
