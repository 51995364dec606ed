import { type InspectDeps, peekMessages, redriveMessages } from '../../domain/inspect'
import {
  createQueue,
  deleteQueue,
  getQueueWithStats,
  listQueues,
  purgeQueue,
  type QueueDeps,
  updateQueue,
} from '../../domain/queues'
import type { AuditSink } from '../../observability/audit'
import { presentMessage, presentQueue } from '../presenters'
import { routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json, jsonBody } from '../schemas/common'
import { PeekQuery, PeekResultSchema, RedriveBody, RedriveResultSchema } from '../schemas/messages'
import {
  CreateQueueBody,
  PurgeResultSchema,
  QueueListQuery,
  QueueListSchema,
  QueueNameParam,
  QueueSchema,
  UpdateQueueBody,
} from '../schemas/queues'

const route = routes('Queues')

const create = route('post', '/', 'mq:admin', {
  summary: 'Create a queue',
  request: { body: jsonBody(CreateQueueBody) },
  responses: {
    201: json(QueueSchema, 'the created queue'),
    409: errorResponse('the tenant already has a queue of that name (MQ_QUEUE_EXISTS)'),
    ...commonErrors,
  },
})

const list = route('get', '/', 'mq:read', {
  summary: 'List queues',
  request: { query: QueueListQuery },
  responses: { 200: json(QueueListSchema, 'a page of queues, by name'), ...commonErrors },
})

const get = route('get', '/{name}', 'mq:read', {
  summary: 'Get a queue with live stats',
  request: { params: QueueNameParam },
  responses: { 200: json(QueueSchema, 'the queue with stats'), ...commonErrors },
})

const update = route('put', '/{name}', 'mq:admin', {
  summary: 'Update a queue',
  request: { params: QueueNameParam, body: jsonBody(UpdateQueueBody) },
  responses: { 200: json(QueueSchema, 'the updated queue'), ...commonErrors },
})

const remove = route('delete', '/{name}', 'mq:admin', {
  summary: 'Delete a queue with its messages, subscriptions and schedules',
  request: { params: QueueNameParam },
  responses: { 204: { description: 'deleted' }, ...commonErrors },
})

const purge = route('post', '/{name}/purge', 'mq:admin', {
  summary: 'Remove every message of a queue; consumer groups stay',
  request: { params: QueueNameParam },
  responses: { 200: json(PurgeResultSchema, 'how many messages were removed'), ...commonErrors },
})

const peek = route('get', '/{name}/messages', 'mq:read', {
  summary: 'Peek at messages without consuming them, oldest first',
  request: { params: QueueNameParam, query: PeekQuery },
  responses: { 200: json(PeekResultSchema, 'a page of messages'), ...commonErrors },
})

const redrive = route('post', '/{name}/redrive', 'mq:admin', {
  summary: 'Move dead letters back to the queue they came from, or to toQueue',
  request: {
    params: QueueNameParam,
    body: { content: { 'application/json': { schema: RedriveBody } } },
  },
  responses: {
    200: json(RedriveResultSchema, 'how many were moved'),
    409: errorResponse('the target queue is paused (MQ_QUEUE_PAUSED)'),
    ...commonErrors,
  },
})

/** `/api/v1/mq/queues`; changes are audited once they succeed. */
export function createQueuesRouter(deps: QueueDeps, inspect: InspectDeps, audit: AuditSink) {
  return createRouter()
    .openapi(create, async (c) => {
      const ctx = domainContext(c)
      const queue = await createQueue(deps, ctx, c.req.valid('json'))
      audit.record(ctx, { operation: 'queue.created', resource: `queue:${queue.name}` })
      return c.json(presentQueue(queue), 201)
    })
    .openapi(list, async (c) => {
      const page = await listQueues(deps, domainContext(c), c.req.valid('query'))
      return c.json({ items: page.items.map(presentQueue), nextCursor: page.nextCursor }, 200)
    })
    .openapi(get, async (c) => {
      const queue = await getQueueWithStats(deps, domainContext(c), c.req.valid('param').name)
      return c.json(presentQueue(queue), 200)
    })
    .openapi(update, async (c) => {
      const { name } = c.req.valid('param')
      const patch = c.req.valid('json')
      const ctx = domainContext(c)
      const queue = await updateQueue(deps, ctx, name, patch)
      audit.record(ctx, {
        operation: 'queue.updated',
        resource: `queue:${name}`,
        details: { fields: Object.keys(patch) },
      })
      return c.json(presentQueue(queue), 200)
    })
    .openapi(remove, async (c) => {
      const { name } = c.req.valid('param')
      const ctx = domainContext(c)
      await deleteQueue(deps, ctx, name)
      audit.record(ctx, { operation: 'queue.deleted', resource: `queue:${name}` })
      return c.body(null, 204)
    })
    .openapi(purge, async (c) => {
      const { name } = c.req.valid('param')
      const ctx = domainContext(c)
      const purged = await purgeQueue(deps, ctx, name)
      audit.record(ctx, {
        operation: 'queue.purged',
        resource: `queue:${name}`,
        details: { purged },
      })
      return c.json({ purged }, 200)
    })
    .openapi(peek, async (c) => {
      const page = await peekMessages(
        inspect,
        domainContext(c),
        c.req.valid('param').name,
        c.req.valid('query')
      )
      return c.json({ items: page.items.map(presentMessage), nextCursor: page.nextCursor }, 200)
    })
    .openapi(redrive, async (c) => {
      const { toQueue, max = 1000 } = c.req.valid('json')
      const redriven = await redriveMessages(inspect, domainContext(c), c.req.valid('param').name, {
        ...(toQueue !== undefined ? { toQueue } : {}),
        max,
      })
      return c.json({ redriven }, 200)
    })
}
