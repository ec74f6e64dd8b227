/**
 * The dashboard: asks for the admin token once (kept in sessionStorage), loads the pools, listeners
 * and the stats history, then follows the event stream. Every `stats` event replaces the views and
 * adds a point to the charts; every other event goes on the timeline.
 */
import { html } from 'htm/preact'
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { ApiError, call, clearToken, follow, getToken, setToken, Unauthorized } from './api.js'
import { Dialog, type DialogSpec } from './dialog.js'
import { ago } from './format.js'
import { appendPoint } from './history.js'
import { Listeners } from './listeners.js'
import { Pools } from './pools.js'
import { Timeline } from './timeline.js'
import type { ListenerView, LoggedEvent, PoolView, ServerView, StatsHistory, Status } from './types.js'

type Auth =
  | { readonly kind: 'checking' }
  | { readonly kind: 'login'; readonly error?: string }
  | { readonly kind: 'in' }
type Link = 'connecting' | 'live' | 'down'

/** Events kept for the timeline (the API keeps as many). */
const EVENTS_KEPT = 500

interface Toast {
  readonly id: number
  readonly text: string
  readonly bad: boolean
}

export function App() {
  const [auth, setAuth] = useState<Auth>({ kind: 'checking' })
  const [pools, setPools] = useState<readonly PoolView[]>([])
  const [listeners, setListeners] = useState<readonly ListenerView[]>([])
  const [status, setStatus] = useState<Status | null>(null)
  const [events, setEvents] = useState<readonly LoggedEvent[]>([])
  const [link, setLink] = useState<Link>('connecting')
  const [failure, setFailure] = useState<string | undefined>(undefined)
  const [dialog, setDialog] = useState<DialogSpec | null>(null)
  const [toasts, setToasts] = useState<readonly Toast[]>([])
  const history = useRef<StatsHistory | null>(null)
  const [, setFrame] = useState(0)

  const toast = useCallback((text: string, bad = false) => {
    const id = Date.now() + Math.random()
    setToasts((t) => [...t, { id, text, bad }])
    setTimeout(() => setToasts((t) => t.filter((x) => x.id !== id)), bad ? 8000 : 4000)
  }, [])

  // Is a token needed, and is the one kept still good?
  useEffect(() => {
    call<{ pools: PoolView[] }>('GET', '/api/v1/pools')
      .then((r) => {
        setPools(r.pools)
        setAuth({ kind: 'in' })
      })
      .catch((err: unknown) => {
        if (err instanceof Unauthorized) {
          const had = getToken() !== null
          if (had) clearToken()
          setAuth({ kind: 'login', ...(had ? { error: 'The kept token was refused. Enter the current one.' } : {}) })
        } else setFailure(`The admin API did not answer: ${(err as Error).message}`)
      })
  }, [])

  // Signed in: load, then follow the stream until signed out.
  useEffect(() => {
    if (auth.kind !== 'in') return
    const stop = new AbortController()
    const pending: LoggedEvent[] = []
    let flush: ReturnType<typeof setTimeout> | undefined
    const out = () => {
      clearToken()
      setAuth({ kind: 'login', error: 'The admin API refused the token. Enter it again.' })
    }
    const refreshStatus = () =>
      call<Status>('GET', '/api/status')
        .then(setStatus)
        .catch(() => {})
    const load = async () => {
      const [p, l, h] = await Promise.all([
        call<{ pools: PoolView[] }>('GET', '/api/v1/pools'),
        call<{ listeners: ListenerView[] }>('GET', '/api/v1/listeners'),
        call<StatsHistory>('GET', '/api/v1/stats'),
      ])
      history.current = h
      setPools((old) => (old.length > 0 && old.some((x) => x.live !== undefined) ? old : p.pools))
      setListeners((old) => (old.length > 0 ? old : l.listeners))
      setFrame((n) => n + 1)
    }
    void refreshStatus()
    load()
      .catch((err: unknown) => (err instanceof Unauthorized ? out() : setFailure((err as Error).message)))
      .then(() =>
        follow(
          {
            open: () => {
              setLink('live')
              setFailure(undefined)
            },
            down: () => setLink('down'),
            unauthorized: out,
            stats: (e) => {
              setPools(e.pools)
              setListeners(e.listeners)
              if (history.current !== null) appendPoint(history.current, e.point)
              setFrame((n) => n + 1)
            },
            event: (e) => {
              pending.push(e)
              if (e.type === 'reload' || e.type === 'worker') void refreshStatus()
              flush ??= setTimeout(() => {
                flush = undefined
                const batch = pending.splice(0).reverse()
                setEvents((old) => [...batch, ...old].slice(0, EVENTS_KEPT))
              }, 50)
            },
          },
          stop.signal,
        ),
      )
    return () => {
      stop.abort()
      clearTimeout(flush)
    }
  }, [auth.kind])

  const applied = useCallback((pool: string, view: ServerView) => {
    // The API's answer shows at once; the next stats event brings the live numbers.
    setPools((list) =>
      list.map((p) => {
        if (p.name !== pool) return p
        const at = p.servers.findIndex((s) => s.name === view.name)
        const servers =
          at < 0
            ? [...p.servers, view]
            : p.servers.map((s, i) => (i === at ? { ...view, ...(s.live === undefined ? {} : { live: s.live }) } : s))
        return { ...p, servers }
      }),
    )
  }, [])

  if (failure !== undefined && auth.kind === 'checking')
    return html`<${Shell}><div class="card notice bad">${failure}</div><//>`
  if (auth.kind === 'checking') return html`<${Shell}><div class="card notice">Connecting to the admin API…</div><//>`
  if (auth.kind === 'login')
    return html`<${Shell}>
      <${Login}
        error=${auth.error}
        done=${(p: PoolView[]) => {
          setPools(p)
          setAuth({ kind: 'in' })
        }}
      />
    <//>`

  return html`<${Shell}
    status=${status}
    link=${link}
    signOut=${
      getToken() === null
        ? undefined
        : () => {
            clearToken()
            setAuth({ kind: 'login' })
          }
    }
  >
    ${failure === undefined ? null : html`<div class="card notice bad">${failure}</div>`}
    <${Listeners} listeners=${listeners} history=${history.current} />
    <div class="layout">
      <main>
        <${Pools} pools=${pools} history=${history.current} ask=${setDialog} applied=${applied} />
      </main>
      <${Timeline} events=${events} />
    </div>
    ${
      dialog === null
        ? null
        : html`<${Dialog}
            spec=${dialog}
            close=${(message?: string) => {
              setDialog(null)
              if (message !== undefined) toast(message)
            }}
          />`
    }
    <div class="toasts" aria-live="polite">
      ${toasts.map((t) => html`<div key=${t.id} class=${`toast ${t.bad ? 'bad' : ''}`} role="status">${t.text}</div>`)}
    </div>
  <//>`
}

function Shell(p: {
  readonly status?: Status | null
  readonly link?: Link
  readonly signOut?: (() => void) | undefined
  readonly children?: unknown
}) {
  const s = p.status
  const workers = s?.workers?.length ?? 0
  return html`<div class="page">
    <header class="top">
      <div class="brand">
        <svg viewBox="0 0 24 24" width="22" height="22" aria-hidden="true">
          <path d="M3 6h6l6 12h6M3 18h6l2-4M15 6h6" fill="none" stroke="currentColor" stroke-width="2.2" stroke-linecap="round" stroke-linejoin="round" />
        </svg>
        <span>Switchyard</span>
      </div>
      ${
        s === null || s === undefined
          ? null
          : html`<div class="meta">
              <span>v${s.version}</span>
              <span>generation ${s.generation}</span>
              <span title=${s.startedAt}>up ${ago(s.startedAt)}</span>
              ${workers > 0 ? html`<span>${workers} workers</span>` : null}
            </div>`
      }
      <span class="spacer"></span>
      ${p.link === undefined ? null : html`<span class=${`link link-${p.link}`} data-testid="link"><i class="link-dot"></i>${LINK_TEXT[p.link]}</span>`}
      ${p.signOut === undefined ? null : html`<button class="ghost small" onClick=${p.signOut}>Sign out</button>`}
    </header>
    ${p.children}
  </div>`
}

const LINK_TEXT: Readonly<Record<Link, string>> = { connecting: 'Connecting', live: 'Live', down: 'Reconnecting' }

function Login(p: { readonly error: string | undefined; readonly done: (pools: PoolView[]) => void }) {
  const [error, setError] = useState(p.error)
  const [busy, setBusy] = useState(false)
  const input = useRef<HTMLInputElement>(null)
  useEffect(() => input.current?.focus(), [])
  const submit = async (ev: Event) => {
    ev.preventDefault()
    const token = input.current?.value.trim() ?? ''
    if (token === '') return setError('Enter the admin token.')
    setBusy(true)
    setToken(token)
    try {
      const r = await call<{ pools: PoolView[] }>('GET', '/api/v1/pools')
      p.done(r.pools)
    } catch (err) {
      clearToken()
      setError(
        err instanceof Unauthorized
          ? 'That token was refused.'
          : err instanceof ApiError
            ? err.message
            : `The admin API did not answer: ${(err as Error).message}`,
      )
      setBusy(false)
    }
  }
  return html`<form class="card login" onSubmit=${submit} autocomplete="off">
    <h1>Sign in</h1>
    <p>
      This admin API needs its token (<code>admin.token</code>; the demo prints it). It is kept in this tab's
      session storage until you sign out or close the tab, and sent only in the Authorization header.
    </p>
    <label class="field"
      ><span>Admin token</span>
      <input ref=${input} type="password" id="token" autocomplete="off" spellcheck="false" aria-invalid=${error !== undefined}
    /></label>
    ${error === undefined ? null : html`<div class="error" role="alert">${error}</div>`}
    <footer><button type="submit" class="primary" disabled=${busy}>${busy ? 'Checking…' : 'Sign in'}</button></footer>
  </form>`
}
