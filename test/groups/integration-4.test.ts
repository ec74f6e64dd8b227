/** Integration tests, group 4 of share.ts's GROUPS (see share.ts). */
import { importShare } from './share.js'

await importShare(3)
