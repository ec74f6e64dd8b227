/**
 * The admin API: read-only status and metrics for now (runtime changes come later).
 *
 *   GET /healthz      200 {"status":"ok"} while serving
 *   GET /api/status   listeners, pools and servers of the active configuration generation
 *   GET /metrics      Prometheus text exposition
 *   GET /             a small HTML page linking the above (it holds no data: its script fetches the
 *                     status with the token, asked for once and kept in sessionStorage, never in a URL)
 *
 * It reads snapshots and metrics only, never pool internals. Closed by default: the config allows it on
 * a loopback address only, unless `admin.token` guards every request but `/healthz` and `/` (401
 * otherwise).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ListenAddress } from '../core/address.js'
import { boundAddress, listenOn } from '../listeners/bind.js'

/** What the admin API reads: one load balancer, or the supervisor of several worker processes. */
export interface AdminSource {
  /** Prometheus text exposition. */
  metricsText(): Promise<{ contentType: string; body: string }>
  status(): unknown
}

export class AdminServer {
  readonly #server: Server
  readonly #source: AdminSource
  readonly #address: ListenAddress

  /** SHA-256 of the bearer token, compared in constant time; undefined: no token (a loopback admin). */
  readonly #tokenDigest: Buffer | undefined

  constructor(source: AdminSource, address: ListenAddress & { readonly token?: string | undefined }) {
    this.#source = source
    this.#address = address
    this.#tokenDigest = address.token === undefined ? undefined : digest(address.token)
    this.#server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
      this.#handle(req, res).catch((err: Error) => {
        if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: err.message }))
        else res.destroy()
      })
    })
  }

  listen(): Promise<AddressInfo> {
    return listenOn(this.#server, this.#address.host, this.#address.port, '(admin)')
  }

  address(): AddressInfo | undefined {
    return boundAddress(this.#server)
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.close(() => resolve())
      this.#server.closeAllConnections()
    })
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain', 'method not allowed\n')
    if (path !== '/healthz' && path !== '/' && !this.#authorized(req)) {
      res.setHeader('www-authenticate', 'Bearer realm="switchyard admin"')
      return send(res, 401, 'application/json', '{"error":"unauthorized: send Authorization: Bearer <admin token>"}')
    }
    switch (path) {
      case '/healthz':
        return send(res, 200, 'application/json', '{"status":"ok"}')
      case '/api/status':
        return send(res, 200, 'application/json', JSON.stringify(await this.#source.status(), null, 2))
      case '/metrics': {
        const { contentType, body } = await this.#source.metricsText()
        return send(res, 200, contentType, body)
      }
      case '/':
        return send(res, 200, 'text/html; charset=utf-8', INDEX_HTML)
      default:
        return send(res, 404, 'application/json', '{"error":"not found"}')
    }
  }

  /** The request carries the admin token (always, when there is none). */
  #authorized(req: IncomingMessage): boolean {
    const expected = this.#tokenDigest
    if (expected === undefined) return true
    const header = req.headers.authorization
    const m = header === undefined ? null : /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header)
    // Digests of equal length: the comparison takes the same time whatever was sent.
    return m !== null && timingSafeEqual(digest(m[1] as string), expected)
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  })
  res.end(res.req.method === 'HEAD' ? undefined : body)
}

const INDEX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchyard admin</title>
<style>body{font:15px/1.5 system-ui,sans-serif;margin:2rem;max-width:50rem}pre{background:#f4f4f4;padding:1rem;overflow:auto}</style>
</head><body><h1>Switchyard admin</h1>
<ul><li><a href="/api/status">/api/status</a>: listeners, pools, servers</li>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li><li><a href="/healthz">/healthz</a>: liveness</li></ul>
<h2>Status</h2><form id="f" hidden><label>Admin token <input id="t" type="password" autocomplete="off"></label> <button>Use</button></form><pre id="s">loading…</pre>
<script>const T='switchyard-admin-token',s=document.getElementById('s'),f=document.getElementById('f');
async function r(){try{const k=sessionStorage.getItem(T),h=k?{authorization:'Bearer '+k}:{},q=await fetch('/api/status',{headers:h});
if(q.status===401){f.hidden=false;s.textContent='this admin API needs its token';return}f.hidden=true;s.textContent=JSON.stringify(await q.json(),null,2)}catch(e){s.textContent=String(e)}}
f.onsubmit=(e)=>{e.preventDefault();sessionStorage.setItem(T,document.getElementById('t').value);r()};r();setInterval(r,2000)</script>
</body></html>
`
