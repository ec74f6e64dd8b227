/** Starts an in-process load balancer for a test and gives its base URL. */
import type { ConfigInput } from '../../src/index.js'
import { createLoadBalancer, type LoadBalancer } from '../../src/index.js'

export interface RunningLb {
  readonly lb: LoadBalancer
  /** Base URL of the first listener, e.g. http://127.0.0.1:40123 */
  readonly url: string
  readonly port: number
  close(): Promise<void>
}

/** One listener named `main` on an ephemeral port with a catch-all route to `pool`. */
export function simpleConfig(
  servers: ConfigInput['pools'][number]['servers'],
  extra: Partial<ConfigInput> = {},
): ConfigInput {
  return {
    listeners: [{ name: 'main', listen: '127.0.0.1:0', routes: [{ pool: 'pool' }] }],
    pools: [{ name: 'pool', servers }],
    ...extra,
  }
}

export async function startLb(config: ConfigInput): Promise<RunningLb> {
  const lb = createLoadBalancer(config)
  await lb.start()
  const first = Object.values(lb.addresses())[0]
  if (!first) throw new Error('no listener')
  return {
    lb,
    port: first.port,
    url: `http://127.0.0.1:${first.port}`,
    close: () => lb.close({ gracePeriodMs: 1000 }),
  }
}
