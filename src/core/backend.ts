/**
 * A backend is one upstream server of a pool, as the data plane sees it: immutable, built by the
 * control plane from the config, and compared by `id` across reloads.
 */
export interface Backend {
  /** Unique within its pool: the configured `name`, or `host:port`. */
  readonly id: string
  /** Name of the pool the backend belongs to. */
  readonly pool: string
  readonly host: string
  readonly port: number
  /** `http://host:port` or `https://host:port`: the key of the upstream connection pool. */
  readonly origin: string
  /** The server speaks TLS (an `https://` URL): see the pool's `tls`. */
  readonly tls: boolean
  /** Relative share of traffic; 0 means "no new traffic". */
  readonly weight: number
  /** Used only while no primary server of the pool can take requests. */
  readonly backup: boolean
  /** In drain: no new requests or sessions; requests of sessions already bound to it still go there. */
  readonly draining: boolean
  /**
   * Out of rotation now (set at runtime through the admin API): no new requests, and sessions bound to
   * it move to another server. Requests already in flight finish.
   */
  readonly disabled: boolean
}
