import type { PartitionWrite, WriteResult } from '../../domain/messages'
import type { MessageStore, PullOptions } from '../../domain/ports'
import type { Queue } from '../../domain/queues'
import { encodeFields } from '../codec'
import { decodePublish, decodePull, decodeSettle, type SettleReply } from '../scripts/replies'
import { groupGone, PartitionKeys, WRITE_PARTS } from './base'

/** Messages of a queue's partitions: written, pulled and settled through the scripts. */
export class RedisMessageStore extends PartitionKeys implements MessageStore {
  private readonly writeKeyCache = new WeakMap<Queue, string[][]>()

  /**
   * The fixed keys a publish to one partition sends, made once per queue object (the metadata
   * cache hands out the same one while it is current): made anew per publish, each key was a
   * concatenated string that ioredis then copied flat to measure it.
   */
  private writeKeys(queue: Queue, partition: number): readonly string[] {
    let byPartition = this.writeKeyCache.get(queue)
    if (byPartition === undefined) {
      byPartition = []
      this.writeKeyCache.set(queue, byPartition)
    }
    let keys = byPartition[partition]
    if (keys === undefined) {
      keys = WRITE_PARTS.map((part) => this.key(queue, partition, part))
      byPartition[partition] = keys
    }
    return keys
  }

  async routeDedup(
    queue: Queue,
    routes: Array<{ dedupId: string; partition: number }>,
    dedupWindowMs: number
  ): Promise<number[]> {
    const keys = routes.map((r) => this.keys.dedupRoute(queue.tenantId, queue.name, r.dedupId))
    const reply = await this.redis.claimDedupRoutes(
      keys.length,
      ...keys,
      dedupWindowMs,
      queue.partitionCount,
      ...routes.map((r) => r.partition)
    )
    return reply.map(Number)
  }

  async write(
    queue: Queue,
    partition: number,
    writes: PartitionWrite[],
    opts: { now: number; maxLength: number; dedupWindowMs: number }
  ): Promise<WriteResult[]> {
    const keys = [...this.writeKeys(queue, partition)]
    const args: Array<string | number> = [
      opts.now,
      opts.maxLength,
      queue.overflow,
      opts.dedupWindowMs,
      writes.length,
    ]
    for (const w of writes) {
      let dedupIndex = 0
      if (w.dedupId !== null) {
        keys.push(this.keys.dedup(queue.tenantId, queue.name, partition, w.dedupId))
        dedupIndex = keys.length
      }
      const fields = encodeFields(w.message)
      args.push(dedupIndex, w.deliverAt, w.message.messageId, fields.length / 2, ...fields)
    }
    const reply = await this.redis.publishMessages(keys.length, ...keys, ...args)
    return decodePublish(reply, writes.length)
  }

  async pull(queue: Queue, partition: number, opts: PullOptions) {
    const { heads, parked } = this.ordering(queue, partition, opts.group)
    const reply = await this.redis
      .pull(
        this.key(queue, partition, 'stream'),
        this.inflight(queue, partition, opts.group),
        heads,
        parked,
        opts.group,
        opts.consumer,
        opts.max,
        opts.now,
        opts.visibilityMs,
        opts.maxDeliveries,
        opts.deadHoldMs,
        opts.ordered ? 1 : 0
      )
      .catch(groupGone)
    return decodePull(reply, partition)
  }

  async settle(...call: Parameters<MessageStore['settle']>): Promise<SettleReply> {
    const [queue, partition, group, mode, items, opts] = call
    // Message ids the receipts carry need not be read from the stream: 'idle' tells only
    // which entries settled, and how long each was out.
    const known =
      opts.details === 'ids' && items.every((i) => i.messageId !== undefined)
        ? new Map(items.map((i) => [i.streamId, i.messageId]))
        : null
    const args = items.flatMap((i) => [i.streamId, i.deliveryCount, i.delayMs])
    const { heads, parked } = this.ordering(queue, partition, group)
    const reply = await this.redis
      .settle(
        this.key(queue, partition, 'stream'),
        this.inflight(queue, partition, group),
        heads,
        parked,
        group,
        opts.now,
        mode,
        opts.maxDeliveries,
        opts.deadHoldMs,
        known ? 'idle' : (opts.details ?? ''),
        opts.ordered ? 1 : 0,
        ...args
      )
      .catch(groupGone)
    return decodeSettle(reply, partition, known)
  }
}
