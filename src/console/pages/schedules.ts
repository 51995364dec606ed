import { allPages, api, ok, type Schedule } from '../api'
import { act, badge, confirmAction, h, KeyedTable, payloadView, when } from '../dom'
import { type Page, tablePage } from '../page'
import { queueLink } from './queues'

/** Pause or resume (unless it completed) and delete one schedule; `refresh` runs after either. */
function actions(s: Schedule, refresh: () => Promise<void>) {
  const what = `schedule ${s.cron} on ${s.queue}`
  const toggle =
    s.status === 'completed'
      ? null
      : h(
          'button',
          {
            type: 'button',
            'aria-label': `${s.status === 'active' ? 'Pause' : 'Resume'} ${what}`,
          },
          s.status === 'active' ? 'Pause' : 'Resume'
        )
  toggle?.addEventListener(
    'click',
    () =>
      void act(toggle, async () => {
        const param = { param: { id: s.id } }
        const res = await ok(
          s.status === 'active'
            ? api.schedules[':id'].pause.$post(param)
            : api.schedules[':id'].resume.$post(param)
        )
        await refresh()
        return `${res.status === 'paused' ? 'Paused' : 'Resumed'} ${what}.`
      })
  )
  const remove = h(
    'button',
    { type: 'button', class: 'danger', 'aria-label': `Delete ${what}` },
    'Delete…'
  )
  remove.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: 'Delete this schedule?',
      message: `${what} stops; messages it already published stay.`,
      action: 'Delete',
    })
    if (!sure) return
    await act(remove, async () => {
      await ok(api.schedules[':id'].$delete({ param: { id: s.id } }))
      await refresh()
      return `Deleted ${what}.`
    })
  })
  return h('span', { class: 'row-actions' }, toggle, remove)
}

/** Recurring schedules: next and last runs, pause/resume and delete. */
export function schedulesPage(): Page {
  const refresh = () => page.refresh()

  const table = new KeyedTable<Schedule>(
    'Recurring schedules',
    [
      { header: 'Queue', render: (s) => queueLink(s.queue) },
      { header: 'Cron', render: (s) => h('span', null, h('code', null, s.cron), ` ${s.timezone}`) },
      { header: 'Status', render: (s) => badge(s.status) },
      {
        header: 'Next run',
        // A paused schedule keeps the nextRunAt it had, which soon lies in the past.
        render: (s) => (s.status === 'paused' ? 'paused' : when(s.nextRunAt)),
      },
      { header: 'Last run', render: (s) => when(s.lastRunAt) },
      {
        header: 'Runs',
        numeric: true,
        render: (s) => (s.maxRuns ? `${s.runs} of ${s.maxRuns}` : s.runs),
      },
      { header: 'Payload', render: (s) => payloadView(s.payload) },
      { header: 'Actions', render: (s) => actions(s, refresh) },
    ],
    (s) => s.id,
    'No recurring schedules (POST /api/v1/mq/publish/scheduled with a cron).'
  )

  const page: Page = tablePage({
    title: 'Schedules',
    table,
    load: () =>
      allPages((cursor) =>
        ok(api.schedules.$get({ query: { limit: '1000', ...(cursor ? { cursor } : {}) } }))
      ),
  })
  return page
}
