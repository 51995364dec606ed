import { Cluster } from 'ioredis'
import type { MaintenanceStore } from '../../domain/ports'
import type { Queue, QueueStats, RemovedQueue } from '../../domain/queues'
import type { PartitionPart } from '../keys'
import { isInternalGroup } from '../ledger'
import {
  compareIds,
  delayedMember,
  fields,
  PartitionKeys,
  partitions,
  sideBySide,
  WRITE_PARTS,
} from './base'

/** What {@link RedisMaintenanceStore.sweepRemovedQueues} needs of a deleted queue. */
type RemovedRecord = Pick<RemovedQueue, 'tenantId' | 'name' | 'partitionCount' | 'subscriptionIds'>

/** The keys purge.lua takes first, in its order. */
const PURGE_PARTS: readonly PartitionPart[] = ['stream', 'delayed', 'delayedBodies', 'index']

/** Whole queues: their figures, purges, deletes and the trimming of their streams. */
export class RedisMaintenanceStore extends PartitionKeys implements MaintenanceStore {
  async queueStats(queue: Queue): Promise<QueueStats> {
    // A stream that was never written does not exist: XINFO then errors, which means zero.
    const replies = await sideBySide(
      partitions(queue).flatMap((p) => [
        this.redis.xinfo('STREAM', this.key(queue, p, 'stream')),
        this.redis.xinfo('GROUPS', this.key(queue, p, 'stream')),
        this.redis.zcard(this.key(queue, p, 'delayed')),
        this.redis.hget(this.key(queue, p, 'ledgerGap'), 'n'),
      ])
    )
    const stats: QueueStats = {
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: null,
      ledgerGap: 0,
    }
    for (let i = 0; i < replies.length; i += 4) {
      const [streamErr, stream] = replies[i]!
      const [groupsErr, groups] = replies[i + 1]!
      const [delayedErr, delayed] = replies[i + 2]!
      const [gapErr, gap] = replies[i + 3]!
      if (delayedErr) throw delayedErr
      if (gapErr) throw gapErr
      stats.scheduled += Number(delayed)
      stats.ledgerGap += Number(gap ?? 0)
      // A partition never written to has no stream yet: zero, not an error.
      const missing = (err: Error | null) => err !== null && /no such key/i.test(err.message)
      if (missing(streamErr) || missing(groupsErr)) continue
      if (streamErr || groupsErr) throw streamErr ?? groupsErr
      const info = fields(stream)
      stats.length += Number(info.length ?? 0)
      const last = String(info['last-generated-id'] ?? '0-0')
      if (last !== '0-0' && (!stats.lastMessageId || compareIds(last, stats.lastMessageId) > 0)) {
        stats.lastMessageId = last
      }
      const groupList = (groups as unknown[])
        .map(fields)
        .filter((g) => !isInternalGroup(String(g.name)))
      // Every partition carries the same groups; count them once.
      stats.consumerGroups = Math.max(stats.consumerGroups, groupList.length)
      for (const g of groupList) stats.pending += Number(g.pending ?? 0)
    }
    return stats
  }

  async purge(queue: Queue): Promise<number> {
    let removed = 0
    for (const p of partitions(queue)) {
      const stream = this.key(queue, p, 'stream')
      // A group made after this look has no ordering state yet, so none is left behind.
      const groups = await this.redis.xinfo('GROUPS', stream).catch(() => [] as unknown[])
      const ordering = (groups as unknown[]).flatMap((g) => {
        const { heads, parked } = this.ordering(queue, p, String(fields(g).name))
        return [heads, parked]
      })
      const keys = [...PURGE_PARTS.map((part) => this.key(queue, p, part)), ...ordering]
      removed += await this.redis.purge(keys.length, ...keys)
    }
    return removed
  }

  async removeQueue(queue: RemovedQueue): Promise<void> {
    // Recorded first: a delete that dies half-way is finished by the trimmer's next look.
    await this.redis.zadd(this.keys.removedQueues, Date.now(), removedRecord(queue))
    await this.removeQueueKeys(queue, true)
  }

  async sweepRemovedQueues(
    before: number,
    exists: (tenantId: string, name: string) => Promise<boolean>
  ): Promise<number> {
    const records = await this.redis.zrangebyscore(
      this.keys.removedQueues,
      '-inf',
      before,
      'LIMIT',
      0,
      100
    )
    for (const record of records) {
      const queue = JSON.parse(record) as RemovedRecord
      await this.removeQueueKeys(queue, !(await exists(queue.tenantId, queue.name)))
      await this.redis.zrem(this.keys.removedQueues, record)
    }
    return records.length
  }

  private async removeQueueKeys(queue: RemovedRecord, withPartitions: boolean): Promise<void> {
    if (withPartitions) await this.removePartitions(queue)
    // Each subscription's counters have their own hash tag: one UNLINK each on a cluster.
    for (const id of queue.subscriptionIds) {
      const flow = this.keys.subscriptionFlow(queue.tenantId, id)
      const counters = this.keys.subscriptionCounters(queue.tenantId, id)
      await this.redis.unlink(counters, flow.leases, flow.bucket, flow.pause)
    }
    if (queue.subscriptionIds.length > 0) {
      await this.redis.zrem(this.keys.tenantLastAck(queue.tenantId), ...queue.subscriptionIds)
    }
  }

  private async removePartitions(
    queue: Pick<Queue, 'tenantId' | 'name' | 'partitionCount'>
  ): Promise<void> {
    const { registry, generations } = this.keys.delayedRegistry
    const members = partitions(queue).map((p) => delayedMember(queue.tenantId, queue.name, p))
    await this.redis.zrem(registry, ...members)
    await this.redis.hdel(generations, ...members)
    for (const p of partitions(queue)) {
      // The fixed keys in one step first: a ticker's promotion (atomic, into the stream from the
      // delayed set) then runs wholly before it, and is undone, or finds nothing to promote.
      await this.redis.unlink(...WRITE_PARTS.map((part) => this.key(queue, p, part)))
    }
    // SCAN sees one server's keys: on a cluster, ask every master (a partition's keys share
    // a hash tag, so they all sit on one of them and one UNLINK takes them).
    const servers = this.redis instanceof Cluster ? this.redis.nodes('master') : [this.redis]
    const patterns = [
      ...partitions(queue).map((p) => this.keys.partitionPattern(queue.tenantId, queue.name, p)),
      this.keys.queuePattern(queue.tenantId, queue.name),
    ]
    for (const server of servers) {
      for (const pattern of patterns) {
        let cursor = '0'
        do {
          const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
          if (found.length > 0) await this.redis.unlink(...found)
          cursor = next
        } while (cursor !== '0')
      }
    }
  }

  async trimPartition(
    queue: Queue,
    partition: number,
    retentionBoundMs: number,
    batch: number,
    maxBatches: number,
    ledgerFloorMs = 0
  ): Promise<number> {
    let trimmed = 0
    for (let i = 0; i < maxBatches; i++) {
      const n = await this.redis.trim(
        this.key(queue, partition, 'stream'),
        this.key(queue, partition, 'index'),
        this.key(queue, partition, 'ledgerGap'),
        retentionBoundMs,
        batch,
        ledgerFloorMs
      )
      trimmed += n
      if (n < batch) break
    }
    return trimmed
  }
}

const removedRecord = (q: RemovedQueue) =>
  JSON.stringify({
    tenantId: q.tenantId,
    name: q.name,
    partitionCount: q.partitionCount,
    subscriptionIds: q.subscriptionIds,
  } satisfies RemovedRecord)
