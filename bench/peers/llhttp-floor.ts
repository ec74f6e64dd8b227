// The floor of Switchyard's own HTTP/1.1 engine: a featureless proxy on the same parser module
// (src/http1/parser.ts, llhttp in strict mode) and plain `net` sockets, with nothing else. It shows
// what the parser and Node's sockets cost by themselves, so that the bench can say how much of
// Switchyard's cost per request is its features. No routing, metrics, logs, timeouts, retries, error
// mapping or request bodies (the bench sends GETs only); one response at a time per client connection;
// upstream connections reused LIFO per backend, round-robin per request; the response head rebuilt
// from the parsed fields without Connection and Keep-Alive, and written with its body in one corked write.
// Usage: node --import tsx bench/peers/llhttp-floor.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]
import net from 'node:net'
import { BODY_NONE, BODY_PARSE, Http1Parser, type ParsedHead } from '../../src/http1/parser.js'

const [listenPort, ...backendPorts] = process.argv.slice(2).map(Number)
if (listenPort === undefined || backendPorts.length === 0 || [listenPort, ...backendPorts].some((p) => !(p > 0))) {
  process.stderr.write('usage: llhttp-floor.ts LISTEN_PORT BACKEND_PORT [BACKEND_PORT ...]\n')
  process.exit(2)
}

/** A client connection, as an upstream connection sees the request it carries. */
interface Client {
  readonly socket: net.Socket
  /** The response was written: the next request of this client may go. */
  done(): void
}

/** One keep-alive connection to a backend. */
class Upstream {
  readonly #socket: net.Socket
  readonly #parser: Http1Parser
  readonly #idle: Upstream[]
  #client: Client | undefined
  #head: ParsedHead | undefined
  #body: Buffer[] = []

  constructor(port: number, idle: Upstream[]) {
    this.#idle = idle
    this.#socket = net.connect(port, '127.0.0.1')
    this.#socket.setNoDelay(true)
    this.#parser = new Http1Parser('response', {
      onHead: (head) => {
        this.#head = head
        return BODY_PARSE
      },
      onBody: (chunk) => {
        this.#body.push(chunk)
      },
      onComplete: () => this.#complete(),
    })
    this.#socket.on('data', (data: Buffer) => {
      if (typeof this.#parser.execute(data) !== 'number') this.#socket.destroy()
    })
    this.#socket.on('error', () => {})
    this.#socket.on('close', () => {
      const at = this.#idle.indexOf(this)
      if (at >= 0) this.#idle.splice(at, 1)
      this.#client?.socket.destroy()
    })
  }

  send(client: Client, text: string): void {
    this.#client = client
    this.#socket.write(text, 'latin1')
  }

  #complete(): void {
    const head = this.#head
    const client = this.#client
    if (head === undefined || client === undefined) return
    let text = `HTTP/1.1 ${head.status} ${head.statusText}\r\n`
    const raw = head.rawHeaders
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i] as string
      const lower = name.length === 10 || name.length === 12 ? name.toLowerCase() : ''
      if (lower === 'connection' || lower === 'keep-alive') continue
      text += `${name}: ${raw[i + 1]}\r\n`
    }
    const socket = client.socket
    socket.cork()
    socket.write(`${text}\r\n`, 'latin1')
    for (const chunk of this.#body) socket.write(chunk)
    socket.uncork()
    this.#body = []
    this.#head = undefined
    this.#client = undefined
    this.#idle.push(this)
    client.done()
  }
}

const idle: Upstream[][] = backendPorts.map(() => [])
let next = 0

net
  .createServer((socket) => {
    socket.setNoDelay(true)
    const queue: ParsedHead[] = []
    let busy = false
    const client: Client = {
      socket,
      done() {
        busy = false
        pump()
      },
    }
    const pump = (): void => {
      if (busy) return
      const head = queue.shift()
      if (head === undefined) return
      busy = true
      const i = next
      next = (next + 1) % backendPorts.length
      const pool = idle[i] as Upstream[]
      const upstream = pool.pop() ?? new Upstream(backendPorts[i] as number, pool)
      let text = `${head.method} ${head.url} HTTP/1.1\r\n`
      const raw = head.rawHeaders
      for (let k = 0; k < raw.length; k += 2) text += `${raw[k]}: ${raw[k + 1]}\r\n`
      upstream.send(client, `${text}\r\n`)
    }
    const parser = new Http1Parser('request', {
      onHead(head) {
        queue.push(head)
        return BODY_NONE
      },
      onBody() {},
      onComplete() {},
    })
    socket.on('data', (data: Buffer) => {
      if (typeof parser.execute(data) !== 'number') socket.destroy()
      else pump()
    })
    socket.on('error', () => {})
    socket.on('close', () => parser.close())
  })
  .listen(listenPort, '127.0.0.1')
