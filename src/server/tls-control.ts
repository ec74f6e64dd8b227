/**
 * The control plane of certificates, in the one process that owns the config (the load balancer, or
 * the supervisor when there are workers): automatic certificates (acme/) and certificate files
 * watched on disk (listeners/tls-watch.ts). Either asks its owner to reload the running config, which
 * reads the files again and swaps the listeners' certificates for new handshakes; open connections keep
 * theirs. A change that cannot be used (a half-written file, a key that does not match) is refused by
 * that reload and logged, and the certificates that serve stay.
 */
import { AcmeManager } from '../acme/index.js'
import type { RuntimeConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import { CertificateWatcher, tlsFilesOf } from '../listeners/tls-watch.js'

export class TlsControl {
  readonly #acme: AcmeManager
  readonly #watcher: CertificateWatcher
  readonly #logger: Logger
  readonly #reload: () => Promise<void>

  /** `reload`: reloads the running config (its TLS files are read again). */
  constructor(logger: Logger, reload: () => Promise<void>) {
    this.#logger = logger
    this.#reload = reload
    this.#acme = new AcmeManager({
      logger,
      onIssued: (listener) => this.#apply(`ACME issued the certificate of ${listener}`),
    })
    this.#watcher = new CertificateWatcher((files) => this.#apply(`certificate files changed: ${files.join(', ')}`))
  }

  /** Follows `config`: its ACME certificates, and its TLS files. */
  update(config: RuntimeConfig): void {
    this.#acme.update(config)
    this.#watcher.update(tlsFilesOf(config))
  }

  /** Orders or renews whatever is due now (tests). */
  checkAcmeNow(): Promise<void> {
    return this.#acme.checkNow()
  }

  stop(): void {
    this.#watcher.close()
    this.#acme.stop()
  }

  #apply(reason: string): void {
    this.#reload().then(
      () => this.#logger.info({ reason }, `certificates reloaded (${reason})`),
      (err: unknown) =>
        this.#logger.warn(
          { reason, err: err instanceof Error ? err.message : String(err) },
          `certificates not reloaded (${reason}): ${err instanceof Error ? err.message : String(err)}; the running ones stay`,
        ),
    )
  }
}
