import { api, listAllQueues, listAllSubscriptions, ok, type Queue, type Subscription } from '../api'
import { sparkline } from '../charts'
import {
  act,
  badge,
  confirmAction,
  count,
  duration,
  fill,
  h,
  KeyedTable,
  payloadView,
  pretty,
  rate,
  when,
} from '../dom'
import { facts, heading, type Page, tablePage, tiles } from '../page'
import { latestSample, SPARK_MS, series, span } from '../samples'
import { messageLink } from './message'
import { messageList } from './messages'

/** A link to a queue's page. */
export const queueLink = (name: string) =>
  h('a', { href: `#/queues/${encodeURIComponent(name)}` }, name)

/** A queue's publish or acknowledge rate over the last minutes, as a sparkline and a figure. */
export function rateCell(queue: string, which: 'publishRate' | 'consumeRate') {
  const label = which === 'publishRate' ? 'published' : 'acknowledged'
  const within = span(SPARK_MS)
  return h(
    'span',
    { class: 'rate' },
    sparkline(
      series((s) => s.topics.get(queue)?.[which], within),
      {
        label: `${queue} ${label} per second, last minutes`,
        span: within,
        format: rate,
      }
    ),
    rate(latestSample()?.topics.get(queue)?.[which])
  )
}

/** The queue list: figures from `/metrics/topics`, sparklines from the console's samples. */
export function queuesPage(): Page {
  const topic = (name: string) => latestSample()?.topics.get(name)
  const table = new KeyedTable<Queue>(
    'Queues, by name. Rates are per second, averaged by the API over the last minute.',
    [
      {
        header: 'Queue',
        render: (q) =>
          h(
            'span',
            null,
            queueLink(q.name),
            q.name.endsWith('.dlq') && h('span', { class: 'tag' }, 'dead letters'),
            q.status !== 'active' && badge(q.status)
          ),
      },
      { header: 'Partitions', numeric: true, render: (q) => q.partitionCount },
      { header: 'Length', numeric: true, render: (q) => count(topic(q.name)?.length) },
      { header: 'Pending', numeric: true, render: (q) => count(topic(q.name)?.pending) },
      { header: 'Scheduled', numeric: true, render: (q) => count(topic(q.name)?.scheduled) },
      { header: 'Lag', numeric: true, render: (q) => count(topic(q.name)?.lag) },
      { header: 'Published', render: (q) => rateCell(q.name, 'publishRate') },
      { header: 'Acknowledged', render: (q) => rateCell(q.name, 'consumeRate') },
    ],
    (q) => q.name,
    'No queues yet. Create one below or with POST /api/v1/mq/queues.'
  )

  const name = h('input', {
    id: 'new-queue-name',
    name: 'name',
    required: true,
    pattern: '[A-Za-z0-9][A-Za-z0-9._\\-]{0,199}',
    autocomplete: 'off',
  })
  const partitions = h('input', {
    id: 'new-queue-partitions',
    name: 'partitions',
    type: 'number',
    min: 1,
    max: 64,
    value: 1,
  })
  const create = h('button', { type: 'submit' }, 'Create queue')
  const form = h(
    'form',
    { class: 'inline-form', 'aria-labelledby': 'new-queue-title' },
    h('h2', { id: 'new-queue-title' }, 'New queue'),
    h('label', { for: 'new-queue-name' }, 'Name'),
    name,
    h('label', { for: 'new-queue-partitions' }, 'Partitions'),
    partitions,
    create
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(create, async () => {
      const queue = await ok(
        api.queues.$post({ json: { name: name.value, partitionCount: Number(partitions.value) } })
      )
      name.value = ''
      await page.refresh()
      return `Created queue ${queue.name}.`
    })
  })

  const page: Page = tablePage({ title: 'Queues', table, load: listAllQueues, after: form })
  return page
}

/** The subscriptions of one queue, with their lag and pending from the console's samples. */
function queueSubscriptions() {
  return new KeyedTable<Subscription>(
    'Subscriptions of this queue',
    [
      {
        header: 'Group / consumer',
        render: (s) =>
          h('a', { href: `#/subscriptions/${s.id}` }, `${s.consumerGroup} / ${s.consumerName}`),
      },
      { header: 'Type', render: (s) => (s.subscriptionType === 'webhook' ? 'webhook' : 'pull') },
      { header: 'Status', render: (s) => badge(s.status) },
      {
        header: 'Lag',
        numeric: true,
        render: (s) => count(latestSample()?.consumers.get(s.id)?.lag),
      },
      {
        header: 'Pending',
        numeric: true,
        render: (s) => count(latestSample()?.consumers.get(s.id)?.pending),
      },
    ],
    (s) => s.id,
    'No subscriptions: messages wait until a consumer group reads them.'
  )
}

/** A peek at one queue's messages, from a chosen time, with the controls that reload it. */
function queueMessages(queueName: string) {
  // The API peeks oldest first from a time; recent messages are those since a while ago.
  const startAt = h(
    'select',
    { id: 'messages-from' },
    h('option', { value: '0' }, 'the oldest still kept'),
    h('option', { value: '5' }, 'the last 5 minutes'),
    h('option', { value: '60' }, 'the last hour'),
    h('option', { value: '1440' }, 'the last 24 hours')
  )
  const messages = messageList(
    queueName,
    'Messages, oldest first (a peek: nothing is consumed)',
    [
      { header: 'Message id', render: (m) => messageLink(queueName, m.messageId) },
      { header: 'Partition', numeric: true, render: (m) => m.partition },
      { header: 'Published', render: (m) => when(m.publishedAt) },
      { header: 'Key', render: (m) => m.key ?? '' },
      {
        header: 'Headers',
        render: (m) =>
          Object.keys(m.headers).length === 0
            ? ''
            : h(
                'details',
                null,
                h('summary', null, `${Object.keys(m.headers).length} headers`),
                h('pre', null, pretty(m.headers))
              ),
      },
      { header: 'Payload', render: (m) => payloadView(m.payload) },
    ],
    'No messages in this queue.',
    () => {
      const minutes = Number(startAt.value)
      return minutes > 0 ? new Date(Date.now() - minutes * 60_000).toISOString() : null
    }
  )

  const reloadMessages = h('button', { type: 'button' }, 'Refresh messages')
  startAt.addEventListener('change', () => reloadMessages.click())
  reloadMessages.addEventListener(
    'click',
    () =>
      void act(reloadMessages, async () => {
        await messages.reload()
        return 'Messages reloaded.'
      })
  )
  const section = h(
    'section',
    { 'aria-labelledby': 'messages-title' },
    h('h2', { id: 'messages-title' }, 'Messages'),
    h(
      'div',
      { class: 'actions' },
      h('label', { for: 'messages-from' }, 'Show from'),
      startAt,
      reloadMessages
    ),
    messages.element
  )
  return { reload: () => messages.reload(), section }
}

/** The form that publishes one message to the queue; `published` refreshes what shows it. */
function publishForm(queueName: string, published: () => Promise<unknown>) {
  const payload = h(
    'textarea',
    { id: 'publish-payload', rows: 4, spellcheck: 'false' },
    '{\n  "hello": "world"\n}'
  )
  const key = h('input', { id: 'publish-key', autocomplete: 'off' })
  const send = h('button', { type: 'submit' }, 'Publish')
  const form = h(
    'form',
    { class: 'stacked-form', 'aria-labelledby': 'publish-title' },
    h('h2', { id: 'publish-title' }, 'Publish a message'),
    h('label', { for: 'publish-payload' }, 'Payload (JSON)'),
    payload,
    h('label', { for: 'publish-key' }, 'Key (optional: same key, same partition, in order)'),
    key,
    send
  )
  form.addEventListener('submit', (event) => {
    event.preventDefault()
    void act(send, async () => {
      let body: unknown
      try {
        body = JSON.parse(payload.value)
      } catch {
        throw new Error('The payload is not valid JSON.')
      }
      const res = await ok(
        api.publish.$post({
          json: { queue: queueName, payload: body, ...(key.value ? { key: key.value } : {}) },
        })
      )
      await published()
      return `Published ${res.messageId} to partition ${res.partition}.`
    })
  })
  return form
}

/** Purge and delete, each behind a confirmation; `purged` refreshes what shows the messages. */
function dangerZone(queueName: string, purged: () => Promise<unknown>) {
  const purge = h('button', { type: 'button', class: 'danger' }, 'Purge messages…')
  purge.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: `Purge ${queueName}?`,
      message: 'Every message of the queue is removed, read or not. Subscriptions stay.',
      action: 'Purge',
    })
    if (!sure) return
    await act(purge, async () => {
      const { purged: n } = await ok(
        api.queues[':name'].purge.$post({ param: { name: queueName } })
      )
      await purged()
      return `Purged ${n} message${n === 1 ? '' : 's'} from ${queueName}.`
    })
  })
  const remove = h('button', { type: 'button', class: 'danger' }, 'Delete queue…')
  remove.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: `Delete ${queueName}?`,
      message: 'The queue goes with its messages, subscriptions and schedules.',
      action: 'Delete',
      typeToConfirm: queueName,
    })
    if (!sure) return
    const done = await act(remove, async () => {
      await ok(api.queues[':name'].$delete({ param: { name: queueName } }))
      return `Deleted queue ${queueName}.`
    })
    if (done) location.hash = '#/queues'
  })
  return h(
    'section',
    { class: 'danger-zone', 'aria-labelledby': 'danger-title' },
    h('h2', { id: 'danger-title' }, 'Danger zone'),
    purge,
    ' ',
    remove
  )
}

/** The queue's names and live figures. */
function queueSummary(queue: Queue) {
  const stats = queue.stats
  const topic = latestSample()?.topics.get(queue.name)
  return [
    queue.displayName && queue.displayName !== queue.name
      ? h('p', { class: 'lead' }, queue.displayName)
      : null,
    queue.description ? h('p', null, queue.description) : null,
    tiles([
      { label: 'Status', value: badge(queue.status) },
      { label: 'Length', value: count(stats?.length) },
      { label: 'Pending', value: count(stats?.pending) },
      { label: 'Scheduled', value: count(stats?.scheduled) },
      { label: 'Lag', value: count(topic?.lag) },
      { label: 'Consumer groups', value: count(stats?.consumerGroups) },
      { label: 'Published', value: rateCell(queue.name, 'publishRate') },
      { label: 'Acknowledged', value: rateCell(queue.name, 'consumeRate') },
    ]),
  ]
}

/** The queue's settings, behind a disclosure. */
function queueSettings(queue: Queue) {
  return h(
    'details',
    null,
    h(
      'summary',
      null,
      `Settings: ${queue.partitionCount} partition${queue.partitionCount === 1 ? '' : 's'}, keeps messages ${duration(queue.retentionMs)}, at most ${count(queue.maxLength)}`
    ),
    facts([
      [
        'Partitions',
        `${queue.partitionCount} (the API reports figures per queue; each message below names its partition)`,
      ],
      ['Retention', duration(queue.retentionMs)],
      [
        'Max length',
        `${count(queue.maxLength)} (when full: ${queue.overflow === 'reject' ? 'refuse publishes' : 'drop the oldest'})`,
      ],
      ['Encrypted', queue.encrypted ? 'yes' : 'no'],
      ['Public', queue.isPublic ? 'yes' : 'no'],
      ['Producers', queue.allowedProducers.join(', ') || 'anyone with mq:publish'],
      ['Consumers', queue.allowedConsumers.join(', ') || 'anyone with mq:consume'],
      ['Last message id', queue.stats?.lastMessageId ?? '–'],
      ['Created', when(queue.createdAt)],
    ])
  )
}

/** One queue: settings, live figures, subscriptions, messages, publish, purge and delete. */
export function queuePage(queueName: string): Page {
  const summary = h('div')
  const settings = h('div')
  const subscriptions = queueSubscriptions()
  const messages = queueMessages(queueName)
  const refreshAll = () => Promise.all([page.refresh(), messages.reload()])

  const element = h(
    'div',
    null,
    h('p', { class: 'crumbs' }, h('a', { href: '#/queues' }, 'Queues'), ' / '),
    heading(queueName),
    summary,
    settings,
    h(
      'section',
      { 'aria-labelledby': 'subs-title' },
      h('h2', { id: 'subs-title' }, 'Subscriptions'),
      h('div', { class: 'scroll' }, subscriptions.element)
    ),
    messages.section,
    publishForm(queueName, refreshAll),
    dangerZone(queueName, refreshAll)
  )

  let loaded = false
  const page: Page = {
    title: queueName,
    element,
    async refresh() {
      const [queue, subs] = await Promise.all([
        ok(api.queues[':name'].$get({ param: { name: queueName } })),
        listAllSubscriptions(queueName),
      ])
      fill(summary, ...queueSummary(queue))
      // Filled once: refilling would close the disclosure under the operator's cursor.
      if (!loaded) {
        fill(settings, queueSettings(queue))
        loaded = true
        await messages.reload()
      }
      subscriptions.update(subs)
    },
  }
  return page
}
