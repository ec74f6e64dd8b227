/** `respond`: answers with a fixed status, headers and body (maintenance pages, robots.txt, health). */
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter, Respond } from './types.js'

export const schema = z
  .strictObject({
    status: z.number().int().min(200).max(599).default(200).describe('The status to answer with.'),
    headers: z
      .record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected a header name' }), z.string())
      .optional()
      .describe('Response headers. Content-Length is computed; Content-Type defaults to text/plain for a body.'),
    body: z
      .string()
      .max(1024 * 1024)
      .default('')
      .describe('The response body (at most 1 MiB).'),
  })
  .describe('Answer every matching request with this response; no pool is asked.')

export function create(options: z.output<typeof schema>, _env: FilterEnv): Filter {
  const verdict: Respond = Object.freeze({
    kind: 'respond',
    status: options.status,
    headers: options.headers,
    body: Buffer.from(options.body),
  })
  const answer = () => verdict
  return { name: 'respond', onRequest: answer, onRoute: answer }
}
