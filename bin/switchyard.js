#!/usr/bin/env node
// Entry point of the `switchyard` command; the code lives in dist/ (built by `npm run build`).
import { main } from '../dist/cli.js'

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`switchyard: ${err?.stack ?? err}\n`)
    process.exit(1)
  },
)
