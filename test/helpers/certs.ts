/** Certificates made at test time by openssl (self-signed, EC P-256, valid two days), in a temporary directory. */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export function certDir(label: string): {
  makeCert(file: string, names: string[]): { cert: string; key: string }
  remove(): void
} {
  const dir = mkdtempSync(join(tmpdir(), `switchyard-${label}-`))
  return {
    /** A certificate for `names` (the first is its CN, all are DNS subjectAltNames); its cert and key paths. */
    makeCert(file, names) {
      const cert = join(dir, `${file}.pem`)
      const key = join(dir, `${file}-key.pem`)
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:prime256v1',
          '-nodes',
          '-days',
          '2',
          '-keyout',
          key,
          '-out',
          cert,
          '-subj',
          `/CN=${names[0]}`,
          '-addext',
          `subjectAltName=${names.map((n) => `DNS:${n}`).join(',')}`,
        ],
        { stdio: 'ignore' },
      )
      return { cert, key }
    },
    remove() {
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
