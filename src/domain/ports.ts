import type {
  GroupPosition,
  PartitionPull,
  PartitionWrite,
  SettledEntry,
  StoredDelivery,
  WriteResult,
} from './messages'
import type {
  Queue,
  QueueListQuery,
  QueuePatch,
  QueueSettings,
  QueueStats,
  RemovedQueue,
} from './queues'
import type {
  Subscription,
  SubscriptionCounters,
  SubscriptionDraft,
  SubscriptionListQuery,
  SubscriptionPatch,
} from './subscriptions'

/** Queue metadata (PostgreSQL). Every method is scoped by `tenantId`, its first argument. */
export interface QueueStore {
  /**
   * @param maxQueues when set, the queue is created only if the tenant has fewer, checked and
   *   inserted as one step (concurrent creates cannot pass it together).
   * @throws MqError MQ_QUEUE_EXISTS when the tenant already has a queue of that name,
   *   MQ_RATE_LIMITED (see {@link queueLimitReached}) at `maxQueues`.
   */
  create(tenantId: string, settings: QueueSettings, maxQueues?: number): Promise<Queue>
  get(tenantId: string, name: string): Promise<Queue | null>
  list(
    tenantId: string,
    query: QueueListQuery
  ): Promise<{ items: Queue[]; nextCursor: string | null }>
  update(tenantId: string, name: string, patch: QueuePatch): Promise<Queue | null>
  /** Deletes the queue with its subscriptions (whose ids it returns) and schedules. */
  remove(tenantId: string, name: string): Promise<RemovedQueue | null>
  count(tenantId: string): Promise<number>
}

/** The messages of queues (Redis Streams). */
export interface MessageStore {
  queueStats(queue: Queue): Promise<QueueStats>
  /** Removes every message of the queue; consumer groups stay. @returns messages removed. */
  purge(queue: Queue): Promise<number>
  /**
   * Removes every key of the queue: streams, groups, delayed messages, dedup markers, its
   * delayed registry entries, and what its (deleted) subscriptions kept in Redis.
   */
  removeQueue(queue: RemovedQueue): Promise<void>

  /**
   * The partition each client-chosen message id must take so it deduplicates across the queue:
   * the one its first copy within the window took, else the one proposed (and now recorded).
   */
  routeDedup(
    queue: Queue,
    routes: Array<{ dedupId: string; partition: number }>,
    dedupWindowMs: number
  ): Promise<number[]>

  /** Writes messages routed to one partition, atomically per message (dedup, capacity, XADD). */
  write(
    queue: Queue,
    partition: number,
    writes: PartitionWrite[],
    opts: { now: number; maxLength: number; dedupWindowMs: number }
  ): Promise<WriteResult[]>

  /** Tells the tickers that a partition holds a delayed message due at `due` (ms). */
  registerDelayed(queue: Queue, partition: number, due: number): Promise<void>

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

  pull(
    queue: Queue,
    partition: number,
    opts: {
      group: string
      consumer: string
      max: number
      now: number
      visibilityMs: number
      maxDeliveries: number
      deadHoldMs: number
    }
  ): Promise<PartitionPull>
  settle(
    queue: Queue,
    partition: number,
    group: string,
    mode: 'ack' | 'nack',
    /** `messageId`, when the caller knows it, spares reading the entry for `done`. */
    items: Array<{ streamId: string; deliveryCount: number; delayMs: number; messageId?: string }>,
    opts: {
      now: number
      maxDeliveries: number
      deadHoldMs: number
      /** What to tell about each settled entry in `done` (for the ledger); nothing if unset. */
      details?: 'ids' | 'messages'
    }
  ): Promise<{
    settled: number
    dead: StoredDelivery[]
    /** ack: the summed time (ms) since each acknowledged delivery was handed out. */
    processingMs: number
    done: SettledEntry[]
  }>
}

/** Subscription metadata (PostgreSQL). Every method is scoped by `tenantId`, its first argument. */
export interface SubscriptionStore {
  /**
   * Stores a new subscription under the id the caller chose (the signing secret is sealed to it).
   * @throws MqError MQ_SUBSCRIPTION_EXISTS when the consumer is already in that group of the
   * queue, MQ_VALIDATION_FAILED when the group's other subscriptions have other group settings.
   */
  create(tenantId: string, draft: SubscriptionDraft): Promise<Subscription>
  /** Any string may be passed as `id`: one that is not a UUID finds nothing. */
  get(tenantId: string, id: string): Promise<Subscription | null>
  list(
    tenantId: string,
    query: SubscriptionListQuery
  ): Promise<{ items: Subscription[]; nextCursor: string | null }>
  /** @throws MqError MQ_VALIDATION_FAILED for a group setting the group's others do not share. */
  update(tenantId: string, id: string, patch: SubscriptionPatch): Promise<Subscription | null>
  /** @returns whether it existed. */
  remove(tenantId: string, id: string): Promise<boolean>
  /** The tenant's subscriptions in one consumer group of a queue, oldest first. */
  inGroup(tenantId: string, queueId: string, group: string): Promise<Subscription[]>
}

/** The outcome of taking one request's token from a tenant's bucket. */
export interface RateDecision {
  allowed: boolean
  /** Whole tokens left after this request. */
  remaining: number
  /** When refused: how long until a token is there (ms); 0 when allowed. */
  retryAfterMs: number
  /** How long until the bucket is full again (ms). */
  resetMs: number
}

/** Per-tenant request rate limit shared by every api instance (API.md "Limits per tenant"). */
export interface RateLimiter {
  /**
   * Takes one token from the tenant's bucket, which refills at `ratePerSecond` and holds as
   * many (the burst equals one second's worth).
   */
  take(tenantId: string, ratePerSecond: number): Promise<RateDecision>
}
