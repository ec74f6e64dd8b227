// The one certificate and key every TLS-terminating candidate serves in a run: the repository's
// self-signed test pair (CN=localhost, SAN 127.0.0.1, RSA 2048), copied into each candidate's own
// directory so that a run never depends on files changing under it. wrk does not verify certificates.
import { readFileSync } from 'node:fs'
import path from 'node:path'

/** PEM files for TLS termination, as absolute paths. */
export interface TlsFiles {
  readonly certFile: string
  readonly keyFile: string
}

/** Where the pair lives, relative to the repository root. */
const PAIR_DIR = path.join('test', 'fixtures', 'tls')

/** File names under a candidate's `workDir`. The combined file (certificate, then key) is HAProxy's `crt`. */
export const TLS_FILE_NAMES = { cert: 'cert.pem', key: 'key.pem', combined: 'cert-and-key.pem' } as const

/** The pair's PEM text, by `TLS_FILE_NAMES` file name, ready for a `Command`'s `files`. Throws if unreadable. */
export function tlsFileContents(rootDir: string): Record<string, string> {
  const read = (name: string): string => {
    const text = readFileSync(path.join(rootDir, PAIR_DIR, name), 'utf8')
    return text.endsWith('\n') ? text : `${text}\n`
  }
  const cert = read('cert.pem')
  const key = read('key.pem')
  return { [TLS_FILE_NAMES.cert]: cert, [TLS_FILE_NAMES.key]: key, [TLS_FILE_NAMES.combined]: `${cert}${key}` }
}

/** Absolute paths of the certificate and key once written under `workDir`. */
export function tlsFilesIn(workDir: string): TlsFiles {
  return { certFile: path.join(workDir, TLS_FILE_NAMES.cert), keyFile: path.join(workDir, TLS_FILE_NAMES.key) }
}
