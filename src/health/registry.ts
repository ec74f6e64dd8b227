/**
 * Every health check type, listed explicitly: one file each, one line here. The config schema for
 * `healthCheck:` is the union of their fragments, keyed on `type`.
 */
import { z } from 'zod'
import type { Probe } from './check.js'
import * as httpCheck from './http-check.js'
import * as tcpCheck from './tcp-check.js'

export const healthCheckSchema = z.discriminatedUnion('type', [httpCheck.schema, tcpCheck.schema])

export type HealthCheckOptions = z.infer<typeof healthCheckSchema>

export function createProbe(options: HealthCheckOptions): Probe {
  switch (options.type) {
    case 'http':
      return httpCheck.create(options)
    case 'tcp':
      return tcpCheck.create(options)
    default: {
      const unknown: never = options
      throw new Error(`unknown health check ${JSON.stringify(unknown)}`)
    }
  }
}
