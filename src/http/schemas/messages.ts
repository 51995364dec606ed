import { z } from '@hono/zod-openapi'
import { isoDate, queueName } from './common'
import { clientMessageId } from './publish'

export const MessageViewSchema = z
  .object({
    messageId: z.string(),
    queue: z.string(),
    partition: z.number().int(),
    payload: z.unknown(),
    headers: z.record(z.string(), z.string()),
    key: z.string().nullable(),
    correlationId: z.string().nullable(),
    traceId: z.string().nullable(),
    publishedAt: isoDate,
    expiresAt: isoDate.nullable(),
  })
  .openapi('QueuedMessage')

/** One delivery of a message to a subscription and how it ended, from the ledger. */
export const AttemptSchema = z
  .object({
    subscriptionId: z.uuid(),
    consumerGroup: z.string(),
    consumerName: z.string(),
    status: z.enum(['success', 'failed', 'retrying', 'dead_letter']),
    deliveryCount: z.number().int(),
    processingTimeMs: z.number().int().nullable(),
    error: z.string().nullable(),
    /** The webhook receiver's HTTP status when it answered other than 2xx. */
    statusCode: z.number().int().nullable(),
    at: isoDate,
    nextRetryAt: isoDate.nullable(),
  })
  .openapi('DeliveryAttempt')

export const MessageRecordSchema = MessageViewSchema.extend({
  status: z.enum([
    'scheduled',
    'published',
    'delivered',
    'acked',
    'failed',
    'dead_letter',
    'expired',
    'removed',
  ]),
  deliverAt: isoDate.nullable(),
  /** Live progress from Redis; empty once the message has left its stream. */
  consumerGroups: z.array(
    z.object({
      consumerGroup: z.string(),
      state: z.enum(['waiting', 'delivered', 'acked']),
      deliveryCount: z.number().int(),
    })
  ),
  attempts: z.array(AttemptSchema),
}).openapi('MessageRecord')

export const PeekQuery = z.object({
  from: z.string().max(2000).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
})

export const PeekResultSchema = z
  .object({ items: z.array(MessageViewSchema), nextCursor: z.string().nullable() })
  .openapi('PeekResult')

export const RedriveBody = z
  .strictObject({
    toQueue: queueName.optional(),
    max: z.number().int().min(1).max(100_000).optional(),
  })
  .openapi('RedriveRequest', { example: { max: 100 } })

export const RedriveResultSchema = z.object({ redriven: z.number().int() }).openapi('RedriveResult')

export const MessageIdParam = z.object({
  messageId: z
    .string()
    .min(1)
    .max(200)
    .openapi({ param: { name: 'messageId', in: 'path' } }),
})

export const MessageQuery = z.object({ queue: queueName })

/** `/queues/{name}/messages/{messageId}`: a message id as publishing accepts one. */
export const QueueMessageParams = z.object({
  name: queueName.openapi({ param: { name: 'name', in: 'path' } }),
  messageId: clientMessageId.openapi({ param: { name: 'messageId', in: 'path' } }),
})

export const RedriveOneResultSchema = z
  .object({
    messageId: z.string(),
    /** The queue it went back to, and the partition it was written to there. */
    queue: z.string(),
    partition: z.number().int(),
  })
  .openapi('RedriveOneResult')
