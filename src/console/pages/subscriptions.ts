import { api, listAllSubscriptions, ok, type Subscription } from '../api'
import { bars, sparkline } from '../charts'
import { act, badge, confirmAction, count, fill, h, KeyedTable, millis, pretty, when } from '../dom'
import { facts, heading, type Page, tablePage, tiles } from '../page'
import { latestSample, SPARK_MS, series, span } from '../samples'
import { queueLink } from './queues'

const consumer = (id: string) => latestSample()?.consumers.get(id)

const label = (s: Subscription) => `${s.queue} ${s.consumerGroup}/${s.consumerName}`

/** Pause or resume, whichever applies; `done` runs after it succeeded. */
function pauseButton(s: Subscription, done: () => Promise<void>): HTMLButtonElement {
  const pausing = s.status === 'active'
  const button = h(
    'button',
    { type: 'button', 'aria-label': `${pausing ? 'Pause' : 'Resume'} ${label(s)}` },
    pausing ? 'Pause' : 'Resume'
  )
  button.addEventListener(
    'click',
    () =>
      void act(button, async () => {
        const param = { param: { id: s.id } }
        await ok(
          pausing
            ? api.subscriptions[':id'].pause.$post(param)
            : api.subscriptions[':id'].resume.$post(param)
        )
        await done()
        return `${pausing ? 'Paused' : 'Resumed'} ${label(s)}.`
      })
  )
  return button
}

/** Every subscription with its status, lag, outcomes and pause/resume. */
export function subscriptionsPage(): Page {
  const table = new KeyedTable<Subscription>(
    'Subscriptions. Figures from /metrics/consumers; failed counts redeliveries and dead letters.',
    [
      { header: 'Queue', render: (s) => queueLink(s.queue) },
      {
        header: 'Group / consumer',
        render: (s) =>
          h('a', { href: `#/subscriptions/${s.id}` }, `${s.consumerGroup} / ${s.consumerName}`),
      },
      { header: 'Type', render: (s) => (s.subscriptionType === 'webhook' ? 'webhook' : 'pull') },
      { header: 'Status', render: (s) => badge(s.status, s.statusReason ?? undefined) },
      { header: 'Lag', numeric: true, render: (s) => count(consumer(s.id)?.lag) },
      { header: 'Pending', numeric: true, render: (s) => count(consumer(s.id)?.pending) },
      { header: 'Delivered', numeric: true, render: (s) => count(consumer(s.id)?.delivered) },
      { header: 'Acked', numeric: true, render: (s) => count(consumer(s.id)?.acked) },
      { header: 'Failed', numeric: true, render: (s) => count(consumer(s.id)?.failed) },
      { header: 'Dead letters', numeric: true, render: (s) => count(consumer(s.id)?.deadLettered) },
      {
        header: 'Processing',
        numeric: true,
        render: (s) => millis(consumer(s.id)?.avgProcessingMs),
      },
      {
        header: 'Last ack',
        render: (s) => when(consumer(s.id)?.lastConsumedAt ?? s.lastConsumedAt),
      },
      { header: 'Actions', render: (s) => pauseButton(s, () => page.refresh()) },
    ],
    (s) => s.id,
    'No subscriptions yet (POST /api/v1/mq/subscriptions).'
  )
  const page: Page = tablePage({
    title: 'Subscriptions',
    table,
    load: () => listAllSubscriptions(),
  })
  return page
}

/** The seek form: moves the subscription's whole group; `seeked` runs after it succeeded. */
function seekForm(
  id: string,
  current: () => Subscription | undefined,
  seeked: () => Promise<void>
) {
  const position = h(
    'select',
    { id: 'seek-to' },
    h('option', { value: 'earliest' }, 'earliest: replay every message still in the queue'),
    h('option', { value: 'latest' }, 'latest: skip everything not yet read'),
    h('option', { value: 'time' }, 'a time: replay from then')
  )
  const time = h('input', { id: 'seek-time', type: 'datetime-local', step: 1 })
  const timeLabel = h('label', { for: 'seek-time' }, 'Time (your local time)')
  const timeRow = h('div', null, timeLabel, time)
  timeRow.hidden = true
  position.addEventListener('change', () => {
    timeRow.hidden = position.value !== 'time'
  })
  const seek = h('button', { type: 'submit' }, 'Seek')
  const form = h(
    'form',
    { class: 'stacked-form', 'aria-labelledby': 'seek-title' },
    h('h2', { id: 'seek-title' }, 'Seek'),
    h(
      'p',
      { class: 'hint' },
      'Moves the whole consumer group, every consumer in it, to a new position.'
    ),
    h('label', { for: 'seek-to' }, 'Move to'),
    position,
    timeRow,
    seek
  )
  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const sub = current()
    if (!sub) return
    const to = position.value === 'time' ? new Date(time.value).toISOString() : position.value
    const sure = await confirmAction({
      title: `Seek group ${sub.consumerGroup}?`,
      message: `Every consumer of ${sub.consumerGroup} on ${sub.queue} continues from ${to}.`,
      action: 'Seek',
    })
    if (!sure) return
    await act(seek, async () => {
      const res = await ok(api.subscriptions[':id'].seek.$post({ param: { id }, json: { to } }))
      await seeked()
      return `Group moved to ${res.position}.`
    })
  })
  return form
}

/** A subscription's live figures: lag over time, pending, processing time and outcomes. */
function subscriptionFigures(s: Subscription) {
  const within = span(SPARK_MS)
  const stats = s.stats
  return [
    tiles([
      {
        label: 'Lag',
        value: count(stats?.lag),
        extra: sparkline(
          series((x) => x.consumers.get(s.id)?.lag, within),
          {
            label: 'lag, last minutes',
            span: within,
            format: count,
          }
        ),
      },
      { label: 'Pending', value: count(stats?.pending) },
      { label: 'Processing time', value: millis(consumer(s.id)?.avgProcessingMs) },
      { label: 'Last ack', value: when(s.lastConsumedAt) },
    ]),
    h('h2', null, 'Delivery outcomes'),
    stats &&
      bars([
        { name: 'Delivered', value: stats.delivered, style: 0 },
        { name: 'Acknowledged', value: stats.acked, style: 1 },
        { name: 'Failed attempts', value: stats.failed, style: 2 },
        { name: 'Dead-lettered', value: stats.deadLettered, style: 3 },
      ]),
    s.subscriptionType === 'webhook' &&
      h(
        'p',
        { class: 'hint' },
        'The API has no list of a webhook’s attempts one by one (status codes, latency). Shown instead: the outcome counts above, the mean processing time over the last minute, the status reason (why a 410 Gone paused it), and on the Dead letters page each failed message’s last answer (e.g. “webhook: endpoint answered 500”).'
      ),
  ]
}

/** A subscription's settings. */
function subscriptionSettings(s: Subscription) {
  return facts([
    ['Queue', queueLink(s.queue)],
    [
      'Type',
      s.subscriptionType === 'webhook' ? 'webhook (the service pushes)' : 'pull (the client pulls)',
    ],
    ['Status reason', s.statusReason ?? '–'],
    ...(s.subscriptionType === 'webhook'
      ? ([
          [
            'Webhook',
            `${String(s.handlerConfig.method ?? 'POST')} ${String(s.handlerConfig.url ?? '')}`,
          ],
          ['Timeout', millis(Number(s.handlerConfig.timeoutMs ?? 15_000))],
        ] as Array<[string, string]>)
      : []),
    ['Visibility timeout', millis(s.sessionTimeoutMs)],
    [
      'Retries',
      `dead-lettered after ${s.maxRetryAttempts} deliver${s.maxRetryAttempts === 1 ? 'y' : 'ies'}, ${s.retryBackoff} backoff from ${millis(s.retryDelayMs)}`,
    ],
    [
      'Dead letters go to',
      h(
        'a',
        { href: `#/dead-letters/${encodeURIComponent(s.deadLetterQueue)}` },
        s.deadLetterQueue
      ),
    ],
    ['Filter', s.messageFilter ? h('pre', null, pretty(s.messageFilter)) : 'none: every message'],
    [
      'Ordering',
      s.ordering === 'key'
        ? 'by key: one message of a key out at a time, in publish order'
        : 'none',
    ],
    ['New group starts at', s.offsetResetPolicy],
    ['Created', when(s.createdAt)],
  ])
}

/** One subscription: its settings, outcomes, lag over time, pause/resume and seek. */
export function subscriptionPage(id: string): Page {
  const title = heading('Subscription')
  const actions = h('div', { class: 'actions' })
  const figures = h('div')
  const settings = h('div')
  let current: Subscription | undefined
  let shownStatus: string | undefined

  const page: Page = {
    title: 'Subscription',
    element: h(
      'div',
      null,
      h('p', { class: 'crumbs' }, h('a', { href: '#/subscriptions' }, 'Subscriptions'), ' / '),
      title,
      actions,
      figures,
      settings,
      seekForm(
        id,
        () => current,
        () => page.refresh()
      )
    ),
    async refresh() {
      const s = await ok(api.subscriptions[':id'].$get({ param: { id } }))
      const firstLoad = !current
      current = s
      page.title = `${s.consumerGroup}/${s.consumerName}`
      fill(title, `${s.consumerGroup} / ${s.consumerName} `, badge(s.status))
      if (s.status !== shownStatus) {
        shownStatus = s.status
        const hadFocus = actions.contains(document.activeElement)
        const button = pauseButton(s, () => page.refresh())
        fill(actions, button)
        if (hadFocus) button.focus()
      }
      fill(figures, ...subscriptionFigures(s))
      if (firstLoad) fill(settings, h('h2', null, 'Settings'), subscriptionSettings(s))
    },
  }
  return page
}
