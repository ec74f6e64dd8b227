/** Integration tests, group 3 of share.ts's GROUPS (see share.ts). */
import { importShare } from './share.js'

await importShare(2)
