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

  /** The dedup marker of one message id, in the partition the message is routed to. */
  dedup(tenantId: string, queue: string, partition: number, messageId: string): string {
    return `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}:dedup:${messageId}`
  }

  /** In-flight deliveries of one consumer group (sorted set by visibility deadline). */
  inflight(tenantId: string, queue: string, partition: number, group: string): string {
    return `${this.prefix}:${this.partitionTag(tenantId, queue, partition)}:inflight:${group}`
  }

  /** Delivery outcome counters of one subscription (hash). Subscription ids are UUIDs. */
  subscriptionCounters(tenantId: string, subscriptionId: string): string {
    return `${this.prefix}:{${tenantId}:${subscriptionId}}:counters`
  }

  /**
   * The tenant's request token bucket (hash: tokens, ts), shared by every api instance. Its tag
   * `{<tenantId>}` is the tenant's alone: no queue tag can equal it, as queue tags hold `:`.
   */
  tenantRateBucket(tenantId: string): string {
    return `${this.prefix}:{${tenantId}}:rate`
  }

  /**
   * Registry of partitions with delayed messages (sorted set by earliest due time) and its
   * generation counters; one hash tag so one script may touch both.
   */
  get delayedRegistry(): { registry: string; generations: string } {
    return {
      registry: `${this.prefix}:{delayed}:registry`,
      generations: `${this.prefix}:{delayed}:generations`,
    }
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
    const tag = this.partitionTag(tenantId, queue, partition).replace(/[[\]*?\\]/g, '\\$&')
    return `${this.prefix}:${tag}:*`
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
