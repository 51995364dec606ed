import {
  api,
  listAllQueues,
  listAllSubscriptions,
  ok,
  type Queue,
  type QueuedMessage,
  type Subscription,
} from '../api'
import { act, confirmAction, count, fill, h, KeyedTable, payloadView, when } from '../dom'
import { heading, type Page, tablePage } from '../page'
import { latestSample } from '../samples'
import { messageLink } from './message'
import { messageList } from './messages'
import { queueLink } from './queues'

const deadLettersLink = (name: string) =>
  h('a', { href: `#/dead-letters/${encodeURIComponent(name)}` }, name)

/**
 * The dead-letter queues: every `<queue>.dlq` (the default) and every queue a subscription
 * names as its `deadLetterQueue`.
 */
export function deadLetterQueuesPage(): Page {
  // Which subscriptions send to each dead-letter queue, from the last refresh.
  let senders = new Map<string, Subscription[]>()
  const table = new KeyedTable<Queue>(
    'Dead-letter queues',
    [
      { header: 'Dead-letter queue', render: (q) => deadLettersLink(q.name) },
      {
        header: 'Dead letters',
        numeric: true,
        render: (q) => count(latestSample()?.topics.get(q.name)?.length),
      },
      {
        header: 'Sent here by',
        render: (q) =>
          h(
            'span',
            { class: 'row-actions' },
            ...(senders.get(q.name) ?? []).map((s) =>
              h(
                'a',
                { href: `#/subscriptions/${s.id}` },
                `${s.queue} ${s.consumerGroup}/${s.consumerName}: ${count(latestSample()?.consumers.get(s.id)?.deadLettered)} dead-lettered`
              )
            )
          ),
      },
    ],
    (q) => q.name,
    'No dead-letter queues: nothing has failed for good yet.'
  )
  return tablePage({
    title: 'Dead letters',
    intro:
      'A message that failed its last delivery attempt is copied to its subscription’s dead-letter queue (by default the queue’s name with .dlq), with headers saying where it came from and why.',
    table,
    async load() {
      const [queues, subscriptions] = await Promise.all([listAllQueues(), listAllSubscriptions()])
      senders = Map.groupBy(subscriptions, (s) => s.deadLetterQueue)
      return queues.filter((q) => q.name.endsWith('.dlq') || senders.has(q.name))
    },
  })
}

const header = (m: QueuedMessage, name: string) => m.headers[`x-mq-${name}`]

/**
 * The message `POST /queues/{dlq}/redrive` with `max: 1` moves: redrive walks partition 0
 * first, then 1, …, each oldest first, skipping dead letters whose queue is gone. Of the
 * messages shown, that is the first of the lowest partition with a known origin.
 */
function nextToRedrive(messages: QueuedMessage[]): QueuedMessage | undefined {
  let next: QueuedMessage | undefined
  for (const m of messages) {
    if (!header(m, 'original-queue')) continue
    if (!next || m.partition < next.partition) next = m
  }
  return next
}

/** The dead letters of one queue, each with where it came from and why it failed. */
function deadLetterList(queueName: string) {
  const messages: ReturnType<typeof messageList> = messageList(
    queueName,
    'Dead letters, oldest first',
    [
      {
        header: 'Message id',
        render: (m) =>
          h(
            'span',
            null,
            messageLink(queueName, m.messageId),
            m === nextToRedrive(messages.items()) && h('span', { class: 'tag' }, 'next to redrive')
          ),
      },
      {
        header: 'From queue',
        render: (m) => {
          const from = header(m, 'original-queue')
          return from ? queueLink(from) : 'unknown'
        },
      },
      { header: 'Reason', render: (m) => header(m, 'dead-letter-reason') ?? '–' },
      { header: 'Deliveries', numeric: true, render: (m) => header(m, 'delivery-count') ?? '–' },
      { header: 'Group', render: (m) => header(m, 'consumer-group') ?? '–' },
      { header: 'Failed', render: (m) => when(header(m, 'failed-at') ?? m.publishedAt) },
      { header: 'Partition', numeric: true, render: (m) => m.partition },
      { header: 'Payload', render: (m) => payloadView(m.payload) },
    ],
    'No dead letters in this queue.'
  )
  return messages
}

/** Redrive all (after a confirmation), redrive the next one, and reload. */
function redriveActions(queueName: string, messages: ReturnType<typeof messageList>) {
  async function redrive(button: HTMLButtonElement, max: number | undefined) {
    await act(button, async () => {
      const { redriven } = await ok(
        api.queues[':name'].redrive.$post({ param: { name: queueName }, json: max ? { max } : {} })
      )
      await messages.reload()
      return `Redrove ${redriven} message${redriven === 1 ? '' : 's'} from ${queueName}.`
    })
  }

  const all = h('button', { type: 'button' }, 'Redrive all…')
  all.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: `Redrive every dead letter of ${queueName}?`,
      message:
        'Each goes back to the queue it came from as a new message (fresh delivery count) and every consumer group there sees it again.',
      action: 'Redrive all',
    })
    if (sure) await redrive(all, undefined)
  })
  const one = h('button', { type: 'button' }, 'Redrive next')
  one.addEventListener('click', () => void redrive(one, 1))
  const refresh = h('button', { type: 'button' }, 'Refresh')
  refresh.addEventListener(
    'click',
    () =>
      void act(refresh, async () => {
        await messages.reload()
        return 'Dead letters reloaded.'
      })
  )
  return h('div', { class: 'actions' }, all, ' ', one, ' ', refresh)
}

/** One dead-letter queue: why and how often each message failed; redrive all or the next. */
export function deadLettersPage(queueName: string): Page {
  const messages = deadLetterList(queueName)
  const now = h('p', { class: 'hint' })
  let loaded = false
  return {
    title: queueName,
    element: h(
      'div',
      null,
      h('p', { class: 'crumbs' }, h('a', { href: '#/dead-letters' }, 'Dead letters'), ' / '),
      heading(queueName),
      redriveActions(queueName, messages),
      h(
        'p',
        { class: 'hint' },
        '“Redrive next” moves the one marked “next to redrive” (the bulk redrive goes partition by partition, oldest first). To redrive or delete a particular one, open it by its id.'
      ),
      now,
      messages.element
    ),
    async refresh() {
      if (!loaded) {
        loaded = true
        await messages.reload()
      }
      const length = latestSample()?.topics.get(queueName)?.length
      // The list stays as loaded (an open payload stays open); the count is live.
      fill(now, `${count(length)} in the queue now; Refresh shows new arrivals.`)
    },
  }
}
