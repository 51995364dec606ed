import { api, ok, type QueuedMessage } from '../api'
import { announce, type Column, fill, h, KeyedTable } from '../dom'

const PAGE_SIZE = 50

/**
 * A queue's messages as `GET /queues/{name}/messages` shows them: oldest first across
 * partitions, without consuming anything, from the oldest kept or from `since()` (an ISO
 * time). It loads when asked to (not on every poll), so an open payload stays open; "Load
 * more" follows the cursor.
 */
export function messageList(
  queue: string,
  caption: string,
  columns: Column<QueuedMessage>[],
  empty: string,
  since: () => string | null = () => null
) {
  const table = new KeyedTable(caption, columns, (m) => `${m.partition}/${m.messageId}`, empty)
  let items: QueuedMessage[] = []
  let cursor: string | null = null
  const status = h('p', { class: 'hint', 'aria-live': 'polite' })
  const more = h('button', { type: 'button' }, 'Load more')
  more.hidden = true

  /** A page from `start` (a time, a cursor, or null for the oldest), shown alone or appended. */
  async function load(start: string | null, append: boolean) {
    const page = await ok(
      api.queues[':name'].messages.$get({
        param: { name: queue },
        query: { limit: String(PAGE_SIZE), ...(start ? { from: start } : {}) },
      })
    )
    items = append ? [...items, ...page.items] : page.items
    cursor = page.nextCursor
    more.hidden = !cursor
    table.update(items)
    fill(
      status,
      `${items.length} message${items.length === 1 ? '' : 's'} shown${cursor ? ', more after them' : ''}.`
    )
  }
  // The count under the table (a live region) says what loaded; only a failure is announced.
  more.addEventListener('click', () =>
    load(cursor, true).catch((err: Error) => announce(err.message, 'error'))
  )

  return {
    element: h('div', { class: 'scroll' }, table.element, status, more),
    /** The messages shown now. */
    items: () => items,
    /** Loads the first page again. */
    reload: () => load(since(), false),
  }
}
