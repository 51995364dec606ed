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
  .openapi('PullRequest', { example: { max: 10, waitMs: 2000 } })

/** What a receipt looks like (opaque to clients). */
const RECEIPT = 'ZmQ4YjEuMC4xNzk2NTg0MzE4OTU1LTAuMS5vcmRlci0x.tRcvdvl4mRv7ZxB4qEO9pA'

const receipts = z.array(z.string().min(1).max(1000)).min(1).max(1000)

export const AckBody = z
  .strictObject({ receipts })
  .openapi('AckRequest', { example: { receipts: [RECEIPT] } })

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
  .openapi('NackRequest', {
    example: { receipts: [RECEIPT], delayMs: 5000, reason: 'card declined' },
  })

export const SeekBody = z
  .strictObject({ to: z.union([z.enum(['earliest', 'latest']), isoDate]) })
  .openapi('SeekRequest', { example: { to: '2026-12-06T09:00:00Z' } })

/** A delivery is the message as peeked, without its expiry, plus its receipt and count. */
export const DeliverySchema = MessageViewSchema.omit({ expiresAt: true })
  .extend({ receipt: z.string(), deliveryCount: z.number().int() })
  .openapi('Delivery')

export const PullResultSchema = z
  .object({ messages: z.array(DeliverySchema) })
  .openapi('PullResult', {
    example: {
      messages: [
        {
          receipt: RECEIPT,
          messageId: 'order-1',
          queue: 'orders',
          partition: 0,
          payload: { total: 42 },
          headers: {},
          key: 'customer-42',
          correlationId: null,
          traceId: null,
          publishedAt: '2026-12-06T09:00:00.000Z',
          deliveryCount: 1,
        },
      ],
    },
  })
export const AckResultSchema = z
  .object({ acked: z.number().int() })
  .openapi('AckResult', { example: { acked: 1 } })
export const NackResultSchema = z
  .object({ requeued: z.number().int(), deadLettered: z.number().int() })
  .openapi('NackResult', { example: { requeued: 1, deadLettered: 0 } })
export const SeekResultSchema = z.object({ position: z.string() }).openapi('SeekResult')

export const SubscriptionIdParam = z.object({
  id: z.uuid().openapi({ param: { name: 'id', in: 'path' } }),
})
