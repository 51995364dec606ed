import type { FoundMessage, QueueEntry } from '../../domain/messages'
import type { InspectionStore, Removal } from '../../domain/ports'
import type { Queue } from '../../domain/queues'
import { decodeFields } from '../codec'
import { isInternalGroup } from '../ledger'
import { decodeCancelled, decodeDeleted } from '../scripts/replies'
import { compareIds, fields, PartitionKeys, partitions, type Reply, sideBySide } from './base'

/** Single messages of a queue: found, read, removed, or cancelled while still scheduled. */
export class RedisInspectionStore extends PartitionKeys implements InspectionStore {
  async readEntries(
    queue: Queue,
    partition: number,
    afterId: string,
    count: number
  ): Promise<QueueEntry[]> {
    const start = afterId === '0-0' ? '-' : `(${afterId}`
    const entries = (await this.redis.xrange(
      this.key(queue, partition, 'stream'),
      start,
      '+',
      'COUNT',
      count
    )) as Array<[string, string[]]>
    return entries.map(([streamId, raw]) => ({
      partition,
      streamId,
      message: decodeFields(streamId, raw),
    }))
  }

  async removeEntries(queue: Queue, partition: number, streamIds: string[]): Promise<number> {
    if (streamIds.length === 0) return 0
    return this.redis.removeEntries(
      this.key(queue, partition, 'stream'),
      this.key(queue, partition, 'index'),
      ...streamIds
    )
  }

  async cancelScheduled(queue: Queue, messageId: string): Promise<boolean> {
    for (const p of partitions(queue)) {
      const reply = await this.redis.cancelScheduled(
        this.key(queue, p, 'delayed'),
        this.key(queue, p, 'delayedBodies'),
        messageId
      )
      if (decodeCancelled(reply)) return true
    }
    return false
  }

  async removeMessage(
    queue: Queue,
    messageId: string
  ): Promise<{ outcome: Removal; entry: QueueEntry | null }> {
    for (const p of partitions(queue)) {
      const reply = await this.redis.deleteMessage(
        this.key(queue, p, 'stream'),
        this.key(queue, p, 'index'),
        this.key(queue, p, 'delayed'),
        this.key(queue, p, 'delayedBodies'),
        messageId
      )
      const removed = decodeDeleted(reply, p)
      if (removed.outcome !== 'absent') return removed
    }
    return { outcome: 'absent', entry: null }
  }

  async findMessage(queue: Queue, messageId: string): Promise<FoundMessage | null> {
    const replies = await sideBySide(
      partitions(queue).flatMap((p) => [
        this.redis.hget(this.key(queue, p, 'index'), messageId),
        this.redis.zscore(this.key(queue, p, 'delayed'), messageId),
        this.redis.hget(this.key(queue, p, 'delayedBodies'), messageId),
      ])
    )
    for (const p of partitions(queue)) {
      const [[e1, streamId], [e2, due], [e3, body]] = replies.slice(p * 3, p * 3 + 3) as [
        Reply,
        Reply,
        Reply,
      ]
      if (e1 || e2 || e3) throw e1 ?? e2 ?? e3
      if (due !== null && body !== null) {
        const fields = JSON.parse(String(body)) as string[]
        return {
          partition: p,
          streamId: null,
          message: decodeFields('0-0', fields),
          deliverAt: Number(due),
          groups: [],
        }
      }
      if (streamId !== null) return this.locate(queue, p, String(streamId))
    }
    return null
  }

  private async locate(
    queue: Queue,
    partition: number,
    streamId: string
  ): Promise<FoundMessage | null> {
    const stream = this.key(queue, partition, 'stream')
    const [entry] = (await this.redis.xrange(stream, streamId, streamId)) as Array<
      [string, string[]]
    >
    if (!entry) return null
    const groups = ((await this.redis.xinfo('GROUPS', stream)) as unknown[])
      .map(fields)
      .filter((g) => !isInternalGroup(String(g.name)))
    const progress = await Promise.all(
      groups.map(async (g) => {
        const name = String(g.name)
        const [pending] = (await this.redis.xpending(stream, name, streamId, streamId, 1)) as Array<
          [string, string, number, number]
        >
        // Count 0: read but parked behind its key's head (ordering "key"), not yet delivered.
        const state: 'waiting' | 'delivered' | 'acked' = pending
          ? Number(pending[3]) > 0
            ? 'delivered'
            : 'waiting'
          : compareIds(streamId, String(g['last-delivered-id'])) <= 0
            ? 'acked'
            : 'waiting'
        return { consumerGroup: name, state, deliveryCount: pending ? Number(pending[3]) : 0 }
      })
    )
    return {
      partition,
      streamId,
      message: decodeFields(streamId, entry[1]),
      deliverAt: null,
      groups: progress,
    }
  }
}
