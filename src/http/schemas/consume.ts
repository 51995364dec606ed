import { z } from '@hono/zod-openapi'
import { isoDate } from './common'
import { MessageViewSchema } from './messages'

const HOUR_MS = 3_600_000
/** The longest a pull may wait for its first message. */
export const PULL_MAX_WAIT_MS = 20_000

export const PullBody = z
  .strictObject({
    max: z.number().int().min(1).max(1000).optional(),
    waitMs: z.number().int().min(0).max(PULL_MAX_WAIT_MS).optional(),
    visibilityTimeoutMs: z
      .number()
      .int()
      .min(1000)
      .max(12 * HOUR_MS)
      .optional(),
  })
  .openapi('PullRequest')

const receipts = z.array(z.string().min(1).max(1000)).min(1).max(1000)

export const AckBody = z.strictObject({ receipts }).openapi('AckRequest')

export const NackBody = z
  .strictObject({
    receipts,
    delayMs: z
      .number()
      .int()
      .min(0)
      .max(12 * HOUR_MS)
      .optional(),
    reason: z.string().max(500).optional(),
  })
  .openapi('NackRequest')

export const SeekBody = z
  .strictObject({ to: z.union([z.enum(['earliest', 'latest']), isoDate]) })
  .openapi('SeekRequest')

/** A delivery is the message as peeked, without its expiry, plus its receipt and count. */
export const DeliverySchema = MessageViewSchema.omit({ expiresAt: true })
  .extend({ receipt: z.string(), deliveryCount: z.number().int() })
  .openapi('Delivery')

export const PullResultSchema = z
  .object({ messages: z.array(DeliverySchema) })
  .openapi('PullResult')
export const AckResultSchema = z.object({ acked: z.number().int() }).openapi('AckResult')
export const NackResultSchema = z
  .object({ requeued: z.number().int(), deadLettered: z.number().int() })
  .openapi('NackResult')
export const SeekResultSchema = z.object({ position: z.string() }).openapi('SeekResult')

export const SubscriptionIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
})
