import { z } from '@hono/zod-openapi'
import { SCHEMA_LIMITS } from '../../domain/json-schema'
import { isoDate, limitQuery, queueName, withinJsonDepth } from './common'

const status = z.enum(['active', 'paused', 'archived'])

const mutable = {
  displayName: z.string().max(200),
  description: z.string().max(2000),
  replicationFactor: z.number().int().min(1).max(5),
  retentionMs: z
    .number()
    .int()
    .min(60_000)
    .max(365 * 86_400_000),
  maxLength: z.number().int().min(1).max(100_000_000),
  overflow: z.enum(['reject', 'drop_oldest']),
  messageFormat: z.literal('json'),
  // Bounded so that compiling a schema stays cheap; it is the tenant's code the service runs.
  schema: z
    .record(z.string(), z.unknown())
    .refine(
      (s) => withinJsonDepth(s, SCHEMA_LIMITS.maxDepth),
      // Stops here: the size is measured by writing the JSON out, which is slow that deep.
      { message: `nested deeper than ${SCHEMA_LIMITS.maxDepth} levels`, abort: true }
    )
    .refine(
      (s) => Buffer.byteLength(JSON.stringify(s)) <= SCHEMA_LIMITS.maxBytes,
      `over ${SCHEMA_LIMITS.maxBytes} bytes as JSON`
    )
    .nullable(),
  compression: z.literal('none'),
  encrypted: z.boolean(),
  isPublic: z.boolean(),
  allowedProducers: z.array(z.string().min(1).max(200)).max(100),
  allowedConsumers: z.array(z.string().min(1).max(200)).max(100),
  status,
}

export const UpdateQueueBody = z
  .strictObject(mutable)
  .partial()
  .openapi('UpdateQueue', { example: { description: 'customer orders', maxLength: 100000 } })

// Built from the fields, not from the named update body: a named base becomes `allOf` in the
// document, where its additionalProperties: false would refuse these fields.
export const CreateQueueBody = z
  .strictObject(mutable)
  .partial()
  .extend({
    name: queueName,
    type: z.literal('redis_stream').optional(),
    partitionCount: z.number().int().min(1).max(64).optional(),
  })
  .openapi('CreateQueue', { example: { name: 'orders', displayName: 'Orders', partitionCount: 4 } })

export const QueueStatsSchema = z
  .object({
    length: z.number().int(),
    pending: z.number().int(),
    scheduled: z.number().int(),
    consumerGroups: z.number().int(),
    lastMessageId: z.string().nullable(),
    ledgerGap: z.number().int().openapi({
      description: 'Messages trimmed (retention, maxLength) before the ledger recorded them',
    }),
  })
  .openapi('QueueStats')

export const QueueSchema = z
  .object({
    id: z.uuid(),
    name: z.string(),
    type: z.literal('redis_stream'),
    partitionCount: z.number().int(),
    ...mutable,
    createdAt: isoDate,
    updatedAt: isoDate,
    stats: QueueStatsSchema.optional(),
  })
  .openapi('Queue')

export const QueueListSchema = z
  .object({ items: z.array(QueueSchema), nextCursor: z.string().nullable() })
  .openapi('QueueList')

export const QueueListQuery = z.object({
  status: status.optional(),
  prefix: z.string().max(200).optional(),
  limit: limitQuery,
  cursor: z.string().max(400).optional(),
})

export const QueueNameParam = z.object({
  name: queueName.openapi({ param: { name: 'name', in: 'path' } }),
})

export const PurgeResultSchema = z.object({ purged: z.number().int() }).openapi('PurgeResult')
