import { settleByPartition } from './consume-by-partition'
import { moveToDeadLetter } from './consume-dead-letter'
import { type ConsumeDeps, consumable, type ReceiptData } from './consume-deps'
import type { DomainContext } from './context'
import { MqError } from './errors'
import type { Queue } from './queues'
import { retryDelay } from './retry'
import type { Subscription } from './subscriptions'

/**
 * Decodes receipts of this subscription. One that cannot be its own (malformed, forged, another
 * tenant's or subscription's, or signed before a key rotation) fails the whole request with
 * 400, settling nothing: answering `{"acked": 0}` hid a client's bug as a stale receipt.
 * @throws MqError MQ_VALIDATION_FAILED naming each such receipt's index.
 */
function ownReceipts(deps: ConsumeDeps, sub: Subscription, receipts: string[]): ReceiptData[] {
  const decoded = receipts.map((r) => deps.receipts.decode(sub.tenantId, r))
  const foreign = decoded.flatMap((r, i) => (r === null || r.subscriptionId !== sub.id ? [i] : []))
  if (foreign.length > 0) {
    throw new MqError(
      'MQ_VALIDATION_FAILED',
      `receipts.${foreign[0]}: not a receipt of this subscription`,
      {
        issues: foreign.map((i) => ({
          path: `receipts.${i}`,
          code: 'invalid_receipt',
          message: 'not a receipt of this subscription',
        })),
      }
    )
  }
  return decoded as ReceiptData[]
}

/**
 * Acknowledges deliveries. A stale receipt (the message was delivered again since) acknowledges
 * nothing; one that is not this subscription's is refused (see {@link ownReceipts}).
 * @returns how many were acknowledged.
 */
export async function ackMessages(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  receipts: string[]
): Promise<number> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return ackDeliveries(deps, sub, queue, ownReceipts(deps, sub, receipts))
}

/**
 * Acknowledges decoded receipts of one subscription; a stale one (delivered again since)
 * acknowledges nothing.
 * @returns how many were acknowledged.
 */
export async function ackDeliveries(
  deps: ConsumeDeps,
  sub: Subscription,
  queue: Queue,
  receipts: ReceiptData[]
): Promise<number> {
  const { settled, processingMs, attempts } = await settleByPartition(
    deps,
    sub,
    queue,
    'ack',
    receipts,
    { status: 'success' }
  )
  // Sent together, so logging the attempts adds no round trip to an ack.
  await Promise.all([
    deps.messages.countOutcome(sub, 'acked', settled),
    deps.ledger.append(sub, queue, attempts),
  ])
  deps.metrics.acked(sub, settled, processingMs)
  return settled
}

/**
 * Gives deliveries back: each comes again after `delayMs`, or after the subscription's retry
 * backoff, unless it has had `maxRetryAttempts` deliveries; then it goes to the dead-letter
 * queue.
 */
export async function nackMessages(
  deps: ConsumeDeps,
  ctx: DomainContext,
  subscriptionId: string,
  receipts: string[],
  opts: { delayMs?: number; reason?: string }
): Promise<{ requeued: number; deadLettered: number }> {
  const { sub, queue } = await consumable(deps, ctx, subscriptionId)
  return nackDeliveries(deps, ctx, sub, queue, ownReceipts(deps, sub, receipts), opts)
}

/**
 * Gives decoded receipts of one subscription back, as {@link nackMessages} does: each comes
 * again after `delayMs` (default: the retry backoff), or goes to the dead-letter queue once it
 * has had `maxRetryAttempts` deliveries. A stale receipt changes nothing.
 */
export async function nackDeliveries(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  receipts: ReceiptData[],
  opts: { delayMs?: number; reason?: string; statusCode?: number }
): Promise<{ requeued: number; deadLettered: number }> {
  const reason = opts.reason ?? 'rejected by the consumer'
  const { settled, dead, attempts } = await settleByPartition(deps, sub, queue, 'nack', receipts, {
    status: 'retrying',
    error: reason,
    ...(opts.statusCode !== undefined && { statusCode: opts.statusCode }),
    delayMs: (r) => opts.delayMs ?? retryDelay(sub, r.deliveryCount),
  })
  const deadLettered = await moveToDeadLetter(deps, ctx, sub, queue, dead, reason, opts.statusCode)
  await deps.ledger.append(sub, queue, attempts)
  deps.metrics.nacked(sub, settled)
  // Each requeued delivery counts as failed when it is delivered again.
  return { requeued: settled, deadLettered }
}
