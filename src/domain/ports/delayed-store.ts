import type { Queue } from '../queue-model'

/** The delayed registry, the promotion of due messages, and schedule occurrence claims. */
export interface DelayedStore {
  /** Tells the tickers that a partition holds a delayed message due at `due` (ms). */
  registerDelayed(queue: Queue, partition: number, due: number): Promise<void>
  /** Registers the partition's earliest delayed message if the registry misses it. */
  repairDelayed(queue: Queue, partition: number): Promise<void>
  /** Partitions whose earliest delayed message is due by `now`, with the generation seen. */
  duePartitions(now: number, limit: number): Promise<Array<{ member: string; generation: string }>>
  /** The earliest due time in the registry (ms), or null when nothing is delayed. */
  earliestDue(): Promise<number | null>
  /**
   * Promotes due messages of one registered partition in batches of `limit`, then settles
   * its registry entry. @returns the due times of what was promoted.
   */
  promotePartition(
    member: string,
    generation: string,
    now: number,
    limit: number
  ): Promise<number[]>
  /** Claims one occurrence of a schedule for `ttlMs`. @returns whether this caller got it. */
  claimOccurrence(scheduleId: string, occurrenceMs: number, ttlMs: number): Promise<boolean>
}
