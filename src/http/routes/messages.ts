import { cancelMessage, getMessage, type InspectDeps } from '../../domain/inspect'
import { presentMessageRecord } from '../presenters'
import { routes } from '../route'
import { createRouter, domainContext } from '../router'
import { commonErrors, errorResponse, json } from '../schemas/common'
import { MessageIdParam, MessageQuery, MessageRecordSchema } from '../schemas/messages'

const route = routes('Messages')

const get = route('get', '/{messageId}', 'mq:read', {
  summary: "A message's status and each consumer group's progress with it",
  request: { params: MessageIdParam, query: MessageQuery },
  responses: { 200: json(MessageRecordSchema, 'the message record'), ...commonErrors },
})

const remove = route('delete', '/{messageId}', 'mq:publish', {
  summary: 'Cancel a still-scheduled message',
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
      const { queue } = c.req.valid('query')
      const m = await getMessage(deps, domainContext(c), queue, c.req.valid('param').messageId)
      return c.json(presentMessageRecord(m), 200)
    })
    .openapi(remove, async (c) => {
      const { queue } = c.req.valid('query')
      await cancelMessage(deps, domainContext(c), queue, c.req.valid('param').messageId)
      return c.body(null, 204)
    })
}
