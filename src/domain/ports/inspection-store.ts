import type { FoundMessage, QueueEntry } from '../messages'
import type { Queue } from '../queue-model'

/**
 * What removing one message did: `deleted` from its stream, `cancelled` while scheduled,
 * refused as `in_flight` (pending in a consumer group), or `absent`.
 */
export type Removal = 'deleted' | 'cancelled' | 'in_flight' | 'absent'

/** Single messages of a queue: found, read, removed, or cancelled while still scheduled. */
export interface InspectionStore {
  /** Where a message is: scheduled, or in its stream with each group's progress; or null. */
  findMessage(queue: Queue, messageId: string): Promise<FoundMessage | null>
  /** Entries of one partition after `afterId` (exclusive), oldest first. */
  readEntries(
    queue: Queue,
    partition: number,
    afterId: string,
    count: number
  ): Promise<QueueEntry[]>
  /** Deletes entries and their index entries. @returns how many were deleted. */
  removeEntries(queue: Queue, partition: number, streamIds: string[]): Promise<number>
  /** Cancels a still-scheduled message. @returns whether it was scheduled. */
  cancelScheduled(queue: Queue, messageId: string): Promise<boolean>
  /**
   * Removes one message, scheduled or in its stream, unless a consumer group has it out;
   * atomic against pulls of its partition. `entry`: what was deleted from the stream.
   */
  removeMessage(
    queue: Queue,
    messageId: string
  ): Promise<{ outcome: Removal; entry: QueueEntry | null }>
}
