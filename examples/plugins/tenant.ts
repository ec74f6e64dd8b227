/**
 * A plugin that routes each tenant to a pool of its own: the tenant comes from a request header, and
 * tenants without a dedicated pool stay on the route's pool. Its options come from the config:
 *
 *   plugins:
 *     - module: ./plugins/tenant.ts
 *       options: { header: x-tenant, pools: { acme: acme-pool } }
 *
 * (In your own project, import from 'switchyard-lb' instead of '../../src/index.js'.)
 */
import { definePlugin, type Plugin } from '../../src/index.js'

export interface TenantOptions {
  /** The request header that names the tenant. Default: x-tenant. */
  readonly header?: string
  /** Tenant → the pool that serves it. */
  readonly pools: Readonly<Record<string, string>>
}

interface TenantState {
  tenant?: string
}

export default function tenantRouting(options: TenantOptions): Plugin<TenantState> {
  const header = options.header ?? 'x-tenant'
  const pools = new Map(Object.entries(options.pools))
  return definePlugin<TenantState>({
    name: 'tenant-routing',
    onRoute(ctx) {
      const tenant = ctx.request.header(header)
      if (tenant === undefined) return
      ctx.state.tenant = tenant
      const pool = pools.get(tenant)
      if (pool !== undefined) ctx.usePool(pool)
      // The tenant travels upstream in a header of our own, whatever the client called it.
      ctx.upstream.setHeader('x-tenant-id', tenant)
    },
    onResponse(ctx, response) {
      if (ctx.state.tenant !== undefined) response.setHeader('x-served-for', ctx.state.tenant)
    },
  })
}
