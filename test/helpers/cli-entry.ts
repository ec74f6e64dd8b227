// The CLI entry for tests: the same `main` as bin/switchyard.js, run from source.
import { main } from '../../src/cli.js'

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`switchyard: ${(err as Error)?.stack ?? String(err)}\n`)
    process.exit(1)
  },
)
