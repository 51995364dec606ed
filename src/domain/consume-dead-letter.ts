import { settleByPartition } from './consume-by-partition'
import { type ConsumeDeps, openPayload } from './consume-deps'
import type { DomainContext } from './context'
import type { StoredDelivery, StoredMessage } from './messages'
import { choosePartition, writeMessages } from './publish'
import type { Queue } from './queues'
import { deadLetterQueueOf, type Subscription } from './subscriptions'

/**
 * Moves deliveries that failed too often to the subscription's dead-letter queue (created on
 * first use, like the source queue). The copy is written first, deduplicated on the source
 * entry, and only then is the source acknowledged: a crash in between leaves the message
 * pending, to be moved again and stored once. `statusCode`: the webhook receiver's answer
 * that failed the last delivery, for the ledger.
 * @returns how many were moved.
 */
export async function moveToDeadLetter(
  deps: ConsumeDeps,
  ctx: DomainContext,
  sub: Subscription,
  queue: Queue,
  dead: StoredDelivery[],
  reason: string,
  statusCode?: number
): Promise<number> {
  if (dead.length === 0) return 0
  const dlq = await deps.ensureQueue(ctx, deadLetterQueueOf(sub), queue)
  const now = Date.now()
  const prepared = dead.map((d) => {
    // The group's, not the subscription's: a group-mate moving the same entry again (after
    // this move stalled past its hold) must meet this copy's dedup marker.
    const dedupId = `dlq:${sub.consumerGroup}:${d.partition}:${d.streamId}`
    const message = deadLetterCopy(deps, { sub, queue, dlq, reason, now }, d)
    return {
      write: { message, dedupId, deliverAt: 0 },
      partition: choosePartition(dlq, message.key ?? undefined, dedupId),
      deliverAt: 0,
    }
  })
  const outcomes = await writeMessages(deps, dlq, prepared, now)
  const stored = dead.filter((_, i) => outcomes[i] !== 'full')
  const { settled: moved, attempts } = await settleByPartition(
    deps,
    sub,
    queue,
    'ack',
    stored.map((d) => ({ ...d, messageId: d.message.messageId })),
    {
      status: 'dead_letter',
      error: reason,
      ...(statusCode !== undefined && { statusCode }),
      heldCount: (d) => d.heldAs ?? d.deliveryCount,
    }
  )
  await deps.messages.countOutcome(sub, 'deadLettered', moved)
  await deps.messages.countOutcome(sub, 'failed', moved)
  await deps.ledger.append(sub, queue, attempts)
  deps.metrics.deadLettered(sub, moved)
  return moved
}

/** The dead letter of one delivery: the message, sealed for the dead-letter queue, and why. */
function deadLetterCopy(
  deps: Pick<ConsumeDeps, 'cipher'>,
  move: { sub: Subscription; queue: Queue; dlq: Queue; reason: string; now: number },
  d: StoredDelivery
): StoredMessage {
  const { sub, queue, dlq } = move
  const opened = openPayload(deps, queue, d.message)
  const plaintext = opened ? JSON.stringify(opened.payload) : 'null'
  return {
    ...d.message,
    payloadText: dlq.encrypted
      ? deps.cipher.encrypt(plaintext, {
          tenantId: dlq.tenantId,
          queueId: dlq.id,
          messageId: d.message.messageId,
        })
      : plaintext,
    encrypted: dlq.encrypted,
    headers: {
      ...d.message.headers,
      'x-mq-original-queue': queue.name,
      'x-mq-subscription-id': sub.id,
      'x-mq-consumer-group': sub.consumerGroup,
      'x-mq-delivery-count': String(d.deliveryCount),
      'x-mq-dead-letter-reason': move.reason,
      'x-mq-failed-at': new Date(move.now).toISOString(),
      ...(opened ? {} : { 'x-mq-payload-unreadable': 'could not be decrypted or parsed' }),
    },
    // A dead letter is kept until someone looks at it, whatever its TTL was.
    expiresAt: null,
  }
}
