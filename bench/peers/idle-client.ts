// Idle keep-alive clients for `npm run bench:idle`: opens COUNT connections to 127.0.0.1:PORT, sends
// one GET / on each, reads the whole response, and keeps every connection open and silent until it
// gets SIGTERM, or its lifetime of LIFETIME_S seconds is over (so that it never outlives a bench
// that was killed hard). Connections open in waves of 100, so that neither the listener's
// accept queue nor the proxy's upstream pool grows much.
// Prints one line when done: `ready OPEN FAILED` (and, on stderr, why the failed ones failed), then `closed N` for each connection the server
// closes afterwards (batched, at most one line per 100 ms).
// Needs an open-file limit above COUNT: start it through `ulimit -n`.
// Usage: node --import tsx bench/peers/idle-client.ts PORT COUNT LIFETIME_S
import net from 'node:net'

const WAVE = 100
const REQUEST = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
/** A connection that has not had its response by then counts as failed. */
const RESPONSE_TIMEOUT_MS = 10_000

const [port, count, lifetimeS] = process.argv.slice(2).map(Number)
if (
  port === undefined ||
  count === undefined ||
  lifetimeS === undefined ||
  ![port, count, lifetimeS].every((n) => n > 0)
) {
  process.stderr.write('usage: idle-client.ts PORT COUNT LIFETIME_S\n')
  process.exit(2)
}

const target = { host: '127.0.0.1', port }
const sockets: net.Socket[] = []
let closedLater = 0
let reportPending = false

/** Failed connections by cause: an error code, `timeout`, `closed` or `bad response`. */
const failures = new Map<string, number>()

/** Resolves true once the socket has its whole response, false if it fails or times out first. */
function openOne(): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(target)
    let head = ''
    let done = false
    const finish = (ok: boolean, cause = 'bad response'): void => {
      if (done) return
      done = true
      if (!ok) failures.set(cause, (failures.get(cause) ?? 0) + 1)
      clearTimeout(timer)
      if (ok) {
        sockets.push(socket)
        socket.on('close', onLateClose)
      } else {
        socket.destroy()
      }
      resolve(ok)
    }
    const timer = setTimeout(() => finish(false, 'timeout'), RESPONSE_TIMEOUT_MS)
    socket.setEncoding('latin1')
    socket.on('connect', () => socket.write(REQUEST))
    socket.on('data', (chunk: string) => {
      if (done) return
      head += chunk
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) return
      const length = Number(/^content-length:\s*(\d+)/im.exec(head.slice(0, end))?.[1] ?? Number.NaN)
      if (!Number.isInteger(length)) finish(false)
      else if (head.length - end - 4 >= length) finish(head.startsWith('HTTP/1.1 200'))
    })
    socket.on('error', (err: NodeJS.ErrnoException) => finish(false, err.code ?? err.message))
    socket.on('close', () => finish(false, 'closed'))
  })
}

function onLateClose(): void {
  closedLater++
  if (reportPending) return
  reportPending = true
  setTimeout(() => {
    reportPending = false
    process.stdout.write(`closed ${closedLater}\n`)
  }, 100)
}

function shutdown(): void {
  for (const s of sockets) {
    s.off('close', onLateClose)
    s.destroy()
  }
  process.exit(0)
}

process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
setTimeout(shutdown, lifetimeS * 1_000).unref()

let failed = 0
for (let opened = 0; opened < count; opened += WAVE) {
  const wave = Math.min(WAVE, count - opened)
  const results = await Promise.all(Array.from({ length: wave }, openOne))
  failed += results.filter((ok) => !ok).length
}
if (failed > 0) process.stderr.write(`failures: ${[...failures].map(([cause, n]) => `${cause} ${n}`).join(', ')}\n`)
process.stdout.write(`ready ${sockets.length} ${failed}\n`)
