import type { Queue } from './queues'
import type { Subscription } from './subscriptions'

/** How many messages of one publish call were stored, scheduled or found to be duplicates. */
export interface PublishCounts {
  published: number
  scheduled: number
  duplicate: number
}

/** A delivery as the metrics see it: its stream entry id carries when it became deliverable. */
export interface DeliveredEntry {
  streamId: string
  deliveryCount: number
}

/**
 * Where the domain reports message flow. Called on the hot path after the fact, so an
 * implementation must be cheap, synchronous and must never throw.
 */
export interface MessageMetrics {
  published(queue: Queue, counts: PublishCounts): void
  /** Deliveries handed to a consumer (pulled or pushed) at `now` (ms). */
  delivered(sub: Subscription, entries: readonly DeliveredEntry[], now: number): void
  /** `processingMs`: the summed time between delivery and ack of the acknowledged ones. */
  acked(sub: Subscription, n: number, processingMs: number): void
  /** Deliveries given back by a consumer to be delivered again. */
  nacked(sub: Subscription, n: number): void
  deadLettered(sub: Subscription, n: number): void
}

/** Counts outcomes of one publish call by what happened to each message. */
export function countPublished(
  outcomes: ReadonlyArray<{ status: 'published' | 'scheduled'; duplicate: boolean }>
): PublishCounts {
  const counts: PublishCounts = { published: 0, scheduled: 0, duplicate: 0 }
  for (const o of outcomes) counts[o.duplicate ? 'duplicate' : o.status]++
  return counts
}
