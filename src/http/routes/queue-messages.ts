import type { DomainContext } from '../../domain/context'
import { getMessage, type InspectDeps } from '../../domain/inspect'
import { redriveQueueMessage, removeQueueMessage } from '../../domain/message-actions'
import type { AuditSink } from '../../observability/audit'
import { presentMessageRecord } from '../presenters'
import { routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json } from '../schemas/common'
import {
  MessageRecordSchema,
  QueueMessageParams,
  RedriveOneResultSchema,
} from '../schemas/messages'

const route = routes('Queues')

const get = route('get', '/{name}/messages/{messageId}', 'mq:read', {
  summary: 'One message of a queue with its delivery attempts',
  request: { params: QueueMessageParams },
  responses: { 200: json(MessageRecordSchema, 'the message and its attempts'), ...commonErrors },
})

const remove = route('delete', '/{name}/messages/{messageId}', 'mq:admin', {
  summary: 'Remove one message that no consumer has out',
  request: { params: QueueMessageParams },
  responses: {
    204: { description: 'removed' },
    409: errorResponse('a consumer group has it out (MQ_MESSAGE_IN_FLIGHT)'),
    ...commonErrors,
  },
})

const redrive = route('post', '/{name}/messages/{messageId}/redrive', 'mq:admin', {
  summary: 'Move one dead letter back to the queue it came from',
  request: { params: QueueMessageParams },
  responses: {
    200: json(RedriveOneResultSchema, 'where it went'),
    409: errorResponse('the queue it came from is paused (MQ_QUEUE_PAUSED)'),
    ...commonErrors,
  },
})

/**
 * `/api/v1/mq/queues/{name}/messages/{messageId}`: one message at a time. Beside the queues
 * router, which holds the verbs on whole queues; removals and redrives are audited.
 */
export function createQueueMessagesRouter(deps: InspectDeps, audit: AuditSink) {
  const record = (ctx: DomainContext, operation: string, name: string, details: object) =>
    audit.record(ctx, { operation, resource: `queue:${name}`, details: { ...details } })
  return createRouter()
    .openapi(get, async (c) => {
      const { name, messageId } = c.req.valid('param')
      const m = await getMessage(deps, domainContext(c), name, messageId)
      return c.json(presentMessageRecord(m), 200)
    })
    .openapi(remove, async (c) => {
      const { name, messageId } = c.req.valid('param')
      const ctx = domainContext(c)
      const how = await removeQueueMessage(deps, ctx, name, messageId)
      record(ctx, 'message.deleted', name, { messageId, how })
      return c.body(null, 204)
    })
    .openapi(redrive, async (c) => {
      const { name, messageId } = c.req.valid('param')
      const ctx = domainContext(c)
      const where = await redriveQueueMessage(deps, ctx, name, messageId)
      record(ctx, 'message.redriven', name, { messageId, toQueue: where.queue })
      return c.json(where, 200)
    })
}
