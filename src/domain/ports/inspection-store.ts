import type { FoundMessage, QueueEntry } from '../messages'
import type { Queue } from '../queue-model'

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
}
