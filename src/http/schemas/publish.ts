import { z } from '@hono/zod-openapi'
import { isoDate, jsonValue, queueName, storedCount } from './common'

const DAY_MS = 86_400_000

/** Printable ASCII without spaces: ids travel in headers and Redis keys. */
const idString = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces')

/**
 * A client-chosen message id (`messageId` or `Idempotency-Key`): it names a Redis key and goes
 * out in headers, so only characters that mean nothing in either (API.md "Publishing").
 */
export const clientMessageId = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9._:/-]+$/, 'letters, digits and . _ : - / only')

export const messageHeaders = z
  .record(z.string().min(1).max(200), z.string().max(8192))
  .refine((h) => Object.keys(h).length <= 64, 'at most 64 headers')

/** A message's fields without the rules across them (for bodies built from a subset). */
export const messageObject = z.strictObject({
  payload: jsonValue.refine((v) => v !== undefined, 'payload is required'),
  headers: messageHeaders.optional(),
  key: z.string().min(1).max(500).optional(),
  messageId: clientMessageId.optional(),
  correlationId: idString(200).optional(),
  traceId: idString(100).optional(),
  ttlMs: z
    .number()
    .int()
    .min(1)
    .max(365 * DAY_MS)
    .optional(),
  delayMs: z
    .number()
    .int()
    .min(0)
    .max(90 * DAY_MS)
    .optional(),
  deliverAt: isoDate.optional(),
})

type Timed = { delayMs?: number; deliverAt?: string }

/** Rules across fields: one way to delay, at most 90 days ahead. */
const withTiming = <T extends z.ZodType<Timed>>(schema: T) =>
  schema
    .refine((m) => m.delayMs === undefined || m.deliverAt === undefined, {
      message: 'give delayMs or deliverAt, not both',
      path: ['deliverAt'],
    })
    .refine(
      (m) => m.deliverAt === undefined || Date.parse(m.deliverAt) <= Date.now() + 90 * DAY_MS,
      {
        message: 'deliverAt is more than 90 days ahead',
        path: ['deliverAt'],
      }
    )

/** One message as a producer sends it, without the queue (API.md "Publishing"). */
export const MessageBody = withTiming(messageObject).openapi('Message', {
  example: { payload: { total: 42 }, key: 'customer-42', messageId: 'order-1' },
})

/** `/publish/delayed`: a message with a required delay of 1 ms to 90 days. */
export const DelayedBody = withTiming(
  messageObject.extend({
    queue: queueName,
    delayMs: z
      .number()
      .int()
      .min(1)
      .max(90 * DAY_MS),
  })
).openapi('PublishDelayed', {
  example: { queue: 'orders', payload: { remind: true }, delayMs: 5000 },
})

/**
 * `/publish/scheduled`: a message with `deliverAt` (one time), or a recurring schedule with
 * `cron` (each occurrence gets its own message id, so no `messageId` or delay goes with it).
 */
export const ScheduledBody = withTiming(
  messageObject.extend({
    queue: queueName,
    cron: z.string().min(9).max(200).optional(),
    timezone: z.string().min(1).max(64).optional(),
    startAt: isoDate.optional(),
    endAt: isoDate.optional(),
    maxRuns: storedCount.optional(),
  })
)
  .refine((m) => (m.cron === undefined) !== (m.deliverAt === undefined), {
    message: 'give deliverAt for one time, or cron for a recurring schedule',
    path: ['cron'],
  })
  .refine(
    (m) =>
      m.cron === undefined ||
      (m.messageId === undefined && m.delayMs === undefined && m.ttlMs === undefined),
    { message: 'a recurring schedule takes no messageId, delayMs or ttlMs', path: ['cron'] }
  )
  .refine(
    (m) =>
      m.cron !== undefined ||
      (m.timezone === undefined &&
        m.startAt === undefined &&
        m.endAt === undefined &&
        m.maxRuns === undefined),
    { message: 'timezone, startAt, endAt and maxRuns go with cron', path: ['cron'] }
  )
  .openapi('PublishScheduled', {
    example: {
      queue: 'orders',
      payload: { report: 'daily' },
      cron: '0 8 * * 1-5',
      timezone: 'Europe/Paris',
    },
  })

export const PublishBody = withTiming(messageObject.extend({ queue: queueName })).openapi(
  'PublishMessage',
  { example: { queue: 'orders', payload: { total: 42 }, key: 'customer-42', messageId: 'order-1' } }
)

/** The batch body; the size bound is the service's MAX_BATCH_SIZE. */
export const batchBody = (maxBatchSize: number) =>
  z
    .strictObject({ queue: queueName, messages: z.array(MessageBody).min(1).max(maxBatchSize) })
    .openapi('PublishBatch', {
      example: {
        queue: 'orders',
        messages: [{ payload: { total: 7 } }, { payload: { total: 9 }, key: 'customer-9' }],
      },
    })

export const PublishResultSchema = z
  .object({
    messageId: z.string(),
    queue: z.string(),
    partition: z.number().int(),
    status: z.enum(['published', 'scheduled']),
    publishedAt: isoDate,
    deliverAt: isoDate.optional(),
    duplicate: z.boolean().optional(),
  })
  .openapi('PublishResult', {
    example: {
      messageId: 'order-1',
      queue: 'orders',
      partition: 0,
      status: 'published',
      publishedAt: '2026-12-06T09:00:00.000Z',
    },
  })

export const BatchResultSchema = z
  .object({
    queue: z.string(),
    published: z.number().int(),
    duplicates: z.number().int(),
    results: z.array(
      z.object({
        messageId: z.string(),
        partition: z.number().int(),
        status: z.enum(['published', 'scheduled']),
        duplicate: z.boolean().optional(),
      })
    ),
  })
  .openapi('PublishBatchResult')

export const TopicParam = z.object({
  name: queueName.openapi({ param: { name: 'name', in: 'path' } }),
})
