/** Debian's Chromium, as the browser tests and the screenshot script launch it (through playwright-core). */

export const CHROMIUM = '/usr/bin/chromium'

/** Headless, with nothing that reaches out of the machine (updates, sync, field trials, QUIC). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
