/** What every health check shares: its settings common to all types, and the probe signature. */

import { connect, type Socket } from 'node:net'
import { type ConnectionOptions, connect as tlsConnect } from 'node:tls'
import { z } from 'zod'
import { durationSchema, durationToMs } from '../core/address.js'
import { connectWithPrefix } from '../upstream/send-proxy.js'
import type { UpstreamTls } from '../upstream/tls.js'

/** A check duration: at least 10 ms, so that a zero never makes a busy loop. */
const checkDuration = durationSchema.refine((v) => durationToMs(v) >= 10, {
  error: 'expected a duration of at least 10ms',
})

export const commonCheckFields = {
  interval: checkDuration.default('5s').describe('Time between two checks of a server that is up.'),
  unhealthyInterval: checkDuration
    .optional()
    .describe('Time between two checks of a server that is down. Absent: `interval`.'),
  timeout: checkDuration.default('2s').describe('A check that takes longer fails.'),
  rise: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(2)
    .describe('Passed checks in a row that bring a server that is down back up.'),
  fall: z
    .number()
    .int()
    .min(1)
    .max(100)
    .default(3)
    .describe('Failed checks in a row that take a server that is up down.'),
  jitter: z
    .number()
    .min(0)
    .max(0.5)
    .default(0.1)
    .describe('Each interval is varied at random by up to this fraction, so that checks of many servers spread out.'),
  port: z
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe("Port to check, when it differs from the server's traffic port."),
}

/** Where a check goes. */
export interface CheckTarget {
  readonly host: string
  readonly port: number
  /** TLS to an `https://` server, with its pool's settings (HTTP checks speak TLS then); undefined: plain. */
  readonly tls?: UpstreamTls | undefined
  /** Bytes the connection opens with, before TLS (the pool's PROXY protocol header, LOCAL); undefined: none. */
  readonly prefix?: Buffer | undefined
}

/** The connection a check makes to `target`: TCP, with its prefix first and TLS over it when asked. */
export function checkSocket(target: CheckTarget, tls?: ConnectionOptions): Socket {
  if (target.prefix !== undefined)
    return connectWithPrefix({ host: target.host, port: target.port }, target.prefix, tls)
  return tls === undefined ? connect({ host: target.host, port: target.port }) : tlsConnect(tls)
}

/**
 * One probe of one server: resolves undefined when the server passed, or a short reason when it failed
 * (`ECONNREFUSED`, `status 503`, `timeout after 2000 ms`). Never rejects.
 */
export type Probe = (target: CheckTarget, timeoutMs: number) => Promise<string | undefined>

/** Largest response (HTTP body or TCP bytes) a check reads to find what it expects. */
export const MAX_CHECK_READ_BYTES = 64 * 1024

/**
 * Runs one probe that ends exactly once: when `start`'s code calls `done` (undefined: passed; else the
 * reason it failed), or after `timeoutMs`. `start` returns what releases the probe's socket, called
 * when it ends.
 */
export function probeOnce(
  timeoutMs: number,
  start: (done: (reason: string | undefined) => void) => () => void,
): Promise<string | undefined> {
  return new Promise((resolve) => {
    let settled = false
    let release: (() => void) | undefined
    const done = (reason: string | undefined) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      release?.()
      resolve(reason)
    }
    const timer = setTimeout(() => done(`timeout after ${timeoutMs} ms`), timeoutMs)
    release = start(done)
    if (settled) release()
  })
}
