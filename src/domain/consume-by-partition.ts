import type { ConsumeDeps } from './consume-deps'
import { type Attempt, type AttemptStatus, settleDetails, settledAttempts } from './ledger'
import type { StoredDelivery } from './messages'
import type { Queue } from './queues'
import type { Subscription } from './subscriptions'

/** One delivery to settle, as a receipt or a dead delivery names it. */
export interface Settling {
  partition: number
  streamId: string
  deliveryCount: number
  messageId?: string
}

/**
 * Settles deliveries one partition at a time (one script call each) and gathers what the
 * ledger is told of them.
 * @returns the counts summed over the partitions, the deliveries that ran out of attempts
 * (nack), and the attempts to append.
 */
export async function settleByPartition<T extends Settling>(
  deps: Pick<ConsumeDeps, 'messages' | 'deadHoldMs' | 'ledger'>,
  sub: Subscription,
  queue: Queue,
  mode: 'ack' | 'nack',
  items: readonly T[],
  outcome: {
    status: AttemptStatus
    error?: string
    /** The webhook receiver's HTTP status that failed the deliveries, for the ledger. */
    statusCode?: number
    /** The requeue delay of each (nack); 0 when unset. */
    delayMs?: (item: T) => number
    /** The delivery count the store must see, when it differs from the receipt's. */
    heldCount?: (item: T) => number
  }
): Promise<{ settled: number; processingMs: number; dead: StoredDelivery[]; attempts: Attempt[] }> {
  const result = {
    settled: 0,
    processingMs: 0,
    dead: [] as StoredDelivery[],
    attempts: [] as Attempt[],
  }
  for (const [partition, group] of groupByPartition(items)) {
    const now = Date.now()
    const settling = group.map((item) => ({
      streamId: item.streamId,
      deliveryCount: item.deliveryCount,
      delayMs: outcome.delayMs?.(item) ?? 0,
      messageId: item.messageId,
    }))
    const held = outcome.heldCount
    const reply = await deps.messages.settle(
      queue,
      partition,
      sub.consumerGroup,
      mode,
      held ? group.map((item, i) => ({ ...settling[i]!, deliveryCount: held(item) })) : settling,
      {
        now,
        maxDeliveries: sub.maxRetryAttempts,
        deadHoldMs: deps.deadHoldMs,
        details: settleDetails(deps.ledger, outcome.status),
        ordered: sub.ordering === 'key',
      }
    )
    result.settled += reply.settled
    result.processingMs += reply.processingMs
    result.dead.push(...reply.dead)
    result.attempts.push(
      ...settledAttempts(partition, settling, reply.done, {
        status: outcome.status,
        at: now,
        ...(outcome.error !== undefined && { error: outcome.error }),
        ...(outcome.statusCode !== undefined && { statusCode: outcome.statusCode }),
      })
    )
  }
  return result
}

function groupByPartition<T extends { partition: number }>(items: readonly T[]): Map<number, T[]> {
  const out = new Map<number, T[]>()
  for (const item of items) {
    const list = out.get(item.partition) ?? []
    list.push(item)
    out.set(item.partition, list)
  }
  return out
}
