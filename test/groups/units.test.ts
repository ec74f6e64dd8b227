/** Every unit test under src/, in one process (see share.ts). */
import { importUnits } from './share.js'

await importUnits()
