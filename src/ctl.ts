/**
 * `switchyard ctl`: a small client of a running instance's admin API (docs/operations.md).
 *
 * The address comes from `--admin URL` or SWITCHYARD_ADMIN_URL (default http://127.0.0.1:9901), the
 * token from SWITCHYARD_ADMIN_TOKEN (never from argv, where other users of the machine could read
 * it). Exit codes: 0 done, 1 the API refused or could not be reached, 2 bad usage.
 */
import { readFile } from 'node:fs/promises'
import { parseArgs } from 'node:util'

interface Io {
  out(text: string): void
  err(text: string): void
}

export const CTL_USAGE = `Usage: switchyard ctl [--admin URL] [--json] COMMAND

Commands:
  pools                        every pool and server: state, weight, in flight, requests, errors, p99
  drain POOL/SERVER            no new requests or sessions; bound sessions stay
  disable POOL/SERVER          out now: no new requests, sessions move
  enable POOL/SERVER           back in rotation
  weight POOL/SERVER N         set the weight (0 to 1000)
  add POOL URL [--name NAME] [--weight N] [--backup]
  remove POOL/SERVER           drain, then remove once its requests are done
  reload                       reload the config file
  apply FILE                   apply a whole config file (as PUT /api/v1/config)
  overrides                    the runtime changes in force
  reset                        drop every runtime change
  events                       follow the event stream (Ctrl-C stops)

Environment:
  SWITCHYARD_ADMIN_URL    admin API address (default http://127.0.0.1:9901)
  SWITCHYARD_ADMIN_TOKEN  admin token, sent as Authorization: Bearer
`

const DEFAULT_ADMIN = 'http://127.0.0.1:9901'

interface Answer {
  readonly status: number
  readonly body: unknown
}

class Client {
  constructor(
    readonly base: string,
    readonly token: string | undefined,
  ) {}

  headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...extra, ...(this.token === undefined ? {} : { authorization: `Bearer ${this.token}` }) }
  }

  async call(method: string, path: string, body?: string, contentType = 'application/json'): Promise<Answer> {
    const r = await fetch(`${this.base}${path}`, {
      method,
      headers: this.headers(body === undefined ? {} : { 'content-type': contentType }),
      ...(body === undefined ? {} : { body }),
    })
    const text = await r.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: kept as text
    }
    return { status: r.status, body: parsed }
  }
}

export async function ctlCommand(argv: readonly string[], io: Io, env = process.env): Promise<number> {
  let parsed: ReturnType<typeof parse>
  try {
    parsed = parse(argv)
  } catch (err) {
    io.err(`switchyard ctl: ${(err as Error).message}\n\n${CTL_USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help) {
    io.out(CTL_USAGE)
    return 0
  }
  const [command, ...args] = positionals
  const base = (values.admin ?? env.SWITCHYARD_ADMIN_URL ?? DEFAULT_ADMIN).replace(/\/+$/, '')
  const client = new Client(/^https?:\/\//.test(base) ? base : `http://${base}`, env.SWITCHYARD_ADMIN_TOKEN)
  const usage = (message: string) => {
    io.err(`switchyard ctl: ${message}\nRun "switchyard ctl --help" for usage.`)
    return 2
  }
  const server = (text: string | undefined): string | undefined => {
    const m = text === undefined ? null : /^([^/]+)\/(.+)$/.exec(text)
    return m === null
      ? undefined
      : `/api/v1/pools/${encodeURIComponent(m[1] as string)}/servers/${encodeURIComponent(m[2] as string)}`
  }
  let request: { method: string; path: string; body?: string; contentType?: string } | undefined
  switch (command) {
    case 'pools':
    case 'overrides':
    case 'events':
      if (args.length !== 0) return usage(`${command} takes no arguments`)
      if (command === 'events') return follow(client, io)
      request = { method: 'GET', path: command === 'pools' ? '/api/v1/pools' : '/api/v1/overrides' }
      break
    case 'drain':
    case 'disable':
    case 'enable': {
      const p = server(args[0])
      if (p === undefined || args.length !== 1) return usage(`${command} takes one POOL/SERVER`)
      const state = command === 'drain' ? 'draining' : command === 'disable' ? 'disabled' : 'active'
      request = { method: 'PATCH', path: p, body: JSON.stringify({ state }) }
      break
    }
    case 'weight': {
      const p = server(args[0])
      const weight = Number(args[1])
      if (p === undefined || args.length !== 2 || !Number.isInteger(weight))
        return usage('weight takes POOL/SERVER and a whole number')
      request = { method: 'PATCH', path: p, body: JSON.stringify({ weight }) }
      break
    }
    case 'add': {
      const [pool, url] = args
      if (pool === undefined || url === undefined || args.length !== 2) return usage('add takes POOL and URL')
      const weight = values.weight === undefined ? undefined : Number(values.weight)
      if (weight !== undefined && !Number.isInteger(weight)) return usage('--weight takes a whole number')
      request = {
        method: 'POST',
        path: `/api/v1/pools/${encodeURIComponent(pool)}/servers`,
        body: JSON.stringify({
          url,
          ...(values.name === undefined ? {} : { name: values.name }),
          ...(weight === undefined ? {} : { weight }),
          ...(values.backup ? { backup: true } : {}),
        }),
      }
      break
    }
    case 'remove': {
      const p = server(args[0])
      if (p === undefined || args.length !== 1) return usage('remove takes one POOL/SERVER')
      request = { method: 'DELETE', path: p }
      break
    }
    case 'reload':
      if (args.length !== 0) return usage('reload takes no arguments')
      request = { method: 'POST', path: '/api/v1/reload' }
      break
    case 'reset':
      if (args.length !== 0) return usage('reset takes no arguments')
      request = { method: 'DELETE', path: '/api/v1/overrides' }
      break
    case 'apply': {
      const file = args[0]
      if (file === undefined || args.length !== 1) return usage('apply takes one FILE')
      let text: string
      try {
        text = await readFile(file, 'utf8')
      } catch (err) {
        io.err(`switchyard ctl: ${file}: ${(err as Error).message}`)
        return 1
      }
      request = { method: 'PUT', path: '/api/v1/config', body: text, contentType: 'application/yaml' }
      break
    }
    case undefined:
      return usage('no command given')
    default:
      return usage(`unknown command "${command}"`)
  }
  let answer: Answer
  try {
    answer = await client.call(request.method, request.path, request.body, request.contentType)
  } catch (err) {
    io.err(`switchyard ctl: cannot reach the admin API at ${client.base}: ${causeOf(err)}`)
    return 1
  }
  if (answer.status >= 400) {
    io.err(`switchyard ctl: ${answer.status}: ${describeError(answer.body, command === 'apply' ? args[0] : undefined)}`)
    return 1
  }
  if (values.json) io.out(JSON.stringify(answer.body, null, 2))
  else io.out(describe(command, answer.body))
  return 0
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      admin: { type: 'string' },
      json: { type: 'boolean' },
      name: { type: 'string' },
      weight: { type: 'string' },
      backup: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  })
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}

/** An error answer as a line per problem; a config's issues as `validate` prints them. */
function describeError(body: unknown, file: string | undefined): string {
  const b = body as {
    error?: string
    issues?: { file?: string; line?: number; col?: number; path: string; message: string }[]
  }
  if (typeof b?.error !== 'string') return String(body)
  const issues = (b.issues ?? []).map((i) => {
    const where = i.line === undefined ? '' : `${file ?? i.file ?? ''}:${i.line}:${i.col ?? 1}: `
    return `\n  ${where}${i.path}: ${i.message}`
  })
  return `${b.error}${issues.join('')}`
}

interface ServerRow {
  name: string
  state: string
  weight: number
  inFlight: number
  requests: number
  errors: number
  latencyMs: { p99: number | null }
  override: unknown
}

/** A short human answer for each command. */
function describe(command: string | undefined, body: unknown): string {
  switch (command) {
    case 'pools': {
      const pools = (body as { pools: { name: string; algorithm: string; servers: ServerRow[] }[] }).pools
      const rows: string[][] = [['POOL/SERVER', 'STATE', 'WEIGHT', 'IN FLIGHT', 'REQUESTS', 'ERRORS', 'P99 MS']]
      for (const p of pools)
        for (const s of p.servers)
          rows.push([
            `${p.name}/${s.name}${s.override === null ? '' : ' *'}`,
            s.state,
            String(s.weight),
            String(s.inFlight),
            String(s.requests),
            String(s.errors),
            s.latencyMs.p99 === null ? '-' : String(s.latencyMs.p99),
          ])
      const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? []
      const lines = rows.map((r) =>
        r
          .map((c, i) => c.padEnd(widths[i] ?? 0))
          .join('  ')
          .trimEnd(),
      )
      return `${lines.join('\n')}\n(* runtime override)`
    }
    case 'drain':
    case 'disable':
    case 'enable':
    case 'weight':
    case 'add':
    case 'remove': {
      const s = body as ServerRow
      return `${s.name}: ${s.state}, weight ${s.weight}, ${s.inFlight} in flight`
    }
    case 'reload':
    case 'apply':
    case 'reset':
      return `ok: configuration generation ${(body as { generation: number }).generation} active`
    default:
      return JSON.stringify(body, null, 2)
  }
}

/** Prints each event of the stream as one line until it ends. */
async function follow(client: Client, io: Io): Promise<number> {
  let r: Response
  try {
    r = await fetch(`${client.base}/api/v1/events`, { headers: client.headers() })
  } catch (err) {
    io.err(`switchyard ctl: cannot reach the admin API at ${client.base}: ${causeOf(err)}`)
    return 1
  }
  if (r.status !== 200 || r.body === null) {
    io.err(`switchyard ctl: ${r.status}: ${describeError(await r.json().catch(() => ''), undefined)}`)
    return 1
  }
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const data = buffer
        .slice(0, end)
        .split('\n')
        .find((l) => l.startsWith('data: '))
      buffer = buffer.slice(end + 2)
      if (data === undefined) continue
      const e = JSON.parse(data.slice(6)) as { time: string; type: string; message?: string }
      io.out(`${e.time}  ${e.type.padEnd(8)}  ${e.message ?? eventText(e)}`)
    }
  }
  return 0
}

function eventText(e: Record<string, unknown>): string {
  if (e.type === 'health') return `${e.pool}/${e.server} ${e.state}: ${e.reason}`
  if (e.type === 'ejection')
    return `${e.pool}/${e.server} ${e.ejected ? 'ejected' : 'back'} (${e.reason}${e.worker === undefined ? '' : `, worker ${e.worker}`})`
  return JSON.stringify(e)
}
