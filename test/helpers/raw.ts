/** Raw-socket HTTP for tests that must send exactly what a broken or hostile client sends. */
import { connect } from 'node:net'

/** Writes `text`, then collects everything until the server closes or `waitMs` passes. */
export function rawExchange(
  port: number,
  text: string | Buffer,
  waitMs = 2000,
): Promise<{ data: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let data = ''
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ data, closed: false })
    }, waitMs)
    socket.setEncoding('latin1')
    socket.on('data', (d: string) => {
      data += d
    })
    socket.on('error', reject)
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ data, closed: true })
    })
    socket.write(text)
  })
}
