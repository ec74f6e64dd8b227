/** Integration tests, group 1 of share.ts's GROUPS (see share.ts). */
import { importShare } from './share.js'

await importShare(0)
