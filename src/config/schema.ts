/**
 * The config schema: what a user may write in switchyard.yaml. It describes the *input* (short forms,
 * human durations) so that it can be exported as JSON Schema for editors; `normalize.ts` turns a parsed
 * input into the frozen runtime config. Cross-reference checks (names, pools) run in `superRefine` with
 * paths, so that every problem is reported at its line and column.
 */
import { accessSync, constants, statSync } from 'node:fs'
import { isIP } from 'node:net'
import { z } from 'zod'
import {
  ALGORITHMS,
  BALANCERS,
  type BalancerSchema,
  type BalancerTable,
  balanceObjectSchema,
} from '../balancer/index.js'
import { durationSchema, parseListen, rateSchema, sizeSchema } from '../core/address.js'
import { LOG_LEVELS } from '../core/logger.js'
import { schema as accessSchema } from '../filters/access.js'
import { ANSWERING_RULES, checkRedirect, checkRewrite, POOL_RULES, ruleShape, rulesAt } from '../filters/registry.js'
import { CHECK_TYPES, healthCheckSchema } from '../health/index.js'
import { ACCESS_FORMATS } from '../l7/access-log.js'

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/

const name = z
  .string()
  .regex(NAME_RE, { error: 'expected a name of letters, digits, "_", "." or "-" (at most 64)' })
  .describe('A unique name: letters, digits, `_`, `.`, `-`.')

/** A name as the config takes it (pools, servers, listeners): the admin API checks names with it too. */
export const nameSchema = name

const listen = z
  .string()
  .refine((s) => parseListen(s) !== undefined, { error: 'expected an address host:port such as 127.0.0.1:8080' })
  .describe('Address to bind, `host:port`; `[::1]:8080` for IPv6, `:8080` for all interfaces.')

const duration = durationSchema

const serverObject = z.strictObject({
  url: z
    .string()
    .describe(
      'Upstream server URL: `http://host:port`, `https://host:port` (TLS to the server, see the pool `tls`), or `tcp://host:port` in a pool that only `tcp` listeners use.',
    ),
  weight: z
    .number()
    .int()
    .min(0)
    .max(1000)
    .default(1)
    .describe('Relative share of traffic, 0 to 1000. 0 sends no new requests.'),
  name: name.optional().describe('Server id within the pool, used in logs and metrics. Default: `host:port`.'),
  backup: z
    .boolean()
    .default(false)
    .describe('A backup server: used only while no primary (non-backup) server of the pool can take requests.'),
  drain: z
    .boolean()
    .default(false)
    .describe(
      'Drain the server: it gets no new requests or sticky sessions, while requests of sessions already bound to it still reach it. Remove it once they are done.',
    ),
  maxConnections: z
    .number()
    .int()
    .min(1)
    .optional()
    .describe("This server's `connections.maxPerServer`: most concurrent connections (and so requests) to it."),
  maxPending: z
    .number()
    .int()
    .min(0)
    .optional()
    .describe("This server's `connections.maxPending`: most requests waiting for one of its connections."),
})

const server = z
  .union([z.string(), serverObject])
  .describe(
    'A server: a URL string (`http://127.0.0.1:3001`), or an object with `url`, `weight`, `name`, `backup`, `drain`, `maxConnections` and `maxPending`.',
  )

const balance = z
  .union([z.enum(ALGORITHMS), balanceObjectSchema])
  .default('round-robin')
  .describe(`Balancing algorithm: a name (${ALGORITHMS.join(', ')}) or an object with \`algorithm\` and its options.`)

/** `balance:` over a table with more algorithms than the built-ins (those plugins add). */
function balanceWith(table: BalancerTable) {
  const names = Object.keys(table) as [string, ...string[]]
  const schemas = Object.values(table).map((e) => e.schema) as unknown as [BalancerSchema, ...BalancerSchema[]]
  return z
    .union([z.enum(names), z.discriminatedUnion('algorithm', schemas)])
    .default('round-robin')
    .describe(balance.description ?? '')
}

const hostPattern = z
  .string()
  .regex(/^(\*\.)?[A-Za-z0-9_.-]+$|^\*$/, { error: 'expected a host name such as api.example.com or *.example.com' })

const match = z
  .strictObject({
    host: z
      .union([hostPattern, z.array(hostPattern).min(1)])
      .optional()
      .describe('Host name or list of them, compared without the port. `*.example.com` matches every subdomain.'),
    pathPrefix: z
      .string()
      .startsWith('/', { error: 'expected a path starting with "/"' })
      .optional()
      .describe('The path (without query) starts with this string.'),
    path: z
      .string()
      .startsWith('/', { error: 'expected a path starting with "/"' })
      .optional()
      .describe('The path (without query) equals this string.'),
    method: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe('HTTP method or list of methods, e.g. `GET` or `[GET, HEAD]`.'),
    headers: z
      .record(z.string(), z.string())
      .optional()
      .describe('Header name to exact value; every pair must match. The value `"*"` only requires presence.'),
  })
  .describe('Conditions that must all hold. Absent: the route matches every request.')

/** Default `limits` of an HTTP listener (docs/security.md explains each). */
export const DEFAULT_LIMITS = {
  maxConnections: 10_000,
  maxBodySize: '10mb',
  maxHeaderBytes: '32kb',
  maxHeaderCount: 100,
  maxUrlLength: '8kb',
} as const

const maxBodySize = sizeSchema.describe(
  'Largest request body, counted as it streams (never buffered for it): a Content-Length over it is answered 413 before any server is asked; a chunked or HTTP/2 body that crosses it is cut off (the server sees an aborted request) and answered 413. 0: no limit.',
)

const routeLimits = z
  .strictObject({ maxBodySize: maxBodySize.optional() })
  .describe("Limits of this route's requests, in place of the listener's.")

/** Connection limits: on every listener, HTTP or TCP. */
const connectionLimitShape = {
  connectionsPerIp: z
    .number()
    .int()
    .min(0)
    .default(0)
    .describe(
      'Most connections one client address may have open at once on this listener (per worker); the one over it is closed as soon as it is accepted. 0: no limit.',
    ),
  connectionRatePerIp: rateSchema
    .optional()
    .describe(
      'Most new connections per client address, such as `100/s` (per worker): that many may open at once, then that many per period (GCRA); those over it are closed as soon as they are accepted. Absent: no limit.',
    ),
  maxConnections: z
    .number()
    .int()
    .min(0)
    .default(DEFAULT_LIMITS.maxConnections)
    .describe(
      'Most connections open at once on this listener (per worker); those over it are closed as soon as they are accepted. 0: no limit.',
    ),
}

const httpLimits = z
  .strictObject({
    ...connectionLimitShape,
    maxBodySize: maxBodySize.default(DEFAULT_LIMITS.maxBodySize),
    maxHeaderBytes: sizeSchema
      .default(DEFAULT_LIMITS.maxHeaderBytes)
      .describe(
        'Largest request head (request line and headers; HTTP/2: the header list), and largest trailer section: 431 beyond.',
      ),
    maxHeaderCount: z
      .number()
      .int()
      .min(1)
      .default(DEFAULT_LIMITS.maxHeaderCount)
      .describe('Most header fields in a request: 431 beyond.'),
    maxUrlLength: sizeSchema
      .default(DEFAULT_LIMITS.maxUrlLength)
      .describe('Longest request target (path and query): 414 beyond.'),
  })
  .prefault({})

const route = z.strictObject({
  name: name
    .optional()
    .describe('A name for the route, unique in its listener: shown in logs and used by `switchyard test`.'),
  match: match.optional(),
  pool: name
    .optional()
    .describe('Name of the pool that serves matching requests. Not needed with `pools`, `redirect` or `respond`.'),
  ...ruleShape('route'),
  limits: routeLimits.optional(),
})

const listenerTimeouts = z
  .strictObject({
    requestHeaders: duration.default('10s').describe('Time a client has to send the complete request head.'),
    idle: duration.default('60s').describe('How long an idle keep-alive client connection is kept open.'),
    total: duration
      .default(0)
      .describe(
        'Limit on a whole request, from its first byte to the end of the response. 0: none. A WebSocket or other upgraded connection is not limited by it once the server switched protocols (see `tunnelIdle`, `tunnelMaxAge`).',
      ),
    tunnelIdle: duration
      .default('1h')
      .describe(
        'How long a WebSocket (or other upgraded) connection may carry no byte in either direction before it is closed. 0: no limit.',
      ),
    tunnelMaxAge: duration
      .default(0)
      .describe(
        'Longest life of a WebSocket (or other upgraded) connection, from the switch of protocols; then it is closed (a WebSocket gets a 1001 close frame). 0: no limit.',
      ),
  })
  .prefault({})

const forwarded = z
  .strictObject({
    xForwarded: z
      .boolean()
      .default(true)
      .describe('Add `X-Forwarded-For`, `X-Forwarded-Proto` and `X-Forwarded-Host`.'),
    forwarded: z.boolean().default(true).describe('Add the RFC 7239 `Forwarded` header.'),
    trustedProxies: z
      .array(z.string())
      .default([])
      .describe(
        'Addresses or CIDR ranges of proxies in front of Switchyard whose forwarding headers are kept and appended to. From any other client they are replaced.',
      ),
  })
  .prefault({})

const requestId = z
  .strictObject({
    header: z
      .string()
      .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected a header name (a token such as x-request-id)' })
      .default('x-request-id')
      .describe('Header that carries the request id.'),
    trustIncoming: z
      .boolean()
      .default(true)
      .describe('Keep a well-formed id sent by the client (at most 128 visible characters) instead of a new one.'),
    echo: z.boolean().default(true).describe('Return the id to the client in the response.'),
  })
  .prefault({})

export const TLS_VERSIONS = ['TLSv1.2', 'TLSv1.3'] as const

const certificatePair = z.strictObject({
  cert: z
    .string()
    .min(1)
    .describe('Path of the PEM certificate chain (leaf first), relative to the working directory.'),
  key: z.string().min(1).describe('Path of the PEM private key, relative to the working directory.'),
})

/** Let's Encrypt's production directory: what `tls.acme` orders from unless told otherwise. */
export const DEFAULT_ACME_DIRECTORY = 'https://acme-v02.api.letsencrypt.org/directory'

const acme = z
  .strictObject({
    domains: z
      .array(
        z.string().regex(/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/i, {
          error:
            'expected a domain name such as example.com (no wildcards: only dns-01 proves them, which is not offered)',
        }),
      )
      .min(1)
      .describe('The names the certificate is for; the first is its subject. Each must resolve to this load balancer.'),
    email: z
      .string()
      .regex(/^[^@\s]+@[^@\s]+$/, { error: 'expected an email address' })
      .optional()
      .describe('Contact address of the ACME account (expiry warnings from the CA).'),
    directory: z
      .url({ protocol: /^https?$/ })
      .default(DEFAULT_ACME_DIRECTORY)
      .describe(
        "ACME directory URL. Default: Let's Encrypt's production one; its staging one is https://acme-staging-v02.api.letsencrypt.org/directory.",
      ),
    directoryCa: z
      .string()
      .min(1)
      .optional()
      .describe(
        "PEM file that the ACME server's own HTTPS certificate is verified against, besides the system CAs (a private ACME server).",
      ),
    storage: z
      .string()
      .min(1)
      .default('.switchyard/acme')
      .describe(
        'Directory where the account key, certificates and keys are kept (made if absent, private to this user). Relative to the working directory.',
      ),
    renewBefore: durationSchema
      .default('720h')
      .describe('Renew a certificate this long before it expires (default 30 days).'),
    challenge: z
      .enum(['http-01', 'tls-alpn-01'])
      .default('http-01')
      .describe(
        '`http-01`: the CA fetches a token over HTTP on port 80, which the `http` listeners answer. `tls-alpn-01`: the CA connects to this `https` listener on port 443 and checks a certificate Switchyard makes for it (RFC 8737): no port 80 needed, at the cost of reading the start of every TLS handshake on this listener.',
      ),
  })
  .describe(
    "Automatic certificates (ACME, RFC 8555): obtained and renewed for `domains` with the http-01 challenge, which Switchyard answers on its `http` listeners (port 80 must reach one), or tls-alpn-01 on this listener. By using it you accept the CA's terms of service.",
  )

const tls = z.strictObject({
  acme: acme.optional(),
  cert: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Path of the PEM certificate chain (leaf first), relative to the working directory. One certificate: `cert` and `key`; several: `certificates`.',
    ),
  key: z.string().min(1).optional().describe('Path of the PEM private key, relative to the working directory.'),
  certificates: z
    .array(certificatePair)
    .min(1)
    .optional()
    .describe(
      'Several certificates, chosen by the name the client asks for (SNI): each serves the names of its subjectAltName (DNS names, `*.` wildcards for one label), or its common name when it has none. The first one also serves unknown names and clients that send no SNI.',
    ),
  minVersion: z.enum(TLS_VERSIONS).default('TLSv1.2').describe('Oldest TLS version accepted.'),
  ciphers: z
    .string()
    .min(1)
    .optional()
    .describe(
      "TLS 1.2 cipher suites, in OpenSSL's list format (`ECDHE-ECDSA-AES128-GCM-SHA256:...`). Default: Node's. TLS 1.3 suites are always Node's.",
    ),
  clientAuth: z
    .strictObject({
      ca: z.string().min(1).describe('Path of the PEM certificates that client certificates are verified against.'),
      mode: z
        .enum(['required', 'optional'])
        .default('required')
        .describe(
          '`required`: a client without a valid certificate fails the handshake. `optional`: it is served, without the forwarded header.',
        ),
      forwardHeader: z
        .string()
        .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected a header name (a token)' })
        .default('x-client-cert')
        .describe(
          'Request header that carries a verified client certificate to the servers: `Hash=<SHA-256 of the DER, hex>;Subject="<subject>"` (the shape of Envoy\'s XFCC). A client that sends this header itself has it removed.',
        ),
    })
    .optional()
    .describe('Mutual TLS: ask clients for a certificate, verified against `ca`.'),
})

/** TLS to a pool's `https://` servers. */
const upstreamTls = z.strictObject({
  ca: z
    .string()
    .min(1)
    .optional()
    .describe('Path of the PEM certificates that server certificates are verified against, instead of the system CAs.'),
  servername: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Name sent in SNI and checked against the server certificate. Default: the server URL's host (no SNI for an IP address, whose certificate is checked against the address).",
    ),
  cert: z
    .string()
    .min(1)
    .optional()
    .describe(
      'Path of a PEM client certificate chain, presented to servers that ask for one (mutual TLS). Needs `key`.',
    ),
  key: z.string().min(1).optional().describe('Path of the PEM private key of `cert`.'),
  insecureSkipVerify: z
    .boolean()
    .default(false)
    .describe(
      'Accept any server certificate, unverified (a warning is logged at start). For tests and migrations only: it gives up what TLS is for.',
    ),
  minVersion: z.enum(TLS_VERSIONS).default('TLSv1.2').describe('Oldest TLS version offered to servers.'),
})

/** Default SETTINGS_MAX_CONCURRENT_STREAMS: HAProxy's default, and what Envoy recommends at the edge. */
export const DEFAULT_H2_MAX_STREAMS = 100

const http2 = z
  .union([
    z.boolean(),
    z.strictObject({
      maxConcurrentStreams: z
        .number()
        .int()
        .min(1)
        .max(2 ** 31 - 1)
        .default(DEFAULT_H2_MAX_STREAMS)
        .describe('Most requests one client connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).'),
      pingInterval: duration
        .default('5s')
        .describe(
          'How often a connection with open requests, or that opened one since the last PING round, is sent a PING to check that the client is alive.',
        ),
      pingTimeout: duration
        .default('10s')
        .describe('How long a PING may go unanswered before the connection (and its requests) is closed.'),
    }),
  ])
  .default(false)

const protocolText =
  'Protocol spoken to clients: `http` (HTTP/1.1, and HTTP/2 with prior knowledge when `http2` is on), `https` (HTTP/1.1 over TLS, terminated here, and HTTP/2 by ALPN when `http2` is on; needs `tls`), or `tcp` (layer 4: each connection is piped to a server of the pool; one route, with no `match`).'

/** The HTTP/1.1 engines: `native` (our own, llhttp on raw sockets) and `node` (node:http, undici). */
export const ENGINES = ['native', 'node'] as const
export type Engine = (typeof ENGINES)[number]

/**
 * The engine a config gets when it names none: `SWITCHYARD_ENGINE` when it names one (how CI runs the
 * suites on both engines), else the built-in default.
 */
export function defaultEngine(): Engine {
  const env = process.env.SWITCHYARD_ENGINE
  return env === 'native' || env === 'node' ? env : 'native'
}

const engineText =
  'HTTP/1.1 engine: `native` (llhttp on raw sockets, our own framing and connection pools) or `node` (node:http for clients, undici for servers). When the running Node lacks what `native` needs, Switchyard logs one warning and uses `node`.'

/** Requests per HTTP/1.1 client connection by default: nginx's `keepalive_requests`. */
export const DEFAULT_MAX_REQUESTS_PER_CONNECTION = 1000

const proxyProtocol = z
  .boolean()
  .default(false)
  .describe(
    'Every connection starts with a PROXY protocol header (v1 or v2, from a load balancer in front): the client address it carries is used for balancing, limits, forwarding headers and logs. A connection without a valid header within `timeouts.requestHeaders` (10 s on tcp listeners) is closed. On `https` listeners the header comes before the TLS handshake.',
  )

const explain = z
  .strictObject({
    trusted: z
      .array(z.string())
      .default([])
      .describe(
        'Client addresses or CIDR ranges (e.g. `10.0.0.0/8`, `127.0.0.1/32`) whose `x-switchyard-explain: 1` is honoured. The address is the client address as `forwarded.trustedProxies` resolve it. Default: none.',
      ),
    adminToken: z
      .boolean()
      .default(false)
      .describe(
        'Also honour the header from any address when the request carries the admin token in `x-switchyard-token` (compared in constant time). Needs `admin.token` or `admin.tokenFile`. The token header is removed before the request goes upstream, whoever sent it.',
      ),
  })
  .describe(
    'Request explanations (docs/explain.md): a request with `x-switchyard-explain: 1` from a trusted address (or with the admin token) gets an `x-switchyard-explain` response header saying which route, rules, pool and server it took and why, and its access-log line carries the whole account under `explain`. The request header is removed before the request goes upstream, whoever sent it. Absent: off, and the listener does not look at the header (it is forwarded like any other).',
  )

/** An `http` or `https` listener (the default protocol): the one that sees requests. */
export const httpListenerSchema = z.strictObject({
  name,
  listen,
  protocol: z.enum(['http', 'https']).default('http').describe(protocolText),
  engine: z.enum(ENGINES).default(defaultEngine).describe(`${engineText} On a listener: the client side.`),
  tls: tls.optional().describe('Certificate and key for `protocol: https`.'),
  http2: http2.describe(
    'Accept HTTP/2 beside HTTP/1.1 on an `http` or `https` listener: `true`, or an object of HTTP/2 settings. Requests go upstream as HTTP/1.1.',
  ),
  routes: z.array(route).min(1).describe('Routes, tried in order; the first that matches wins.'),
  ...ruleShape('listener'),
  timeouts: listenerTimeouts.describe('Client-side timeouts.'),
  limits: httpLimits.describe('Connection and request size limits; on by default (docs/security.md).'),
  paths: z
    .strictObject({
      normalize: z
        .boolean()
        .default(true)
        .describe('Normalize each path once, before routing; false: route and forward it exactly as sent.'),
      mergeSlashes: z.boolean().default(true).describe('Runs of `/` become one.'),
      encodedSlash: z
        .enum(['reject', 'keep'])
        .default('reject')
        .describe('An encoded `/` or `\\` (`%2F`, `%5C`): reject: 400. keep: kept encoded, never a separator.'),
      backslash: z
        .enum(['reject', 'slash'])
        .default('reject')
        .describe('A raw `\\` in the path: reject: 400. slash: taken as `/`, as browsers do.'),
    })
    .prefault({})
    .describe(
      'Path normalization, before routing: unreserved percent-encodings decoded, dot segments removed, slashes merged; routing, access rules and the forwarded request all see the result (docs/security.md).',
    ),
  slowClients: z
    .strictObject({
      window: duration
        .default('10s')
        .describe(
          'How long Switchyard waits on a client before it judges its rate; a client that stops altogether is cut one window after it stopped. 0: off.',
        ),
      minBodyRate: sizeSchema
        .default('512b')
        .describe(
          'Bytes a second a request body must arrive at, over each window, while Switchyard waits for it (slow POST); below it: 408 SWY_CLIENT_TOO_SLOW. 0: not checked.',
        ),
      minSendRate: sizeSchema
        .default('512b')
        .describe(
          'Bytes a second a client must read its response at, over each window, while the response waits on it (its socket, or its HTTP/2 stream window, is full: slow read); below it the connection is cut (HTTP/2: the stream is reset) and its upstream request aborted. 0: not checked.',
        ),
    })
    .prefault({})
    .describe('Minimum data rates of clients, on by default: slow uploads and slow reads are cut (docs/security.md).'),
  maxRequestsPerConnection: z
    .number()
    .int()
    .min(0)
    .default(DEFAULT_MAX_REQUESTS_PER_CONNECTION)
    .describe(
      'Requests one HTTP/1.1 client connection may carry; the response to the last one carries `Connection: close`, and the client opens a new connection (as nginx `keepalive_requests`). 0: no limit. HTTP/2 connections are not limited by it.',
    ),
  forwarded: forwarded.describe('Forwarding headers added to upstream requests.'),
  requestId: requestId.describe('Request id handling.'),
  explain: explain.optional(),
  proxyProtocol: proxyProtocol,
})

/** A `tcp` listener: bytes, not requests, so none of the HTTP settings; one route to one pool. */
const tcpListener = z.strictObject({
  name,
  listen,
  protocol: z.literal('tcp').describe(protocolText),
  routes: z
    .array(
      z.strictObject({
        pool: name.describe('Name of the pool whose servers take the connections.'),
        match: z
          .strictObject({
            sni: z
              .array(z.string().min(1))
              .min(1)
              .describe(
                'Server names (SNI) of TLS connections that take this route: exact names, or `*.example.com` for one label. The TLS is not decrypted: the ClientHello is read, and the bytes are piped on as they came (TLS passthrough).',
              ),
          })
          .optional()
          .describe('Which connections take the route; none: every connection (a catch-all, last).'),
      }),
    )
    .min(1)
    .describe(
      'One route with no `match` (every connection goes to its pool), or routes by TLS server name (`match.sni`), tried in order, with an optional catch-all last.',
    ),
  timeouts: z
    .strictObject({
      idle: duration.default('60s').describe('How long a connection with no bytes in either direction is kept open.'),
    })
    .prefault({})
    .describe('Client-side timeouts.'),
  limits: z
    .strictObject(connectionLimitShape)
    .prefault({})
    .describe('Connection limits; on by default (docs/security.md).'),
  access: accessSchema
    .optional()
    .describe(
      'Allow and deny lists of client addresses (deny wins), checked as each connection is accepted: a denied one is closed at once, whatever `action` says.',
    ),
  proxyProtocol,
})

/** Keyed on `protocol`; a listener without one is an `http` listener. */
const listener = z.discriminatedUnion('protocol', [httpListenerSchema, tcpListener])

const poolTimeouts = z
  .strictObject({
    connect: duration.default('5s').describe('Time to open a TCP connection to a server.'),
    responseHeaders: duration
      .default('60s')
      .describe(
        'Time from sending a request to receiving the response head. HTTP only: a pool that only `tcp` listeners use rejects it.',
      ),
    idle: duration
      .default('60s')
      .describe(
        'Longest silence between two chunks of a response body. HTTP only: a pool that only `tcp` listeners use rejects it.',
      ),
  })
  .prefault({})

const connections = z
  .strictObject({
    maxPerServer: z
      .number()
      .int()
      .min(1)
      .default(256)
      .describe(
        'Most concurrent connections to one server (HAProxy `maxconn`); each carries one request at a time. Further requests wait for a connection of that server (see `maxPending`).',
      ),
    maxPending: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe(
        'Most requests waiting for a connection of one server. A server with `maxPerServer + maxPending` requests is full: the balancer passes over it, and when every server is full, requests wait in the pool `queue` (or get 503 SWY_OVERLOADED without one). Default: no limit.',
      ),
    keepAlive: duration
      .default('4s')
      .describe(
        'How long an idle upstream connection is kept for reuse. A server that announces `Keep-Alive: timeout=N` has its idle connections closed 2 s before N, when that is sooner. `0`: every request has a connection of its own (`Connection: close`). HTTP only: a pool that only `tcp` listeners use rejects it.',
      ),
    maxRequestsPerConnection: z
      .number()
      .int()
      .min(0)
      .default(1000)
      .describe(
        "Requests one upstream connection carries before Switchyard closes it (the last one is sent with `Connection: close`), as nginx's `keepalive_requests` (also 1000): a server frees what it holds per connection, and a server address that is itself load-balanced sees new connections spread. Costs one connect per 1000 requests. `0`: no limit. HTTP only: a pool that only `tcp` listeners use rejects it.",
      ),
    maxConcurrentStreams: z
      .number()
      .int()
      .min(1)
      .max(2 ** 31 - 1)
      .default(100)
      .describe(
        "Only with `protocol: h2` or `h2c`: most requests one HTTP/2 connection carries at once (fewer when the server's SETTINGS say so). A new connection is opened when every one is full, up to `maxPerServer`.",
      ),
    maxClientShare: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe(
        "Most of the pool's capacity (its primary servers' `maxPerServer`, times `maxConcurrentStreams` over HTTP/2) that one client address may hold at once; its next request gets 429 SWY_RATE_LIMITED. Keeps one client (slow readers holding their responses, say) from taking every upstream connection. The address is the one `forwarded.trustedProxies` resolve: list a proxy in front there. 1: no limit.",
      ),
  })
  .prefault({})

const STICKY_MODE_RE = /^(cookie|client-ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|app-cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/

const sticky = z
  .strictObject({
    mode: z
      .string()
      .regex(STICKY_MODE_RE, {
        error: 'expected cookie, client-ip, header:NAME or app-cookie:NAME',
      })
      .describe(
        '`cookie` (a signed cookie set by Switchyard), `client-ip` or `header:NAME` (consistent hashing, no state), or `app-cookie:NAME` (follow a session cookie the servers set, such as JSESSIONID).',
      ),
    cookie: z
      .strictObject({
        name: z
          .string()
          .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, { error: 'expected a cookie name (a token)' })
          .default('SWYSID')
          .describe('Cookie name.'),
        ttl: durationSchema
          .default('1h')
          .describe(
            'Lifetime of a binding and Max-Age of the cookie. 0: a browser-session cookie (bound for at most a day).',
          ),
        path: z.string().startsWith('/').default('/').describe('Cookie Path.'),
        domain: z.string().optional().describe('Cookie Domain. Absent: the host of the request.'),
        secure: z.boolean().default(false).describe('Send the cookie over HTTPS only.'),
        httpOnly: z.boolean().default(true).describe('Hide the cookie from scripts.'),
        sameSite: z.enum(['Strict', 'Lax', 'None']).default('Lax').describe('Cookie SameSite attribute.'),
      })
      .prefault({})
      .describe('Only with `mode: cookie`: the cookie Switchyard sets.'),
    secret: z
      .string()
      .min(16)
      .optional()
      .describe(
        'Only with `mode: cookie`: the key that signs bindings (HMAC-SHA256), at least 16 characters, best taken from the environment. Absent: a random key per process run, so bindings do not survive a restart and instances do not share them.',
      ),
    sessions: z
      .strictObject({
        maxEntries: z
          .number()
          .int()
          .min(1)
          .default(100_000)
          .describe('Most sessions remembered; the least recently used go first.'),
        ttl: durationSchema.default('1h').describe('A session unused for this long is forgotten. 0: never.'),
      })
      .prefault({})
      .describe('Only with `mode: app-cookie:NAME`: its session table.'),
  })
  .describe('Session persistence: keep a client on one server.')

/** The mode that owns each mode-specific key of `sticky`: under any other mode, the key is rejected. */
const STICKY_KEY_OWNERS = { cookie: 'cookie', secret: 'cookie', sessions: 'app-cookie:NAME' } as const

/**
 * Pool keys that only HTTP traffic uses, with why: a pool that only tcp listeners use rejects them. A
 * pool that HTTP and tcp listeners share may have them; they apply to its HTTP requests.
 */
const HTTP_ONLY_POOL_KEYS: readonly { readonly path: readonly string[]; readonly why: string }[] = [
  { path: ['retries'], why: 'a TCP connection is not retried' },
  { path: ['queue'], why: 'a TCP connection that finds every server full is reset, not queued' },
  { path: ['preserveHost'], why: 'TCP has no Host header' },
  { path: ['timeouts', 'responseHeaders'], why: 'TCP has no response head' },
  { path: ['timeouts', 'idle'], why: "the tcp listener's own `timeouts.idle` covers both directions" },
  { path: ['connections', 'keepAlive'], why: 'TCP connections are not reused' },
  { path: ['connections', 'maxRequestsPerConnection'], why: 'a TCP connection carries no requests' },
  { path: ['engine'], why: 'TCP is piped, with no HTTP engine' },
  { path: ['protocol'], why: 'TCP is piped, with no HTTP' },
  { path: ['connections', 'maxConcurrentStreams'], why: 'a TCP connection carries no requests' },
  { path: ['tls'], why: 'a tcp listener pipes bytes as they are (TLS passthrough)' },
]

const pool = z.strictObject({
  name,
  balance,
  engine: z
    .enum(ENGINES)
    .default(defaultEngine)
    .describe(
      `${engineText} On a pool: the connections to its servers. HTTP only: a pool that only \`tcp\` listeners use rejects it.`,
    ),
  protocol: z
    .enum(['http1', 'h2', 'h2c'])
    .default('http1')
    .describe(
      'What the pool speaks to its servers: `http1` (HTTP/1.1, on the `engine`), `h2` (HTTP/2 over TLS, agreed by ALPN: `https://` servers) or `h2c` (HTTP/2 in clear, with prior knowledge: `http://` servers). HTTP/2 multiplexes requests over a few connections per server (`connections.maxConcurrentStreams`), and carries gRPC. HTTP only: a pool that only `tcp` listeners use rejects it.',
    ),
  servers: z.array(server).min(1).describe('The servers of the pool.'),
  sendProxyProtocol: z
    .enum(['v1', 'v2'])
    .optional()
    .describe(
      "Open each connection to a server with a PROXY protocol header (HAProxy's, v1 text or v2 binary) naming the client's address and the address it connected to, for HTTP and TCP pools alike. Over HTTP, a connection then carries only the requests of the client connection it was opened for, and closes with it. Health checks send `UNKNOWN` (v1) or `LOCAL` (v2). Absent: none.",
    ),
  tls: upstreamTls
    .optional()
    .describe(
      "TLS to the pool's `https://` servers: verification (`ca`, `servername`, `insecureSkipVerify`) and a client certificate (`cert`, `key`). `https://` servers without it are verified against the system CAs.",
    ),
  sticky: sticky.optional(),
  healthCheck: healthCheckSchema
    .optional()
    .describe(
      `Active health checks: ${CHECK_TYPES.map((t) => `\`type: ${t}\``).join(' or ')}, with interval, timeout, rise and fall. Absent: every server counts as up.`,
    ),
  outlierDetection: z
    .strictObject({
      consecutiveFailures: z
        .number()
        .int()
        .min(1)
        .default(5)
        .describe('Failures in a row (upstream errors and 5xx responses) that eject a server.'),
      errorRate: z
        .strictObject({
          threshold: z.number().gt(0).max(1).describe('Share of failed requests (0 to 1) that ejects a server.'),
          minRequests: z.number().int().min(1).default(20).describe('Requests in the window before the rate counts.'),
          window: durationSchema.default('10s').describe('Length of the window the rate is measured over.'),
        })
        .optional()
        .describe('Also eject a server whose failure rate over a window reaches a threshold.'),
      baseEjectionTime: durationSchema
        .default('30s')
        .describe('How long a first ejection lasts; the n-th lasts n times as long.'),
      maxEjectionTime: durationSchema.default('5m').describe('Longest ejection.'),
      maxEjectionPercent: z
        .number()
        .int()
        .min(0)
        .max(100)
        .default(50)
        .describe("Most of the pool's servers (in percent) ejected at once."),
    })
    .optional()
    .describe('Passive health checking: eject servers that fail real requests, for a while.'),
  retries: z
    .strictObject({
      attempts: z
        .number()
        .int()
        .min(0)
        .max(10)
        .default(2)
        .describe('Further tries after the first, each on another server. 0: no retries.'),
      on: z
        .array(z.enum(['connect-failure', 'reset', 'timeout', '502', '503', '504']))
        .default(['connect-failure', 'reset'])
        .describe(
          'What is retried: `connect-failure` (the server could not be reached: any method, since nothing reached it), `reset` (the connection closed before a response), `timeout` (no response head within `perTryTimeout`), and those statuses. All but `connect-failure` apply to idempotent requests (any method with `retryNonIdempotent`) whose body, if any, was buffered (`bufferBytes`).',
        ),
      retryNonIdempotent: z
        .boolean()
        .default(false)
        .describe('Also retry POST and PATCH on `reset`, `timeout` and statuses.'),
      bufferBytes: z
        .number()
        .int()
        .min(0)
        .max(16 * 1024 * 1024)
        .default(64 * 1024)
        .describe(
          'Request bodies with a Content-Length up to this size are read whole before they are sent, so that a failed try can be sent again. Larger and chunked bodies stream, and are retried on `connect-failure` only. 0: never buffer.',
        ),
      perTryTimeout: durationSchema
        .default(0)
        .describe(
          'Time each try has to produce a response head; when it runs out, the try fails with SWY_UPSTREAM_TIMEOUT (retried with `on: [timeout]`). 0: `timeouts.responseHeaders` alone.',
        ),
      keepAliveRace: z
        .boolean()
        .default(true)
        .describe(
          'Send a request again, at once and whatever its method, when it failed because the server closed a reused idle connection as the request was written (no byte of a response came back, so the application never read it). Needs a replayable body (none, or buffered). Not counted against `attempts` or the budget; at most 3 times per request.',
        ),
      backoff: z
        .strictObject({
          base: durationSchema.default('25ms').describe('Wait before the first retry; doubled for each further one.'),
          max: durationSchema.default('250ms').describe('Longest wait between tries.'),
        })
        .prefault({})
        .describe('Waits between tries, with full jitter (a random share of the computed wait).'),
      budget: z
        .strictObject({
          percent: z
            .number()
            .min(0)
            .max(100)
            .default(20)
            .describe(
              'Retries at most this percentage of the requests to the pool (each request earns a share of a retry).',
            ),
          minRetries: z
            .number()
            .int()
            .min(0)
            .default(3)
            .describe('Retries that may always be in flight besides, whatever the percentage.'),
        })
        .prefault({})
        .describe(
          'Retry budget (after Envoy and Finagle): caps how much retries can multiply the load on a failing pool.',
        ),
    })
    .prefault({})
    .describe(
      'Retries of failed requests on other servers of the pool. HTTP only: a pool that only `tcp` listeners use rejects it.',
    ),
  ejectOnConnectFailure: z
    .union([
      z.boolean(),
      z.strictObject({
        baseEjectionTime: durationSchema.default('1s').describe('How long a first ejection lasts.'),
        maxEjectionTime: durationSchema.default('30s').describe('Longest ejection (each failure in a row doubles it).'),
      }),
    ])
    .default(true)
    .describe(
      'Passive health on by default: a server that refuses a connection or does not accept one in time leaves the rotation at once, for a short time that doubles with each failure in a row (1 s up to 30 s); a TCP connect probe brings it back. The last server that could take requests is never ejected. `false`: off.',
    ),
  panicThreshold: z
    .number()
    .min(0)
    .max(100)
    .default(0)
    .describe(
      'Panic mode: when fewer than this percentage of the primary servers are up (health checks, outlier detection), balance over all of them, rather than overload the few. 0: off.',
    ),
  slowStart: durationSchema
    .default(0)
    .describe(
      'Ramp-up for a server that joins the pool on a reload: its share of new requests grows linearly from 5% to 100% of its weight over this time. 0: none.',
    ),
  preserveHost: z
    .boolean()
    .default(true)
    .describe(
      'Send the client `Host` header upstream. When false, send the server `host:port`. HTTP only: a pool that only `tcp` listeners use rejects it.',
    ),
  timeouts: poolTimeouts.describe('Upstream timeouts.'),
  connections: connections.describe('Upstream connection pool.'),
  queue: z
    .strictObject({
      maxInFlight: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe('Most requests the pool serves at once; more wait in the queue. 0: no limit.'),
      size: z
        .number()
        .int()
        .min(0)
        .default(0)
        .describe(
          'Most requests waiting for the pool (over `maxInFlight`, or every server full). More get 503 SWY_OVERLOADED at once. 0: no queue.',
        ),
      timeout: duration
        .default('5s')
        .describe('Longest a request waits in the queue before it gets 503 SWY_OVERLOADED.'),
    })
    .prefault({})
    .describe(
      'Circuit breaking, after HAProxy `maxconn` and queue: a cap on in-flight requests with a bounded, timed FIFO queue. HTTP only: a TCP connection that finds every server full is reset, and a pool that only `tcp` listeners use rejects it.',
    ),
})

const accessLogObject = z.strictObject({
  format: z
    .enum(ACCESS_FORMATS)
    .default('json')
    .describe(
      "`json` (one JSON line per request, the shape of Switchyard's other log lines), `combined` (NGINX's and Apache's combined log format, exactly), or `combined-extended` (combined, then the request time, pool, server, time to the response head, request id, SWY_* code and trace id).",
    ),
  file: z
    .string()
    .min(1)
    .optional()
    .describe(
      "Write the access log to this file (appended to, created if missing; relative to the config file's directory) instead of stdout. Reopened on SIGUSR1, for logrotate; every worker appends to it. Written whatever `level` says.",
    ),
  sample: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe(
      'Share of successful requests (and TCP connections) logged, 0 to 1, chosen at random per request. Every failure is logged: a status of 400 or more, a SWY_* code, a response cut short. 1: every request.',
    ),
})

const otlp = z
  .strictObject({
    endpoint: z
      .string()
      .refine(isHttpUrl, { error: 'expected an http:// or https:// URL such as http://127.0.0.1:4318/v1/traces' })
      .describe(
        "Where spans are sent: the collector's OTLP/HTTP traces URL, with its path (`http://collector:4318/v1/traces`).",
      ),
    headers: z
      .record(z.string(), z.string())
      .default({})
      .describe('HTTP headers sent with every export (an API key for a hosted backend, say).'),
    timeout: duration.default('10s').describe('Longest one export may take before it is abandoned.'),
    maxQueueSize: z
      .number()
      .int()
      .min(1)
      .default(2048)
      .describe('Most finished spans waiting to be exported; spans finished while it is full are dropped.'),
    maxBatchSize: z.number().int().min(1).default(512).describe('Most spans in one export.'),
    delay: duration.default('5s').describe('Longest a finished span waits before its batch is exported.'),
  })
  .refine((o) => o.maxBatchSize <= o.maxQueueSize, {
    path: ['maxBatchSize'],
    error: (issue) => {
      const o = issue.input as { maxBatchSize: number; maxQueueSize: number }
      return `expected at most maxQueueSize (${o.maxQueueSize}), found ${o.maxBatchSize}`
    },
  })
  .describe(
    'Export spans over OTLP/HTTP (JSON) with the OpenTelemetry SDK, loaded only when this is set. One span per request, of the sampled requests.',
  )

const tracing = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe(
        "Join or start a W3C trace for every HTTP request: the upstream gets a `traceparent` naming Switchyard's span as parent, and the access log the trace and span ids. Off: `traceparent` and `tracestate` pass through untouched.",
      ),
    sampleRatio: z
      .number()
      .min(0)
      .max(1)
      .default(1)
      .describe(
        'Share of the traces started here (requests without a valid `traceparent`) marked sampled, 0 to 1. A request with a `traceparent` keeps its sampled flag.',
      ),
    serviceName: z.string().min(1).default('switchyard').describe('`service.name` of the exported spans.'),
    otlp: otlp.optional(),
  })
  .prefault({})
  .describe('Distributed tracing: W3C trace context and OpenTelemetry export. See docs/observability.md.')

export const configSchema = z.strictObject({
  $schema: z.string().optional().describe('JSON Schema reference for editors; ignored.'),
  admin: z
    .strictObject({
      listen,
      token: z
        .string()
        .min(16)
        .optional()
        .describe(
          'Bearer token every admin request needs (`Authorization: Bearer TOKEN`), compared in constant time; without it the answer is 401. `/healthz` stays open. Best taken from the environment, by interpolation of a variable such as SWITCHYARD_ADMIN_TOKEN. Without a token (or `tokenFile`), `listen` must be a loopback address.',
        ),
      tokenFile: z
        .string()
        .min(1)
        .optional()
        .describe('File holding the token (a secret mounted in a container, say); surrounding whitespace is trimmed.'),
      stateFile: z
        .string()
        .min(1)
        .optional()
        .describe(
          "File where runtime changes (a server's weight or state, servers added or removed through the API) are kept, so that they outlive reloads and restarts: an overlay on this config, dropped with `DELETE /api/v1/overrides`. Relative to the config file's directory. Absent: runtime changes outlive reloads but not a restart.",
        ),
    })
    .optional()
    .describe(
      'Admin API: status, metrics, runtime changes and the dashboard. Absent: no admin listener. Closed by default: on loopback only, unless a token guards it.',
    ),
  workers: z
    .union([z.literal('auto'), z.int().min(1).max(256)])
    .default(1)
    .describe(
      'Worker processes, each with its own event loop: a number, or `auto` for one per CPU core. Above 1, a supervisor process owns the config, reloads and the admin API, and restarts crashed workers. Used by the `switchyard` command; an embedded load balancer runs in its own process.',
    ),
  logging: z
    .strictObject({
      level: z.enum(LOG_LEVELS).default('info').describe('Least severe level written.'),
      accessLog: z
        .union([z.boolean(), accessLogObject])
        .default(true)
        .describe(
          'The access log: `true` for one JSON line per request on stdout with the other logs, `false` for none (requests that fail on the server side are still logged, at `warn`), or an object with `format`, `file` and `sample`. See docs/observability.md.',
        ),
    })
    .prefault({})
    .describe('Logging.'),
  tracing,
  shutdown: z
    .strictObject({
      gracePeriod: duration
        .default('30s')
        .describe('On SIGTERM/SIGINT, how long in-flight requests may take before connections are closed.'),
      tunnelCloseWindow: duration
        .default('10s')
        .describe(
          'On a drain (shutdown, or a reload that replaces a listener or its process), open WebSocket and other upgraded connections are closed one by one at random times spread over this window (within `gracePeriod`), so that their clients do not all reconnect at once. A WebSocket gets a 1001 (going away) close frame.',
        ),
    })
    .prefault({})
    .describe('Graceful shutdown.'),
  plugins: z
    .array(
      z.strictObject({
        module: z
          .string()
          .min(1)
          .describe('Path of a JavaScript module (relative to the config file), or a package name.'),
        options: z.unknown().optional().describe('Passed to the module when its default export is a function.'),
      }),
    )
    .default([])
    .describe(
      'TypeScript/JavaScript plugins, loaded at start and on every reload, run in this order around the built-in rules.',
    ),
  listeners: z.array(listener).min(1).describe('Where Switchyard accepts traffic.'),
  pools: z.array(pool).min(1).describe('Groups of upstream servers.'),
})

const schemaByTable = new WeakMap<BalancerTable, typeof configSchema>()

/**
 * The config schema for a balancer table with more algorithms than the built-ins (plugins add them);
 * the plain `configSchema` when there are none.
 */
export function configSchemaFor(table: BalancerTable | undefined): typeof configSchema {
  if (table === undefined || Object.keys(table).every((name) => Object.hasOwn(BALANCERS, name))) return configSchema
  let schema = schemaByTable.get(table)
  if (schema === undefined) {
    const pools = configSchema.shape.pools
    const withBalance = pool.extend({ balance: balanceWith(table) })
    schema = configSchema.extend({
      pools: z
        .array(withBalance)
        .min(1)
        .describe(pools.description ?? ''),
    }) as unknown as typeof configSchema
    schemaByTable.set(table, schema)
  }
  return schema
}

export type ConfigInput = z.input<typeof configSchema>
export type ParsedConfig = z.output<typeof configSchema>

/** Parses a server URL; returns a problem text or the parts (`tls` for `https://`). */
export function parseServerUrl(text: string): { host: string; port: number; tls: boolean } | string {
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return `expected a URL such as http://127.0.0.1:3001, found "${text}"`
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:' && url.protocol !== 'tcp:')
    return `expected an http://, https:// (or tcp://) URL, found "${text}"`
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash || url.username)
    return `expected a URL with no path, query or credentials, found "${text}"`
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname
  const tls = url.protocol === 'https:'
  return { host, port: url.port === '' ? (tls ? 443 : 80) : Number(url.port), tls }
}

/** Checks an address or CIDR range; returns a problem text or undefined. */
export function checkCidr(text: string): string | undefined {
  const [ip, prefix, extra] = text.split('/')
  const family = ip === undefined ? 0 : isIP(ip)
  const max = family === 4 ? 32 : 128
  if (
    family === 0 ||
    extra !== undefined ||
    (prefix !== undefined && !/^\d{1,3}$/.test(prefix)) ||
    Number(prefix) > max
  )
    return `expected an IP address or CIDR range such as 10.0.0.0/8, found "${text}"`
  return undefined
}

export interface ReferenceProblem {
  readonly path: (string | number)[]
  readonly message: string
  /** Point at the key of the last path segment rather than its value (a key that should not be there). */
  readonly atKey?: boolean
}

const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const field = (v: unknown, key: string): unknown =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>)[key] : undefined
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)

/**
 * Cross-reference checks: unique names and addresses, routes to existing pools, valid server URLs and
 * proxy ranges, no unreachable routes, sticky keys of another mode, HTTP settings in a pool that only
 * tcp listeners use. Runs on the raw input, even when its shape has other problems, so that one
 * `validate` run reports everything; values of the wrong type are skipped here. Where the schema
 * reports the same path, the message from here is the one kept (it knows more).
 */
export function checkReferences(cfg: unknown): ReferenceProblem[] {
  const problems: ReferenceProblem[] = []
  const issue = (path: (string | number)[], message: string, atKey = false) => problems.push({ path, message, atKey })
  const seen = new Map<string, string>()
  const checkUnique = (kind: string, value: string, path: (string | number)[]) => {
    const key = `${kind}\u0000${value}`
    const first = seen.get(key)
    if (first !== undefined) issue(path, `expected a unique ${kind}, found "${value}" again (first at ${first})`)
    else seen.set(key, formatPath(path))
  }

  const pools = list(field(cfg, 'pools'))
  const poolNames = [...new Set(pools.map((p) => text(field(p, 'name'))).filter((n) => n !== undefined))]
  pools.forEach((p, i) => {
    const poolName = text(field(p, 'name'))
    if (poolName !== undefined) checkUnique('pool name', poolName, ['pools', i, 'name'])
    const sticky = field(p, 'sticky')
    const mode = text(field(sticky, 'mode'))
    const kind = mode !== undefined && STICKY_MODE_RE.test(mode) ? mode.split(':')[0] : undefined
    for (const [key, owner] of Object.entries(STICKY_KEY_OWNERS))
      if (kind !== undefined && field(sticky, key) !== undefined && kind !== owner.split(':')[0])
        issue(['pools', i, 'sticky', key], `expected no \`${key}\` for mode ${mode} (only mode ${owner} has it)`, true)
    list(field(p, 'servers')).forEach((s, j) => {
      const url = typeof s === 'string' ? s : text(field(s, 'url'))
      if (url === undefined) return
      const path = typeof s === 'string' ? ['pools', i, 'servers', j] : ['pools', i, 'servers', j, 'url']
      const parsed = parseServerUrl(url)
      if (typeof parsed === 'string') {
        issue(path, parsed)
        return
      }
      const id = text(field(s, 'name')) ?? `${parsed.host}:${parsed.port}`
      checkUnique(`server in pool ${poolName ?? i}`, id, ['pools', i, 'servers', j])
    })
    const tlsCfg = field(p, 'tls')
    if (tlsCfg !== undefined) {
      const hasCert = field(tlsCfg, 'cert') !== undefined
      const hasKey = field(tlsCfg, 'key') !== undefined
      if (hasCert !== hasKey)
        issue(
          ['pools', i, 'tls', hasCert ? 'key' : 'cert'],
          `expected ${hasCert ? 'a `key` with the client `cert`' : 'a `cert` with the client `key`'}, found none`,
        )
      const https = list(field(p, 'servers')).some((s) =>
        (typeof s === 'string' ? s : (text(field(s, 'url')) ?? '')).toLowerCase().startsWith('https://'),
      )
      if (!https) issue(['pools', i, 'tls'], 'expected an https:// server for `tls` to apply to, found none')
    }
  })

  const httpPools = new Set<string>()
  const tcpPools = new Set<string>()
  const adminCfg = field(cfg, 'admin')
  const admin = parseListen(text(field(adminCfg, 'listen')) ?? '')
  if (admin) seen.set(`address\u0000${admin.host}:${admin.port}`, 'admin.listen')
  const token = field(adminCfg, 'token')
  const tokenFile = text(field(adminCfg, 'tokenFile'))
  if (token !== undefined && tokenFile !== undefined)
    issue(['admin', 'tokenFile'], 'expected either `token` or `tokenFile`, found both')
  else if (tokenFile !== undefined && !isReadableFile(tokenFile))
    issue(['admin', 'tokenFile'], `expected a readable file, found no readable file at "${tokenFile}"`)
  if (admin && token === undefined && tokenFile === undefined && !isLoopback(admin.host))
    issue(
      ['admin', 'listen'],
      `expected a loopback address (127.0.0.1, [::1]) for an admin API without \`token\` or \`tokenFile\`, found "${text(field(adminCfg, 'listen'))}": anyone who reaches it could read its status and metrics`,
    )
  list(field(cfg, 'listeners')).forEach((l, i) => {
    const listenerName = text(field(l, 'name'))
    if (listenerName !== undefined) checkUnique('listener name', listenerName, ['listeners', i, 'name'])
    const addr = parseListen(text(field(l, 'listen')) ?? '')
    if (addr && addr.port !== 0) checkUnique('address', `${addr.host}:${addr.port}`, ['listeners', i, 'listen'])
    list(field(field(l, 'forwarded'), 'trustedProxies')).forEach((t, j) => {
      const problem = typeof t === 'string' ? checkCidr(t) : undefined
      if (problem) issue(['listeners', i, 'forwarded', 'trustedProxies', j], problem)
    })
    const explainCfg = field(l, 'explain')
    if (explainCfg !== undefined && typeof explainCfg === 'object' && explainCfg !== null) {
      const trusted = list(field(explainCfg, 'trusted'))
      trusted.forEach((t, j) => {
        const problem = typeof t === 'string' ? checkCidr(t) : undefined
        if (problem) issue(['listeners', i, 'explain', 'trusted', j], problem)
      })
      const byToken = field(explainCfg, 'adminToken') === true
      if (byToken && token === undefined && tokenFile === undefined)
        issue(
          ['listeners', i, 'explain', 'adminToken'],
          'expected `admin.token` or `admin.tokenFile` for `adminToken: true`, found neither: there is no token to check',
        )
      else if (!byToken && trusted.length === 0)
        issue(
          ['listeners', i, 'explain'],
          'expected `trusted` addresses or `adminToken: true`, found neither: no request could be explained',
        )
    }
    const protocol = text(field(l, 'protocol')) ?? 'http'
    const tlsCfg = field(l, 'tls')
    if (tlsCfg !== undefined) {
      const single = field(tlsCfg, 'cert') !== undefined || field(tlsCfg, 'key') !== undefined
      const several = field(tlsCfg, 'certificates') !== undefined
      if (single && several)
        issue(['listeners', i, 'tls', 'certificates'], 'expected either `cert` and `key` or `certificates`, found both')
      else if (!several && (field(tlsCfg, 'cert') === undefined) !== (field(tlsCfg, 'key') === undefined))
        issue(
          ['listeners', i, 'tls', field(tlsCfg, 'cert') === undefined ? 'cert' : 'key'],
          'expected `cert` and `key` together, found one of them',
        )
      else if (!single && !several && field(tlsCfg, 'acme') === undefined)
        issue(['listeners', i, 'tls'], 'expected `cert` and `key`, `certificates`, or `acme`, found none of them')
      else if ((single || several) && field(tlsCfg, 'acme') !== undefined)
        issue(
          ['listeners', i, 'tls', 'acme'],
          'expected either `acme` or certificate files (`cert`/`key`, `certificates`), found both',
        )
    }
    if (protocol === 'https' && tlsCfg === undefined)
      issue(['listeners', i], 'expected a `tls` section (cert and key) for protocol https, found none')
    if (protocol !== 'https' && tlsCfg !== undefined)
      issue(['listeners', i, 'tls'], `expected no \`tls\` section for protocol ${protocol} (only https uses it)`)
    const readable = (pair: unknown, path: (string | number)[]) => {
      for (const key of ['cert', 'key'] as const) {
        const file = text(field(pair, key))
        if (file !== undefined && file !== '' && !isReadableFile(file))
          issue([...path, key], `expected a readable PEM file, found no readable file at "${file}"`)
      }
    }
    readable(tlsCfg, ['listeners', i, 'tls'])
    for (const [j, c] of list(field(tlsCfg, 'certificates')).entries())
      readable(c, ['listeners', i, 'tls', 'certificates', j])
    const routes = list(field(l, 'routes'))
    if (protocol === 'tcp') {
      // Routes by SNI, and at most one catch-all, last.
      routes.forEach((r, j) => {
        if (field(r, 'match') === undefined && j < routes.length - 1)
          issue(
            ['listeners', i, 'routes', j + 1],
            `expected no route after the catch-all route ${j} (it has no \`match\`), found one that can never match`,
          )
      })
    }
    const requestIdHeader = (text(field(field(l, 'requestId'), 'header')) ?? 'x-request-id').toLowerCase()
    if (protocol !== 'tcp') {
      checkListenerRules(l, i, issue)
      checkManagedHeaders(field(l, 'headers'), ['listeners', i, 'headers'], requestIdHeader, issue)
    } else
      for (const key of rulesAt('listener'))
        if (key !== 'access' && field(l, key) !== undefined)
          issue(['listeners', i, key], `expected no \`${key}\` on a tcp listener (it sees no HTTP request)`)
    let catchAll = -1
    routes.forEach((r, j) => {
      const pool = text(field(r, 'pool'))
      if (pool !== undefined && !poolNames.includes(pool))
        issue(
          ['listeners', i, 'routes', j, 'pool'],
          poolNames.length > 0
            ? `expected the name of a pool (${poolNames.join(', ')}), found "${pool}"`
            : `expected the name of a pool, found "${pool}" (no pool is defined)`,
        )
      const routeName = text(field(r, 'name'))
      if (routeName !== undefined)
        checkUnique(`route name in listener ${listenerName ?? i}`, routeName, ['listeners', i, 'routes', j, 'name'])
      if (protocol === 'tcp') {
        if (pool === undefined)
          issue(['listeners', i, 'routes', j], 'expected a `pool` for the route of a tcp listener, found none')
        for (const key of rulesAt('route'))
          if (field(r, key) !== undefined)
            issue(
              ['listeners', i, 'routes', j, key],
              `expected no \`${key}\` on a tcp listener's route (it sees no HTTP request)`,
            )
      } else {
        checkRouteRules(r, ['listeners', i, 'routes', j], poolNames, pool, issue)
        checkManagedHeaders(field(r, 'headers'), ['listeners', i, 'routes', j, 'headers'], requestIdHeader, issue)
      }
      if (catchAll >= 0)
        issue(
          ['listeners', i, 'routes', j],
          `expected no route after the catch-all route ${catchAll}, found one that can never match`,
        )
      const m = field(r, 'match')
      if (m === undefined || (typeof m === 'object' && m !== null && Object.keys(m).length === 0)) catchAll = j
      if (protocol === 'tcp') {
        if (pool !== undefined) tcpPools.add(pool)
      } else for (const p of routePools(r)) httpPools.add(p)
    })
  })
  pools.forEach((p, i) => {
    const poolName = text(field(p, 'name')) ?? ''
    if (tcpPools.has(poolName) && !httpPools.has(poolName)) {
      // Only tcp listeners use the pool: its HTTP settings could never apply.
      for (const { path, why } of HTTP_ONLY_POOL_KEYS) {
        const value = path.reduce<unknown>((v, key) => field(v, key), p)
        if (value !== undefined)
          issue(
            ['pools', i, ...path],
            `expected no \`${path.join('.')}\` in a pool that only tcp listeners use (${why})`,
            true,
          )
      }
      const mode = text(field(field(p, 'sticky'), 'mode'))
      if (mode !== undefined && mode !== 'client-ip')
        issue(
          ['pools', i, 'sticky', 'mode'],
          `expected mode client-ip in a pool that only tcp listeners use (cookie, header: and app-cookie: need HTTP), found "${mode}"`,
        )
    }
    // tcp:// servers speak no HTTP: only tcp listeners may send to them.
    if (!httpPools.has(poolName)) return
    const protocol = text(field(p, 'protocol'))
    list(field(p, 'servers')).forEach((s, j) => {
      const url = typeof s === 'string' ? s : text(field(s, 'url'))
      const at = typeof s === 'string' ? ['pools', i, 'servers', j] : ['pools', i, 'servers', j, 'url']
      const scheme = url?.toLowerCase().split(':')[0]
      if (scheme === 'tcp')
        issue(at, `expected an http:// or https:// URL in a pool that an http or https listener uses, found "${url}"`)
      else if (protocol === 'h2' && scheme === 'http')
        issue(at, `expected an https:// URL with protocol h2 (HTTP/2 over TLS; h2c is HTTP/2 in clear), found "${url}"`)
      else if (protocol === 'h2c' && scheme === 'https')
        issue(at, `expected an http:// URL with protocol h2c (HTTP/2 in clear; h2 is HTTP/2 over TLS), found "${url}"`)
    })
  })
  return problems
}

/** 127.0.0.0/8, ::1 and `localhost`: addresses only this machine reaches. */
/** An absolute `http:` or `https:` URL with a host. */
function isHttpUrl(text: string): boolean {
  try {
    const u = new URL(text)
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== ''
  } catch {
    return false
  }
}

function isLoopback(host: string): boolean {
  const h = host.startsWith('[') ? host.slice(1, -1) : host
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./i.test(h)
}

/** Headers the proxy adds to every upstream request by its own settings. */
const FORWARDING_HEADERS: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
])

/** Why a request header rule may not name `name`, or undefined when it may. */
export function managedHeader(name: string, requestIdHeader: string): string | undefined {
  const lower = name.toLowerCase()
  if (FORWARDING_HEADERS.has(lower))
    return `expected a header other than ${lower}, which the listener's \`forwarded\` settings set (xForwarded, forwarded, trustedProxies)`
  if (lower === requestIdHeader)
    return `expected a header other than ${lower}, the listener's request id header (see \`requestId\`)`
  return undefined
}

/** Every pool a route sends to: `pool`, the split's pools and the mirror's. */
function routePools(r: unknown): string[] {
  const out: string[] = []
  const pool = text(field(r, 'pool'))
  if (pool !== undefined) out.push(pool)
  for (const side of list(field(r, 'pools'))) {
    const p = text(field(side, 'pool'))
    if (p !== undefined) out.push(p)
  }
  const mirrorPool = text(field(field(r, 'mirror'), 'pool'))
  if (mirrorPool !== undefined) out.push(mirrorPool)
  return out
}

type Issue = (path: (string | number)[], message: string) => void

/** A route's rules: what serves it, pools that exist, and each rule's own checks at its place. */
function checkRouteRules(
  r: unknown,
  at: (string | number)[],
  poolNames: string[],
  pool: string | undefined,
  issue: Issue,
): void {
  const answering = ANSWERING_RULES.filter((k) => field(r, k) !== undefined)
  const choosing = POOL_RULES.filter((k) => field(r, k) !== undefined)
  const serving = [...(pool === undefined ? [] : ['pool']), ...answering, ...choosing]
  if (serving.length === 0)
    issue(
      at,
      `expected what serves the route: \`pool\`, ${[...POOL_RULES, ...ANSWERING_RULES].map((k) => `\`${k}\``).join(', ')}, found none`,
    )
  else if (serving.length > 1)
    issue(
      [...at, serving[1] as string],
      `expected one of \`pool\`, ${[...POOL_RULES, ...ANSWERING_RULES].map((k) => `\`${k}\``).join(', ')}, found ${serving.map((k) => `\`${k}\``).join(' and ')}`,
    )
  const known = (p: string | undefined, path: (string | number)[]) => {
    if (p !== undefined && !poolNames.includes(p))
      issue(path, `expected the name of a pool (${poolNames.join(', ')}), found "${p}"`)
  }
  for (const [k, side] of list(field(r, 'pools')).entries())
    known(text(field(side, 'pool')), [...at, 'pools', k, 'pool'])
  const mirror = field(r, 'mirror')
  known(text(field(mirror, 'pool')), [...at, 'mirror', 'pool'])
  const m = field(r, 'match')
  const prefix = text(field(m, 'pathPrefix'))
  const rewrite = field(r, 'rewrite')
  if (rewrite !== undefined && typeof rewrite === 'object')
    for (const p of checkRewrite(rewrite as never, prefix, text(field(m, 'path')))) issue([...at, 'rewrite'], p)
  const redirect = field(r, 'redirect')
  if (redirect !== undefined && typeof redirect === 'object')
    for (const p of checkRedirect(redirect as never, prefix, 'route')) issue([...at, 'redirect'], p)
}

/** Request header rules may not name the headers the proxy sets itself (forwarding, request id). */
function checkManagedHeaders(rules: unknown, at: (string | number)[], requestIdHeader: string, issue: Issue): void {
  const request = field(rules, 'request')
  for (const op of ['set', 'add'] as const) {
    const names = field(request, op)
    if (names === null || typeof names !== 'object' || Array.isArray(names)) continue
    for (const name of Object.keys(names)) {
      const why = managedHeader(name, requestIdHeader)
      if (why !== undefined) issue([...at, 'request', op, name], why)
    }
  }
  for (const [k, name] of list(field(request, 'remove')).entries()) {
    const why = typeof name === 'string' ? managedHeader(name, requestIdHeader) : undefined
    if (why !== undefined) issue([...at, 'request', 'remove', k], why)
  }
}

function checkListenerRules(l: unknown, i: number, issue: Issue): void {
  const redirect = field(l, 'redirect')
  if (redirect !== undefined && typeof redirect === 'object')
    for (const p of checkRedirect(redirect as never, undefined, 'listener')) issue(['listeners', i, 'redirect'], p)
  const answering = ANSWERING_RULES.filter((k) => field(l, k) !== undefined)
  if (answering.length > 1)
    issue(
      ['listeners', i, answering[1] as string],
      `expected at most one of ${ANSWERING_RULES.map((k) => `\`${k}\``).join(', ')}, found both`,
    )
}

function isReadableFile(file: string): boolean {
  try {
    accessSync(file, constants.R_OK)
    return statSync(file).isFile()
  } catch {
    return false
  }
}

/** `pools[0].servers[1].url` */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`
    else out += out === '' ? String(seg) : `.${String(seg)}`
  }
  return out || '(root)'
}
