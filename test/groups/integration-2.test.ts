/** Integration tests, group 2 of share.ts's GROUPS (see share.ts). */
import { importShare } from './share.js'

await importShare(1)
