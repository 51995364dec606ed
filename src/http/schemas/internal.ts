import { z } from '@hono/zod-openapi'
import { TopicMetricsSchema } from './metrics'
import { messageObject } from './publish'

const tenantId = z.guid().openapi({ description: 'the tenant; or send X-Tenant-Id' })

/** A message for one of a tenant's well-known queues (API.md "Internal API"). */
export const InternalPublishBody = messageObject
  .pick({ payload: true, headers: true, key: true, messageId: true })
  .extend({ tenantId: tenantId.optional() })
  .openapi('InternalPublish', {
    example: {
      tenantId: '3f2b8c1e-5d4a-4e2f-9b7c-1a2b3c4d5e6f',
      payload: { type: 'signup', userId: 'u-42' },
    },
  })

/** The tenant of a status request, when X-Tenant-Id does not name it. */
export const InternalTenantQuery = z.object({
  tenantId: tenantId.optional().openapi({ param: { name: 'tenantId', in: 'query' } }),
})

/** One well-known queue of a tenant with its figures and rates. */
export const InternalQueueStatusSchema = TopicMetricsSchema.extend({ tenantId: z.guid() }).openapi(
  'InternalQueueStatus'
)
