// Entry point of a worker process, forked by the supervisor (see supervisor.ts).
import { runWorker } from './worker.js'

runWorker()
