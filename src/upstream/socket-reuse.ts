/**
 * Which upstream socket a request went out on, and whether that socket had carried a request before:
 * what tells a lost keep-alive race (the server closed an idle connection just as a request was
 * written to it) from a server that failed a request it read.
 *
 * undici does not hand its socket to a dispatch handler. It calls the handler's `onConnect()` and then,
 * synchronously in the same call, publishes the socket on the `undici:client:sendHeaders` diagnostics
 * channel before it writes the request. A handler that calls `expectSocket()` from `onConnect()` gets
 * that socket. If the order ever changed, the socket would simply stay unknown, and no request would
 * be taken for a race loser.
 */
import { subscribe } from 'node:diagnostics_channel'
import type { Socket } from 'node:net'

export interface SocketObserver {
  /** `uses`: requests the socket carried before this one (0: a fresh connection). */
  onSocket(socket: Socket, uses: number): void
}

/** Requests written to each upstream socket so far. */
const uses = new WeakMap<Socket, number>()
let waiting: SocketObserver | undefined
let subscribed = false

function onSendHeaders(message: unknown): void {
  const observer = waiting
  if (observer === undefined) return
  waiting = undefined
  const socket = (message as { socket?: Socket }).socket
  if (socket === undefined) return
  const count = uses.get(socket) ?? 0
  uses.set(socket, count + 1)
  observer.onSocket(socket, count)
}

/** Call from a dispatch handler's `onConnect()`: `observer` learns the socket the request is written to. */
export function expectSocket(observer: SocketObserver): void {
  if (!subscribed) {
    subscribed = true
    subscribe('undici:client:sendHeaders', onSendHeaders)
  }
  waiting = observer
}
