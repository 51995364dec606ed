import { type Child, h, type KeyedTable } from './dom'

/** One screen of the console, mounted by the router and refreshed after every metrics sample. */
export interface Page {
  /** For the document title. */
  title: string
  element: HTMLElement
  /** Reads what the page shows again and updates it in place; the router shows what it throws. */
  refresh(): Promise<void>
}

/** The page's `<h1>`; the router moves focus to it so screen readers announce the new page. */
export const heading = (...text: Child[]) => h('h1', { tabindex: -1 }, ...text)

/** Figures shown side by side: a label, a value and optionally a sparkline under it. */
export function tiles(items: Array<{ label: string; value: Child; extra?: Child }>): HTMLElement {
  return h(
    'dl',
    { class: 'tiles' },
    ...items.map((item) =>
      h('div', { class: 'tile' }, h('dt', null, item.label), h('dd', null, item.value, item.extra))
    )
  )
}

/** A definition list of settings: `[label, value]` pairs. */
export function facts(items: Array<[string, Child]>): HTMLElement {
  return h(
    'dl',
    { class: 'facts' },
    ...items.flatMap(([k, v]) => [h('dt', null, k), h('dd', null, v)])
  )
}

/**
 * A page that is a heading, an optional introduction, one table that `load` fills at every
 * refresh, and whatever follows it (a form).
 */
export function tablePage<T>(opts: {
  title: string
  intro?: string
  table: KeyedTable<T>
  load: () => Promise<T[]>
  after?: Child
}): Page {
  return {
    title: opts.title,
    element: h(
      'div',
      null,
      heading(opts.title),
      opts.intro && h('p', { class: 'hint' }, opts.intro),
      h('div', { class: 'scroll' }, opts.table.element),
      opts.after
    ),
    refresh: async () => opts.table.update(await opts.load()),
  }
}
