/**
 * The confirmation every action goes through: a modal that says what will happen, with the fields
 * the action takes, and the button that does it. The action's error stays in the dialog; its success
 * closes it with a message for a toast.
 */
import { html } from 'htm/preact'
import { useEffect, useRef, useState } from 'preact/hooks'

export interface Field {
  readonly name: string
  readonly label: string
  readonly type: 'text' | 'url' | 'number' | 'checkbox'
  readonly value: string | boolean
  readonly required?: boolean
  readonly placeholder?: string
  readonly min?: number
  readonly max?: number
  readonly hint?: string
}

export interface DialogSpec {
  readonly title: string
  readonly text: string
  /** The button that does it. */
  readonly confirm: string
  readonly danger?: boolean
  readonly fields?: readonly Field[]
  /** Does it; resolves with what the toast says, rejects with what the dialog shows. */
  run(values: Readonly<Record<string, string | boolean>>): Promise<string>
}

export function Dialog(p: { readonly spec: DialogSpec; readonly close: (message?: string) => void }) {
  const ref = useRef<HTMLDialogElement>(null)
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string | undefined>(undefined)
  const [values, setValues] = useState<Record<string, string | boolean>>(() =>
    Object.fromEntries((p.spec.fields ?? []).map((f) => [f.name, f.value])),
  )
  useEffect(() => {
    const d = ref.current
    if (d !== null && !d.open) d.showModal()
  }, [])
  const submit = async (ev: Event) => {
    ev.preventDefault()
    setBusy(true)
    setError(undefined)
    try {
      const message = await p.spec.run(values)
      ref.current?.close()
      p.close(message)
    } catch (err) {
      setError((err as Error).message)
      setBusy(false)
    }
  }
  const set = (name: string, value: string | boolean) => setValues((v) => ({ ...v, [name]: value }))
  return html`<dialog class="modal" ref=${ref} onClose=${() => p.close()} aria-labelledby="dialog-title">
    <form onSubmit=${submit} novalidate>
      <h3 id="dialog-title">${p.spec.title}</h3>
      <p>${p.spec.text}</p>
      ${(p.spec.fields ?? []).map((f) =>
        f.type === 'checkbox'
          ? html`<label class="check"
              ><input
                type="checkbox"
                data-field=${f.name}
                checked=${values[f.name] === true}
                onChange=${(e: Event) => set(f.name, (e.target as HTMLInputElement).checked)}
              />
              ${f.label}</label
            >`
          : html`<label class="field"
              ><span>${f.label}</span>
              <input
                type=${f.type}
                data-field=${f.name}
                value=${values[f.name] as string}
                required=${f.required === true}
                placeholder=${f.placeholder ?? ''}
                min=${f.min}
                max=${f.max}
                autocomplete="off"
                onInput=${(e: Event) => set(f.name, (e.target as HTMLInputElement).value)}
              />
              ${f.hint === undefined ? null : html`<small>${f.hint}</small>`}</label
            >`,
      )}
      ${error === undefined ? null : html`<div class="error" role="alert">${error}</div>`}
      <footer>
        <button type="button" class="ghost" onClick=${() => ref.current?.close()}>Cancel</button>
        <button type="submit" class=${p.spec.danger ? 'danger' : 'primary'} data-confirm disabled=${busy}>
          ${busy ? 'Working…' : p.spec.confirm}
        </button>
      </footer>
    </form>
  </dialog>`
}
