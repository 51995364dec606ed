import { z } from '@hono/zod-openapi'
import { FLOW_BOUNDS } from '../../domain/flow'
import { isoDate, limitQuery, queueName } from './common'

/** Group and consumer names become parts of Redis keys: the queue-name rule keeps them safe. */
const groupName = queueName.openapi({ example: 'billing' })
const consumerName = queueName.openapi({ example: 'billing-1' })

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()])
const bound = z.union([z.number(), z.string()])

/** One condition of `messageFilter`: a bare value (equality) or operators, all of which must hold. */
const FilterConditionSchema = z
  .union([
    scalar,
    z
      .strictObject({
        eq: scalar.optional(),
        in: z.array(scalar).min(1).max(100).optional(),
        exists: z.boolean().optional(),
        prefix: z.string().optional(),
        gt: bound.optional(),
        lt: bound.optional(),
      })
      .refine((ops) => Object.keys(ops).length > 0, 'name at least one operator'),
  ])
  .openapi('FilterCondition')

/** API.md `messageFilter`: conditions on headers, the key and top-level payload fields. */
export const MessageFilterSchema = z
  .strictObject({
    headers: z.record(z.string(), FilterConditionSchema).optional(),
    key: FilterConditionSchema.optional(),
    payload: z.record(z.string(), FilterConditionSchema).optional(),
  })
  .openapi('MessageFilter', {
    example: { headers: { type: 'order.created' }, payload: { country: { in: ['CN', 'SG'] } } },
  })

/** `handlerConfig`: for webhooks `url` is required (checked with the type, in the domain). */
const HandlerConfigSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/ }).max(2000),
    method: z.enum(['POST', 'PUT', 'PATCH']),
    headers: z.record(z.string(), z.string()),
    timeoutMs: z.number().int().min(100).max(60_000),
    // Webhooks only (a pull subscription answers 400): held across every worker process.
    rateLimitPerSecond: z.number().int().min(1).max(FLOW_BOUNDS.rateLimitPerSecond),
    parallelism: z.number().int().min(1).max(FLOW_BOUNDS.parallelism),
  })
  .partial()
  .openapi('HandlerConfig')

const mutable = {
  offsetResetPolicy: z.enum(['earliest', 'latest']),
  maxPollRecords: z.number().int().min(1).max(1000),
  sessionTimeoutMs: z.number().int().min(1000).max(43_200_000),
  heartbeatIntervalMs: z.number().int().min(100).max(3_600_000),
  handlerConfig: HandlerConfigSchema,
  deadLetterQueue: queueName.nullable(),
  maxRetryAttempts: z.number().int().min(1).max(100),
  retryDelayMs: z.number().int().min(0).max(86_400_000),
  retryBackoff: z.enum(['exponential', 'fixed']),
  messageFilter: MessageFilterSchema.nullable(),
  ordering: z.enum(['none', 'key']).openapi({
    description:
      '*(project)* `key`: while a message of a key is out (not acked, dead-lettered or expired), no later message of that key is delivered; set at create, a change answers 400',
  }),
}

export const UpdateSubscriptionBody = z
  .strictObject(mutable)
  .partial()
  .openapi('UpdateSubscription', { example: { maxRetryAttempts: 5, retryDelayMs: 2000 } })

// Built from the fields, not from the named update body: a named base becomes `allOf` in the
// document, where its additionalProperties: false would refuse these fields.
export const CreateSubscriptionBody = z
  .strictObject(mutable)
  .partial()
  .extend({
    queue: queueName,
    consumerGroup: groupName,
    consumerName: consumerName,
    subscriptionType: z
      .enum(['redis_consumer', 'webhook', 'kafka_consumer'])
      .openapi({ description: '`kafka_consumer` is reserved and answers 400' }),
  })
  .openapi('CreateSubscription', {
    example: {
      queue: 'orders',
      consumerGroup: 'billing',
      consumerName: 'billing-1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      maxRetryAttempts: 3,
    },
  })

/** A webhook's flow control (API.md "Webhook pushes"): its limits and how they act now. */
export const FlowStatsSchema = z
  .object({
    rateLimitPerSecond: z.number().int().nullable(),
    parallelism: z.number().int().nullable(),
    inFlight: z.number().int().nullable(),
    throttled: z.number().int(),
    pausedUntil: isoDate.nullable(),
  })
  .openapi('FlowStats')

export const SubscriptionStatsSchema = z
  .object({
    lag: z.number().int(),
    pending: z.number().int(),
    delivered: z.number().int(),
    acked: z.number().int(),
    failed: z.number().int(),
    deadLettered: z.number().int(),
    flow: FlowStatsSchema.optional().openapi({ description: 'webhooks only' }),
  })
  .openapi('SubscriptionStats')

export const SubscriptionSchema = z
  .object({
    id: z.uuid(),
    queue: z.string(),
    consumerGroup: z.string(),
    consumerName: z.string(),
    subscriptionType: z.enum(['redis_consumer', 'webhook']),
    ...mutable,
    handlerConfig: z.record(z.string(), z.unknown()),
    deadLetterQueue: z.string().openapi({ description: 'configured, else `<queue>.dlq`' }),
    status: z.enum(['active', 'paused']),
    statusReason: z.string().nullable(),
    createdAt: isoDate,
    updatedAt: isoDate,
    lastConsumedAt: isoDate.nullable(),
    signingSecret: z
      .string()
      .optional()
      .openapi({ description: 'webhooks: only in the answer that created the subscription' }),
    stats: SubscriptionStatsSchema.optional(),
  })
  .openapi('Subscription')

export const SubscriptionListSchema = z
  .object({ items: z.array(SubscriptionSchema), nextCursor: z.string().nullable() })
  .openapi('SubscriptionList')

export const SubscriptionListQuery = z.object({
  queue: queueName.optional(),
  status: z.enum(['active', 'paused']).optional(),
  limit: limitQuery,
  cursor: z.string().max(400).optional(),
})

/** A malformed id is a 400 (as on the consumption routes); a well-formed unknown one a 404. */
export const SubscriptionIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
})
