/**
 * A message as the store keeps it. `payloadText` is the payload's JSON text, or the
 * encryption envelope of it when `encrypted`.
 */
export interface StoredMessage {
  messageId: string
  payloadText: string
  encrypted: boolean
  headers: Record<string, string>
  key: string | null
  correlationId: string | null
  traceId: string | null
  /** Not delivered after this time (ms). */
  expiresAt: number | null
  /** Set when it differs from the store's own time of the entry (delayed, redriven). */
  publishedAt: number | null
}

/** One message to write to a partition. */
export interface PartitionWrite {
  message: StoredMessage
  /**
   * What a repeat of this write would carry, to store it only once within the dedup window:
   * a client-chosen message id, or the identity of an internal move (dead-lettering,
   * redrive). Null for generated ids, which nobody can repeat.
   */
  dedupId: string | null
  /** Due time (ms); at or before `now` means publish at once. */
  deliverAt: number
}

export type WriteStatus = 'published' | 'scheduled' | 'full'

/** What happened to one write, in input order. */
export interface WriteResult {
  status: WriteStatus
  /** The stream entry id when published. */
  streamId: string | null
  publishedAt: number
  duplicate: boolean
}

/** A message handed to a consumer. */
export interface StoredDelivery {
  partition: number
  streamId: string
  deliveryCount: number
  message: StoredMessage & { publishedAt: number }
  /**
   * A dead delivery only: the count its pending entry was given while it is moved to the
   * dead-letter queue, one past any receipt's, so a late ack of the last delivery cannot
   * acknowledge it too; the move acknowledges with it.
   */
  heldAs?: number
}

/** What one pull from a partition produced. */
export interface PartitionPull {
  delivered: StoredDelivery[]
  /** Deliveries that failed too often: to be moved to the dead-letter queue. */
  dead: StoredDelivery[]
  /** Entries deleted or trimmed while pending, acknowledged and dropped. */
  gone: number
  /** Entries past their TTL, acknowledged without delivery. */
  expired: number
  /** The earliest visibility deadline still open (ms), or null. */
  nextDeadline: number | null
  /** Entries read past because they were still out after a seek back: more may wait behind. */
  passed: number
}

/** An entry settle() acknowledged or requeued, as it reports it when asked for details. */
export interface SettledEntry {
  streamId: string
  /** Since the entry was last handed out (ms). */
  idleMs: number
  /** Empty when the entry is no longer in the stream. */
  messageId: string
  /** The whole message, when asked for; null otherwise or when it is gone. */
  message: (StoredMessage & { publishedAt: number }) | null
}

/** Where a consumer group starts reading or is moved to. */
export type GroupPosition = 'earliest' | 'latest' | Date

/** Where one consumer group stands with one message. */
export interface GroupProgress {
  consumerGroup: string
  /** waiting: not yet read by the group; delivered: handed out, not acknowledged. */
  state: 'waiting' | 'delivered' | 'acked'
  deliveryCount: number
}

/** A message found by its id: still scheduled, or in its stream with each group's progress. */
export interface FoundMessage {
  partition: number
  streamId: string | null
  message: StoredMessage & { publishedAt: number }
  /** Due time (ms) of a message that is still scheduled. */
  deliverAt: number | null
  groups: GroupProgress[]
}

/** One stream entry of a queue, for peeking and redriving. */
export interface QueueEntry {
  partition: number
  streamId: string
  message: StoredMessage & { publishedAt: number }
}
