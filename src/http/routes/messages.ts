import { createRoute } from '@hono/zod-openapi'
import { cancelMessage, getMessage, type InspectDeps, type MessageView } from '../../domain/inspect'
import { requireScope } from '../middleware/auth'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json } from '../schemas/common'
import { MessageIdParam, MessageQuery, MessageRecordSchema } from '../schemas/messages'

const tags = ['Messages']

/** A message as the API shows it. */
export const presentMessage = <T extends MessageView>(m: T) => ({
  ...m,
  publishedAt: m.publishedAt.toISOString(),
  expiresAt: m.expiresAt?.toISOString() ?? null,
})

const get = createRoute({
  method: 'get',
  path: '/{messageId}',
  tags,
  summary: "A message's status and each consumer group's progress with it",
  middleware: requireScope('mq:read'),
  request: { params: MessageIdParam, query: MessageQuery },
  responses: { 200: json(MessageRecordSchema, 'the message record'), ...commonErrors },
})

const remove = createRoute({
  method: 'delete',
  path: '/{messageId}',
  tags,
  summary: 'Cancel a still-scheduled message',
  middleware: requireScope('mq:publish'),
  request: { params: MessageIdParam, query: MessageQuery },
  responses: {
    204: { description: 'cancelled' },
    409: errorResponse('already published (MQ_MESSAGE_ALREADY_PUBLISHED)'),
    ...commonErrors,
  },
})

/** `/api/v1/mq/messages` */
export function createMessagesRouter(deps: InspectDeps) {
  return createRouter()
    .openapi(get, async (c) => {
      const m = await getMessage(
        deps,
        domainContext(c),
        c.req.valid('query').queue,
        c.req.valid('param').messageId
      )
      return c.json(
        {
          ...presentMessage(m),
          deliverAt: m.deliverAt?.toISOString() ?? null,
          attempts: m.attempts.map((a) => ({
            ...a,
            at: a.at.toISOString(),
            nextRetryAt: a.nextRetryAt?.toISOString() ?? null,
          })),
        },
        200
      )
    })
    .openapi(remove, async (c) => {
      await cancelMessage(
        deps,
        domainContext(c),
        c.req.valid('query').queue,
        c.req.valid('param').messageId
      )
      return c.body(null, 204)
    })
}
