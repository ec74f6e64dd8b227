/**
 * The steering actions, each a call of the admin API behind a confirmation: drain, disable, enable,
 * set weight (PATCH /api/v1/pools/{pool}/servers/{server}) and add a server (POST …/servers).
 */
import { call, serverPath } from './api.js'
import type { DialogSpec } from './dialog.js'
import type { ServerView } from './types.js'

export type ServerAction = 'drain' | 'disable' | 'enable' | 'weight'

/** The actions that make sense for a server in its state. */
export function actionsFor(s: ServerView): readonly ServerAction[] {
  return s.state === 'draining' || s.state === 'disabled' ? ['enable', 'weight'] : ['drain', 'disable', 'weight']
}

export const ACTION_LABEL: Readonly<Record<ServerAction, string>> = {
  drain: 'Drain',
  disable: 'Disable',
  enable: 'Enable',
  weight: 'Weight',
}

/** The dialog of an action; `applied` gets the server as the API answered. */
export function serverDialog(
  action: ServerAction,
  pool: string,
  s: ServerView,
  applied: (view: ServerView) => void,
): DialogSpec {
  const patch = async (body: Record<string, unknown>) => {
    const view = await call<ServerView>('PATCH', serverPath(pool, s.name), body)
    applied(view)
    return view
  }
  const who = `${pool}/${s.name}`
  switch (action) {
    case 'drain':
      return {
        title: `Drain ${who}?`,
        text: 'It takes no new requests and no new sessions; requests under way finish, and sticky sessions already bound to it stay. On every worker, before the answer.',
        confirm: 'Drain',
        run: async () => {
          await patch({ state: 'draining' })
          return `${who} is draining`
        },
      }
    case 'disable':
      return {
        title: `Disable ${who}?`,
        text: 'It is taken out now: no new requests, and sticky clients bound to it move to another server. Requests under way finish.',
        confirm: 'Disable',
        danger: true,
        run: async () => {
          await patch({ state: 'disabled' })
          return `${who} is disabled`
        },
      }
    case 'enable':
      return {
        title: `Enable ${who}?`,
        text: 'It goes back into rotation (this also undoes a drain set in the config file, and a removal under way).',
        confirm: 'Enable',
        run: async () => {
          const view = await patch({ state: 'active' })
          return `${who} is ${view.state}`
        },
      }
    case 'weight':
      return {
        title: `Set the weight of ${who}`,
        text: 'Its relative share of new requests, 0 to 1000. The split follows at once.',
        confirm: 'Set weight',
        fields: [{ name: 'weight', label: 'Weight', type: 'number', value: String(s.weight), min: 0, max: 1000 }],
        run: async (v) => {
          const weight = Number(v.weight)
          if (String(v.weight).trim() === '' || !Number.isInteger(weight))
            throw new Error('Give a whole number, 0 to 1000.')
          const view = await patch({ weight })
          return `${who}: weight ${view.weight}`
        },
      }
    default: {
      const unknown: never = action
      throw new Error(`unknown action ${String(unknown)}`)
    }
  }
}

export function addServerDialog(pool: string, added: (view: ServerView) => void): DialogSpec {
  return {
    title: `Add a server to ${pool}`,
    text: 'It takes its share of the very next requests, and stays across reloads (and restarts, with admin.stateFile).',
    confirm: 'Add server',
    fields: [
      { name: 'url', label: 'URL', type: 'url', value: '', required: true, placeholder: 'http://10.0.0.7:8080' },
      { name: 'name', label: 'Name', type: 'text', value: '', placeholder: 'host:port', hint: 'Optional.' },
      { name: 'weight', label: 'Weight', type: 'number', value: '1', min: 0, max: 1000 },
      {
        name: 'backup',
        label: 'Backup: used only while no primary server can take requests',
        type: 'checkbox',
        value: false,
      },
    ],
    run: async (v) => {
      const body: Record<string, unknown> = {
        url: String(v.url).trim(),
        weight: Number(v.weight),
        backup: v.backup === true,
      }
      if (String(v.name).trim() !== '') body.name = String(v.name).trim()
      const view = await call<ServerView>('POST', `/api/v1/pools/${encodeURIComponent(pool)}/servers`, body)
      added(view)
      return `${pool}/${view.name} added`
    },
  }
}
