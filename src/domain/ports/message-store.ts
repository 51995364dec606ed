import type {
  PartitionPull,
  PartitionWrite,
  SettledEntry,
  StoredDelivery,
  WriteResult,
} from '../messages'
import type { Queue } from '../queue-model'

export interface PullOptions {
  group: string
  consumer: string
  max: number
  now: number
  visibilityMs: number
  maxDeliveries: number
  deadHoldMs: number
  /** The group delivers in key order (subscription `ordering: "key"`). */
  ordered?: boolean
}

export interface SettleItem {
  streamId: string
  deliveryCount: number
  delayMs: number
  /** When the caller knows it, spares reading the entry for `done`. */
  messageId?: string
}

export interface SettleOptions {
  now: number
  maxDeliveries: number
  deadHoldMs: number
  /** What to tell about each settled entry in `done` (for the ledger); nothing if unset. */
  details?: 'ids' | 'messages'
  /** The group delivers in key order: an acknowledged head releases its key. */
  ordered?: boolean
}

/** The messages of a queue's partitions (Redis Streams): written, pulled and settled. */
export interface MessageStore {
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

  pull(queue: Queue, partition: number, opts: PullOptions): Promise<PartitionPull>

  settle(
    queue: Queue,
    partition: number,
    group: string,
    mode: 'ack' | 'nack',
    items: SettleItem[],
    opts: SettleOptions
  ): Promise<{
    settled: number
    dead: StoredDelivery[]
    /** ack: the summed time (ms) since each acknowledged delivery was handed out. */
    processingMs: number
    done: SettledEntry[]
  }>
}
