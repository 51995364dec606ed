import {
  ackMessages,
  type ConsumeDeps,
  nackMessages,
  pullMessages,
  seekSubscription,
} from '../../domain/consume'
import { presentDelivery } from '../presenters'
import { routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json, jsonBody } from '../schemas/common'
import {
  AckBody,
  AckResultSchema,
  NackBody,
  NackResultSchema,
  PullBody,
  PullResultSchema,
  SeekBody,
  SeekResultSchema,
  SubscriptionIdParam,
} from '../schemas/consume'

const route = routes('Consuming')

const pull = route('post', '/{id}/pull', 'mq:consume', {
  summary: 'Pull messages; long polls up to waitMs for the first one',
  request: { params: SubscriptionIdParam, body: jsonBody(PullBody) },
  responses: {
    200: json(PullResultSchema, 'deliveries (possibly none)'),
    409: errorResponse('the subscription is paused (MQ_SUBSCRIPTION_PAUSED)'),
    ...commonErrors,
  },
})

const ack = route('post', '/{id}/ack', 'mq:consume', {
  summary: 'Acknowledge deliveries by receipt',
  request: { params: SubscriptionIdParam, body: jsonBody(AckBody) },
  responses: { 200: json(AckResultSchema, 'how many were acknowledged'), ...commonErrors },
})

const nack = route('post', '/{id}/nack', 'mq:consume', {
  summary:
    'Give deliveries back for redelivery, or to the dead-letter queue after the last attempt',
  request: { params: SubscriptionIdParam, body: jsonBody(NackBody) },
  responses: { 200: json(NackResultSchema, 'requeued and dead-lettered counts'), ...commonErrors },
})

const seek = route('post', '/{id}/seek', 'mq:consume', {
  summary: "Move the consumer group's position: earliest, latest or a time",
  request: { params: SubscriptionIdParam, body: jsonBody(SeekBody) },
  responses: { 200: json(SeekResultSchema, 'the new position'), ...commonErrors },
})

/** Pull, ack, nack and seek under `/api/v1/mq/subscriptions/{id}`. */
export function createConsumeRouter(deps: ConsumeDeps) {
  return createRouter()
    .openapi(pull, async (c) => {
      const deliveries = await pullMessages(deps, domainContext(c), c.req.valid('param').id, {
        ...c.req.valid('json'),
        signal: c.req.raw.signal,
      })
      return c.json({ messages: deliveries.map(presentDelivery) }, 200)
    })
    .openapi(ack, async (c) => {
      const { id } = c.req.valid('param')
      const acked = await ackMessages(deps, domainContext(c), id, c.req.valid('json').receipts)
      return c.json({ acked }, 200)
    })
    .openapi(nack, async (c) => {
      const { receipts, ...opts } = c.req.valid('json')
      return c.json(
        await nackMessages(deps, domainContext(c), c.req.valid('param').id, receipts, opts),
        200
      )
    })
    .openapi(seek, async (c) => {
      const { to } = c.req.valid('json')
      const position = await seekSubscription(
        deps,
        domainContext(c),
        c.req.valid('param').id,
        to === 'earliest' || to === 'latest' ? to : new Date(to)
      )
      return c.json({ position }, 200)
    })
}
