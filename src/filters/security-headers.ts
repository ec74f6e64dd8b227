/**
 * `securityHeaders`: a preset of response headers that browsers act on, each added only when the
 * server's response does not set it already (the application's own choice wins):
 * - `Strict-Transport-Security: max-age=31536000` (and `includeSubDomains` / `preload` when asked), on
 *   requests that came over TLS only: HSTS over plain HTTP is ignored by browsers (RFC 6797 §8.1);
 * - `X-Content-Type-Options: nosniff`;
 * - `Referrer-Policy: strict-origin-when-cross-origin`;
 * - `X-Frame-Options: SAMEORIGIN`.
 * `true` takes them all; an object changes or turns off (`false`) each. They go on upstream responses
 * (`onResponse`); Switchyard's own answers (errors, `respond`, `redirect`) do not pass that phase.
 */
import { z } from 'zod'
import type { FilterEnv } from './env.js'
import type { Filter, FilterContext, ResponseDraft } from './types.js'

const options = z.strictObject({
  hsts: z
    .union([
      z.literal(false),
      z.strictObject({
        maxAge: z.number().int().min(0).default(31_536_000).describe('Seconds browsers keep to HTTPS.'),
        includeSubDomains: z.boolean().default(false),
        preload: z.boolean().default(false),
      }),
    ])
    .prefault({})
    .describe('Strict-Transport-Security, on TLS requests only; false: none.'),
  contentTypeOptions: z.boolean().default(true).describe('X-Content-Type-Options: nosniff.'),
  referrerPolicy: z
    .union([
      z.literal(false),
      z.enum([
        'no-referrer',
        'no-referrer-when-downgrade',
        'origin',
        'origin-when-cross-origin',
        'same-origin',
        'strict-origin',
        'strict-origin-when-cross-origin',
        'unsafe-url',
      ]),
    ])
    .default('strict-origin-when-cross-origin')
    .describe('Referrer-Policy; false: none.'),
  frameOptions: z
    .union([z.literal(false), z.enum(['DENY', 'SAMEORIGIN'])])
    .default('SAMEORIGIN')
    .describe('X-Frame-Options; false: none.'),
})

export const schema = z
  .union([z.literal(true), options])
  .describe(
    'Browser security headers, each added when the response lacks it: HSTS (TLS only), X-Content-Type-Options, Referrer-Policy, X-Frame-Options (docs/security.md).',
  )

export type SecurityHeadersOptions = z.output<typeof schema>

export function create(input: SecurityHeadersOptions, _env: FilterEnv): Filter {
  const o = input === true ? options.parse({}) : input
  const always: [string, string][] = []
  if (o.contentTypeOptions) always.push(['x-content-type-options', 'nosniff'])
  if (o.referrerPolicy !== false) always.push(['referrer-policy', o.referrerPolicy])
  if (o.frameOptions !== false) always.push(['x-frame-options', o.frameOptions])
  const hsts =
    o.hsts === false
      ? undefined
      : `max-age=${o.hsts.maxAge}${o.hsts.includeSubDomains ? '; includeSubDomains' : ''}${o.hsts.preload ? '; preload' : ''}`
  return {
    name: 'securityHeaders',
    onResponse: (ctx: FilterContext, response: ResponseDraft) => {
      for (const [name, value] of always) if (response.header(name) === undefined) response.setHeader(name, value)
      if (
        hsts !== undefined &&
        ctx.request.scheme === 'https' &&
        response.header('strict-transport-security') === undefined
      )
        response.setHeader('strict-transport-security', hsts)
    },
  }
}
