/**
 * The only place Redis keys are built. Every key of one queue partition shares the hash tag
 * `{<tenantId>:<queue>:<partition>}`, so one Lua script may touch all of them, on a single
 * Redis or on a cluster. Queue names cannot contain `:`, `{` or `}` (API.md), and tenant ids
 * are UUIDs, so two different (tenant, queue, partition) triples never share a tag.
 */
export const PARTITION_PARTS = {
  /** The partition's stream of messages. */
  stream: 'stream',
  /** Sorted set of delayed messages by due time (ms). */
  delayed: 'delayed',
  /** Hash of delayed messages' bodies by message id. */
  delayedBodies: 'delayed:bodies',
  /** Hash of message id -> stream id, for finding a message by its id. */
  index: 'index',
  /** Hash of entries trimmed before the ledger read them: `n` in all, `logged` warned about. */
  ledgerGap: 'ledger:gap',
} as const

export type PartitionPart = keyof typeof PARTITION_PARTS

const globEscape = (text: string) => text.replace(/[[\]*?\\]/g, '\\$&')

/** Key builder bound to one `REDIS_KEY_PREFIX`. */
export class Keys {
  constructor(readonly prefix: string) {}

  /** The hash tag shared by every key of one queue partition. */
  partitionTag(tenantId: string, queue: string, partition: number): string {
    return `{${tenantId}:${queue}:${partition}}`
  }

  /** One of the fixed per-partition keys. */
  partition(tenantId: string, queue: string, partition: number, part: PartitionPart): string {
    return `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}:${PARTITION_PARTS[part]}`
  }

  /**
   * The hash tag of a queue's own records, apart from its partitions'. No partition tag equals
   * it: a partition tag has one more `:`-separated part, and queue names hold no `:`.
   */
  queueTag(tenantId: string, queue: string): string {
    return `{${tenantId}:${queue}}`
  }

  /**
   * Which partition a client-chosen message id of a queue went to, so copies with other keys
   * meet its dedup marker there (claimDedupRoutes.lua).
   */
  dedupRoute(tenantId: string, queue: string, messageId: string): string {
    return `${this.prefix}:${this.queueTag(tenantId, queue)}:dedup-route:${messageId}`
  }

  /** SCAN pattern matching every key of a queue's own tag (Redis glob: `[` is escaped). */
  queuePattern(tenantId: string, queue: string): string {
    return `${this.prefix}:${globEscape(this.queueTag(tenantId, queue))}:*`
  }

  /** The dedup marker of one message id, in the partition the message is routed to. */
  dedup(tenantId: string, queue: string, partition: number, messageId: string): string {
    return `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}:dedup:${messageId}`
  }

  /** In-flight deliveries of one consumer group (sorted set by visibility deadline). */
  inflight(tenantId: string, queue: string, partition: number, group: string): string {
    return `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}:inflight:${group}`
  }

  /**
   * Ordered delivery of one consumer group (scripts/includes/ordering.lua): the head out of
   * each message key (hash) and the entries parked behind them (sorted set).
   */
  ordering(
    tenantId: string,
    queue: string,
    partition: number,
    group: string
  ): { heads: string; parked: string } {
    const base = `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}`
    return { heads: `${base}:order-heads:${group}`, parked: `${base}:order-parked:${group}` }
  }

  /** Delivery outcome counters of one subscription (hash). Subscription ids are UUIDs. */
  subscriptionCounters(tenantId: string, subscriptionId: string): string {
    return `${this.prefix}:{${tenantId}:${subscriptionId}}:counters`
  }

  /**
   * A webhook subscription's flow control, shared by every worker (takePermits.lua): its
   * leases, its token bucket and its pause, under the tag of its counters so one script may
   * touch them all.
   */
  subscriptionFlow(
    tenantId: string,
    subscriptionId: string
  ): { leases: string; bucket: string; pause: string } {
    const base = `${this.prefix}:{${tenantId}:${subscriptionId}}:flow`
    return { leases: `${base}:leases`, bucket: `${base}:bucket`, pause: `${base}:pause` }
  }

  /**
   * The tenant's request token bucket (hash: tokens, ts), shared by every api instance. Its tag
   * `{<tenantId>}` is the tenant's alone: no queue tag can equal it, as queue tags hold `:`.
   */
  tenantRateBucket(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:rate`
  }

  /**
   * Registry of partitions with delayed messages (sorted set by earliest due time), their
   * generations, and the counter generations are drawn from; one hash tag so one script may
   * touch all three.
   */
  get delayedRegistry(): { registry: string; generations: string; clock: string } {
    return {
      registry: `${this.prefix}:{delayed}:registry`,
      generations: `${this.prefix}:{delayed}:generations`,
      clock: `${this.prefix}:{delayed}:clock`,
    }
  }

  /**
   * Queues deleted lately (sorted set: JSON of what to remove -> when deleted, ms). The
   * trimmer deletes their keys once more after a grace period, for whatever a late writer
   * recreated, then drops the record.
   */
  get removedQueues(): string {
    return `${this.prefix}:{maintenance}:removed-queues`
  }

  /** Channel on which publishers announce a due time, so a sleeping ticker wakes for it. */
  get delayedWakeupChannel(): string {
    return `${this.prefix}:delayed-wakeup`
  }

  /** Claim of one occurrence of a recurring schedule; schedule ids are UUIDs. */
  scheduleClaim(scheduleId: string, occurrenceMs: number): string {
    return `${this.prefix}:{schedule:${scheduleId}}:claim:${occurrenceMs}`
  }

  /**
   * Message flow counters of one tenant in one second (hash), for the JSON metrics' rates.
   * Every second of a tenant shares the tag `{<tenantId>}`, so one pipeline reads a minute.
   */
  tenantFlow(tenantId: string, second: number): string {
    return `${this.prefix}:{${tenantId}}:flow:${second}`
  }

  /** When each subscription of one tenant last acknowledged a message (sorted set, ms). */
  tenantLastAck(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:flow:last-ack`
  }

  /** SCAN pattern matching every key of one partition (Redis glob: `[` is escaped). */
  partitionPattern(tenantId: string, queue: string, partition: number): string {
    return `${this.prefix}:${globEscape(this.partitionTag(tenantId, queue, partition))}:*`
  }

  /** Scratch stream the health check writes, reads and deletes; one per process. */
  healthStream(pid: number): string {
    return `${this.prefix}:health:${pid}`
  }

  /** Pub/sub channel on which metadata changes are announced to every process. */
  get metadataChannel(): string {
    return `${this.prefix}:metadata-changed`
  }

  /** One shard of the stream of delivery attempts on their way to the ledger. */
  ledgerEvents(shard: number): string {
    return `${this.prefix}:{ledger:${shard}}:events`
  }

  /** Claim of the ledger writers' periodic sweep, so one writer sweeps at a time. */
  get ledgerSweep(): string {
    return `${this.prefix}:{ledger}:sweep`
  }
}
