import type { Queue, QueueStats, RemovedQueue } from '../queue-model'

/** Whole queues in Redis: their figures, purges, deletes and trimming. */
export interface MaintenanceStore {
  queueStats(queue: Queue): Promise<QueueStats>
  /** Removes every message of the queue; consumer groups stay. @returns messages removed. */
  purge(queue: Queue): Promise<number>
  /**
   * Removes every key of the queue: streams, groups, delayed messages, dedup markers, its
   * delayed registry entries, and what its (deleted) subscriptions kept in Redis.
   */
  removeQueue(queue: RemovedQueue): Promise<void>
  /**
   * Deletes again the keys of queues deleted before `before` (ms), then forgets them: a
   * publish that had resolved the queue just before its delete, or a late ack's counter, can
   * recreate a key after the first pass, and nothing else would ever remove it. When a queue
   * of the same name exists again, its partitions are its own and are left alone.
   * @returns how many deleted queues were swept.
   */
  sweepRemovedQueues(
    before: number,
    exists: (tenantId: string, name: string) => Promise<boolean>
  ): Promise<number>
  /**
   * Trims a partition's acknowledged entries and those past `retentionBoundMs`, in batches
   * of `batch`, at most `maxBatches` of them. Acknowledged entries published after
   * `ledgerFloorMs` wait for the ledger (0: none do). @returns how many entries went.
   */
  trimPartition(
    queue: Queue,
    partition: number,
    retentionBoundMs: number,
    batch: number,
    maxBatches: number,
    ledgerFloorMs?: number
  ): Promise<number>
}
