import type { InferResponseType } from 'hono/client'
import { api, ok } from '../api'
import { act, badge, type Child, confirmAction, fill, h, millis, pretty, when } from '../dom'
import { facts, heading, type Page } from '../page'

/** `#/message/<queue>/<messageId>`: one message's page. */
export const messageHref = (queue: string, messageId: string) =>
  `#/message/${encodeURIComponent(queue)}/${encodeURIComponent(messageId)}`

/** A message id that opens its page. */
export const messageLink = (queue: string, messageId: string) =>
  h('a', { href: messageHref(queue, messageId) }, h('code', null, messageId))

const one = api.queues[':name'].messages[':messageId']

type Attempt = InferResponseType<typeof one.$get, 200>['attempts'][number]

/** Attempt outcomes as the badges colour them. */
const OUTCOME_BADGE: Record<string, string> = {
  success: 'active',
  retrying: 'paused',
  failed: 'unhealthy',
  dead_letter: 'archived',
}

/** The attempts, oldest first, one line each: when, who, how it ended and why. */
function timeline(attempts: Attempt[]): HTMLElement {
  if (attempts.length === 0) {
    return h(
      'p',
      { class: 'hint', 'data-timeline': 'empty' },
      'No delivery attempts recorded yet. The ledger writes them a moment after they happen (none with LEDGER_MODE=off; only failed ones with failures).'
    )
  }
  return h(
    'ol',
    { class: 'timeline', 'aria-label': 'Delivery attempts, oldest first' },
    ...attempts.map((a) =>
      h(
        'li',
        { 'data-outcome': a.status },
        when(a.at),
        ' ',
        h('span', { class: `badge badge-${OUTCOME_BADGE[a.status] ?? 'paused'}` }, a.status),
        ` delivery ${a.deliveryCount} to `,
        h(
          'a',
          { href: `#/subscriptions/${a.subscriptionId}` },
          `${a.consumerGroup}/${a.consumerName}`
        ),
        a.statusCode !== null && h('span', { class: 'tag' }, `HTTP ${a.statusCode}`),
        a.error && h('span', { class: 'reason' }, ` ${a.error}`),
        a.processingTimeMs !== null &&
          h('span', { class: 'hint' }, ` (${millis(a.processingTimeMs)})`)
      )
    )
  )
}

/** "Redrive this one…" (dead letters only) and "Delete this one…", each confirmed first. */
function actions(queue: string, messageId: string, origin: string | undefined): HTMLElement {
  const redrive = h('button', { type: 'button' }, 'Redrive this one…')
  redrive.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: `Redrive ${messageId} to ${origin}?`,
      message: `It leaves ${queue} and goes back to ${origin} as a new message (fresh delivery count); every consumer group there sees it again.`,
      action: 'Redrive',
    })
    if (!sure) return
    await act(redrive, async () => {
      const where = await ok(one.redrive.$post({ param: { name: queue, messageId } }))
      location.hash = messageHref(where.queue, where.messageId)
      return `Redrove ${messageId} to ${where.queue} (partition ${where.partition}).`
    })
  })
  const remove = h('button', { type: 'button', class: 'danger' }, 'Delete this one…')
  remove.addEventListener('click', async () => {
    const sure = await confirmAction({
      title: `Delete ${messageId} from ${queue}?`,
      message:
        'No consumer group will get it. A message a consumer has out (pulled or pushed, not yet acked) cannot be deleted until it is settled.',
      action: 'Delete',
    })
    if (!sure) return
    await act(remove, async () => {
      await ok(one.$delete({ param: { name: queue, messageId } }))
      location.hash = `#/queues/${encodeURIComponent(queue)}`
      return `Deleted ${messageId} from ${queue}.`
    })
  })
  return h('div', { class: 'actions' }, origin && redrive, origin && ' ', remove)
}

/**
 * One message (`arg`: `<queue>/<messageId>`): where it is, each consumer group's progress, its
 * payload and headers, the timeline of its delivery attempts from the ledger, and the actions.
 */
export function messagePage(arg: string): Page {
  const slash = arg.indexOf('/')
  const queue = arg.slice(0, slash)
  const messageId = arg.slice(slash + 1)
  const body = h('div')
  const crumbs: Child[] = [h('a', { href: '#/queues' }, 'Queues'), ' / ']
  crumbs.push(h('a', { href: `#/queues/${encodeURIComponent(queue)}` }, queue), ' / ')
  return {
    title: messageId,
    element: h('div', null, h('p', { class: 'crumbs' }, ...crumbs), heading(messageId), body),
    async refresh() {
      const m = await ok(one.$get({ param: { name: queue, messageId } }))
      const origin = m.headers['x-mq-original-queue']
      fill(
        body,
        facts([
          ['Status', badge(m.status)],
          ['Queue', `${m.queue}, partition ${m.partition}`],
          ['Published', when(m.publishedAt)],
          ['Key', m.key ?? '–'],
          [
            'Groups',
            m.consumerGroups.map((g) => `${g.consumerGroup}: ${g.state}`).join(', ') || '–',
          ],
        ]),
        actions(queue, messageId, origin),
        h('h2', null, 'Delivery attempts'),
        timeline(m.attempts),
        h('h2', null, 'Payload'),
        h('pre', { class: 'payload' }, pretty(m.payload)),
        h('h2', null, 'Headers'),
        h('pre', null, pretty(m.headers))
      )
    },
  }
}
