/** WebSocket test parts: an echo server on 127.0.0.1 (`ws`), a client that waits for its greeting, counts. */
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import type { LoadBalancer } from '../../src/index.js'

export interface WsBackend {
  readonly name: string
  readonly url: string
  readonly http: Server
  readonly wss: WebSocketServer
  /** Upgrade requests as the server saw them. */
  readonly seen: IncomingMessage[]
  close(): Promise<void>
}

/**
 * A WebSocket echo server: it greets each connection with its name, echoes every message, and
 * answers `close-me` by closing (1000) and `terminate-me` by closing its socket with no close frame. Plain HTTP requests get 200 with its name. `handleProtocols`
 * picks `chat.v1` when offered.
 */
export async function wsBackend(name: string): Promise<WsBackend> {
  const seen: IncomingMessage[] = []
  const http = createServer((_req, res) => res.end(name))
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: true,
    maxPayload: 64 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has('chat.v1') ? 'chat.v1' : false),
  })
  http.on('upgrade', (req, socket, head) => {
    seen.push(req)
    if (req.url === '/forbidden') {
      socket.end('HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nno way')
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(`hello from ${name}`)
      ws.on('message', (data, isBinary) => {
        if (!isBinary && data.toString() === 'close-me') return ws.close(1000, 'asked')
        if (!isBinary && data.toString() === 'terminate-me') return ws.terminate()
        ws.send(data, { binary: isBinary })
      })
    })
  })
  http.listen(0, '127.0.0.1')
  await once(http, 'listening')
  const { port } = http.address() as AddressInfo
  return {
    name,
    url: `http://127.0.0.1:${port}`,
    http,
    wss,
    seen,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

/** Opens a WebSocket and waits for its greeting; rejects if it closes or fails first. */
export async function open(url: string, protocols?: string[]): Promise<{ ws: WebSocket; greeting: string }> {
  const ws = new WebSocket(url, protocols, { perMessageDeflate: true, maxPayload: 64 * 1024 * 1024 })
  const greeting = await new Promise<string>((resolve, reject) => {
    ws.once('message', (data: Buffer) => resolve(data.toString()))
    ws.once('close', (code) => reject(new Error(`closed (${code}) before its greeting`)))
    ws.once('error', reject)
  })
  return { ws, greeting }
}

export function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve({ code: -1, reason: '' })
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
}

export function openFds(): number {
  return readdirSync('/proc/self/fd').length
}

export async function metric(lb: LoadBalancer, name: string, labels: string): Promise<number> {
  const { body } = await lb.metricsText()
  const line = body.split('\n').find((l) => l.startsWith(`${name}{${labels}}`))
  return line === undefined ? 0 : Number(line.slice(line.lastIndexOf(' ') + 1))
}
