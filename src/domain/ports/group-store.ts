import type { GroupPosition } from '../messages'
import type { Queue } from '../queue-model'
import type { Subscription, SubscriptionCounters } from '../subscriptions'

/** Consumer groups on every partition of a queue, and subscriptions' delivery counters. */
export interface GroupStore {
  /** Creates the consumer group on every partition; an existing group is left as it is. */
  ensureGroup(queue: Queue, group: string, start: GroupPosition): Promise<void>
  /** Destroys the group on every partition, with its pending deliveries. */
  removeGroup(queue: Queue, group: string): Promise<void>
  /**
   * Deletes a consumer of the group, in one step per partition with handing what it holds to
   * `heir` (another consumer of the group), due at once with its delivery count kept.
   * @returns how many pending deliveries were handed over.
   */
  removeConsumer(queue: Queue, group: string, consumer: string, heir: string): Promise<number>
  /** Moves the group's read position on every partition. @returns the stream id set. */
  seek(queue: Queue, group: string, position: GroupPosition): Promise<string>
  /** Unread entries (lag) and deliveries awaiting ack (pending) of a group. */
  groupStats(queue: Queue, group: string): Promise<{ lag: number; pending: number }>

  /** Delivery outcome counters of a subscription. */
  counters(sub: Subscription): Promise<SubscriptionCounters>
  countOutcome(sub: Subscription, outcome: keyof SubscriptionCounters, n: number): Promise<void>
  /** Removes the subscription's counters and its last-ack time. */
  clearCounters(sub: Subscription): Promise<void>
}
