/**
 * The console's few DOM helpers. Text from the API (names, payloads, headers) is only ever set
 * as text nodes or attribute values, never parsed as HTML.
 */

/** A child of `h`: nodes as they are, strings and numbers as text, nothing for the rest. */
export type Child = Node | string | number | null | undefined | false

type Attrs = Record<string, string | number | boolean | null | undefined | EventListener>

function append(node: Element, children: Child[]) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    node.append(child instanceof Node ? child : String(child))
  }
}

function setAttrs(node: Element, attrs: Attrs | null | undefined) {
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (typeof value === 'function') node.addEventListener(name.slice(2).toLowerCase(), value)
    else if (value === true) node.setAttribute(name, '')
    else if (value !== false && value !== null && value !== undefined) {
      node.setAttribute(name, String(value))
    }
  }
}

/** An HTML element; attributes named `on…` with a function are event listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  setAttrs(node, attrs)
  append(node, children)
  return node
}

/** An SVG element, as `h` makes HTML ones. */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Child[]
): SVGElementTagNameMap[K] {
  const node = document.createElementNS('http://www.w3.org/2000/svg', tag)
  setAttrs(node, attrs)
  append(node, children)
  return node
}

/** Replaces everything inside `node` with `children`. */
export function fill(node: Element, ...children: Child[]): void {
  node.replaceChildren()
  append(node, children)
}

const integer = new Intl.NumberFormat('en', { maximumFractionDigits: 0 })
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 2 })

/** A count with thousands separators; a dash when unknown. */
export const count = (n: number | null | undefined) => (n == null ? '–' : integer.format(n))

/** A per-second rate. */
export const rate = (n: number | null | undefined) => (n == null ? '–' : `${decimal.format(n)}/s`)

/** Milliseconds, as ms below a second and seconds above. */
export function millis(ms: number | null | undefined): string {
  if (ms == null) return '–'
  return ms < 1000 ? `${decimal.format(ms)} ms` : `${decimal.format(ms / 1000)} s`
}

/** A duration in words: `90 s`, `12 min`, `3 h`, `7 d`. */
export function duration(ms: number): string {
  const s = Math.abs(ms) / 1000
  if (s < 90) return `${Math.round(s)} s`
  if (s < 90 * 60) return `${Math.round(s / 60)} min`
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`
  return `${Math.round(s / 86400)} d`
}

/** A `<time>` saying how long ago or how soon `iso` is, the exact time in its tooltip. */
export function when(iso: string | null | undefined): Child {
  if (!iso) return '–'
  const delta = Date.parse(iso) - Date.now()
  const words =
    Math.abs(delta) < 1500 ? 'now' : delta < 0 ? `${duration(delta)} ago` : `in ${duration(delta)}`
  return h('time', { datetime: iso, title: new Date(iso).toLocaleString() }, words)
}

/** A coloured label for a status word (`active`, `paused`, `healthy`, …). */
export const badge = (status: string, extra?: string) =>
  h('span', { class: `badge badge-${status}` }, extra ? `${status}: ${extra}` : status)

/** One column of a `KeyedTable`. */
export interface Column<T> {
  header: string
  render: (item: T) => Child
  /** Right-aligned, tabular figures. */
  numeric?: boolean
}

/**
 * A table whose rows are kept across refreshes, by key. A cell is replaced only when what it
 * would show changed, so keyboard focus, text selection and open disclosures survive the
 * console's polling.
 */
export class KeyedTable<T> {
  readonly element: HTMLTableElement
  private readonly body = h('tbody')
  // Each row with what its cells last rendered: compared with that rather than with the DOM,
  // which the operator changes (an opened disclosure).
  private readonly rows = new Map<string, { tr: HTMLTableRowElement; shown: string[] }>()
  private readonly emptyRow: HTMLTableRowElement

  constructor(
    caption: string,
    private readonly columns: Column<T>[],
    private readonly key: (item: T) => string,
    empty: string
  ) {
    this.emptyRow = h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, empty))
    this.element = h(
      'table',
      null,
      h('caption', null, caption),
      h(
        'thead',
        null,
        h(
          'tr',
          null,
          ...columns.map((c) =>
            h('th', { scope: 'col', class: c.numeric ? 'num' : null }, c.header)
          )
        )
      ),
      this.body
    )
    this.body.append(this.emptyRow)
  }

  /** Shows `items`, in order. */
  update(items: T[]): void {
    const seen = new Set<string>()
    items.forEach((item, index) => {
      const key = this.key(item)
      seen.add(key)
      let row = this.rows.get(key)
      if (!row) {
        row = { tr: h('tr', { 'data-key': key }), shown: [] }
        for (const c of this.columns) row.tr.append(h('td', { class: c.numeric ? 'num' : null }))
        this.rows.set(key, row)
      }
      const { tr, shown } = row
      this.columns.forEach((column, i) => {
        const cell = tr.cells[i]!
        const next = h('td', null, column.render(item))
        if (shown[i] === next.innerHTML) return
        shown[i] = next.innerHTML
        const hadFocus = cell.contains(document.activeElement)
        cell.replaceChildren(...next.childNodes)
        // A button that changed (Pause became Resume) keeps the keyboard where it was.
        if (hadFocus) cell.querySelector<HTMLElement>('button, a, input, summary')?.focus()
      })
      // Moved only when out of place: moving a row would take the focus out of it.
      if (this.body.children[index] !== tr)
        this.body.insertBefore(tr, this.body.children[index] ?? null)
    })
    for (const [key, row] of this.rows) {
      if (!seen.has(key)) {
        row.tr.remove()
        this.rows.delete(key)
      }
    }
    if (items.length === 0) this.body.append(this.emptyRow)
    else this.emptyRow.remove()
  }
}

const live = () => document.getElementById('announcer')!

/** Most success notes on screen at once; a new one pushes the oldest out. */
export const MAX_NOTES = 3
/** How long a success note stays, ms (an error stays longer, to be read). */
export const NOTE_MS = 4000

/** Says `message` in the page's live region (read by screen readers, shown for a few seconds). */
export function announce(message: string, kind: 'info' | 'error' = 'info'): void {
  const region = live()
  const note = h(
    'p',
    { class: `note note-${kind}`, role: kind === 'error' ? 'alert' : null },
    message
  )
  region.append(note)
  if (kind === 'info') {
    const shown = region.querySelectorAll('.note-info')
    for (let i = 0; i < shown.length - MAX_NOTES; i++) shown[i]?.remove()
  }
  setTimeout(() => note.remove(), kind === 'error' ? 10_000 : NOTE_MS)
}

/**
 * Asks before something that cannot be undone, in a modal `<dialog>` (focus stays inside it,
 * Escape cancels). With `typeToConfirm`, the button works only once that text is typed.
 */
export function confirmAction(opts: {
  title: string
  message: string
  action: string
  typeToConfirm?: string
}): Promise<boolean> {
  return new Promise((resolve) => {
    const input = opts.typeToConfirm
      ? h('input', { id: 'confirm-text', autocomplete: 'off', spellcheck: 'false' })
      : null
    const go = h('button', { type: 'submit', class: 'danger', value: 'yes' }, opts.action)
    const dialog = h(
      'dialog',
      { 'aria-labelledby': 'confirm-title', class: 'confirm' },
      h(
        'form',
        { method: 'dialog' },
        h('h2', { id: 'confirm-title' }, opts.title),
        h('p', null, opts.message),
        input && h('label', { for: 'confirm-text' }, `Type ${opts.typeToConfirm} to confirm`),
        input,
        h(
          'div',
          { class: 'actions' },
          h('button', { type: 'submit', value: 'no', autofocus: true }, 'Cancel'),
          go
        )
      )
    )
    if (input) {
      go.disabled = true
      input.addEventListener('input', () => {
        go.disabled = input.value !== opts.typeToConfirm
      })
    }
    dialog.addEventListener('close', () => {
      dialog.remove()
      resolve(dialog.returnValue === 'yes')
    })
    document.body.append(dialog)
    dialog.showModal()
    ;(input ?? dialog.querySelector<HTMLButtonElement>('button[value=no]'))?.focus()
  })
}

/**
 * Runs `action` for a button: disabled while it runs, its outcome announced. Resolves true
 * when it succeeded.
 */
export async function act(
  button: HTMLButtonElement | null,
  action: () => Promise<string>
): Promise<boolean> {
  if (button) button.disabled = true
  try {
    announce(await action())
    return true
  } catch (err) {
    announce(err instanceof Error ? err.message : String(err), 'error')
    return false
  } finally {
    if (button) button.disabled = false
  }
}

/** Payload or headers as indented JSON. */
export const pretty = (value: unknown) => JSON.stringify(value, null, 2) ?? 'undefined'

/** A `<details>` holding a message's payload, pretty-printed. */
export const payloadView = (payload: unknown) =>
  h('details', { class: 'payload' }, h('summary', null, 'Payload'), h('pre', null, pretty(payload)))
