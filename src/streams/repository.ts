import type { MessageStore } from '../domain/ports'
import type { Queue, QueueStats } from '../domain/queues'
import type { Keys } from './keys'
import type { RedisClient } from './redis'

type Reply = [Error | null, unknown]

/** Reads an XINFO reply (a flat field/value list under RESP2) into an object. */
function fields(reply: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  if (!Array.isArray(reply)) return out
  for (let i = 0; i + 1 < reply.length; i += 2) out[String(reply[i])] = reply[i + 1]
  return out
}

/** Compares stream ids (`<ms>-<seq>`) numerically. */
function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt)
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt)
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1
}

const partitions = (queue: Queue) => Array.from({ length: queue.partitionCount }, (_, p) => p)

/** The tenant-aware Redis Streams store of messages. */
export class StreamsRepository implements MessageStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys
  ) {}

  private key(queue: Queue, partition: number, part: 'stream' | 'delayed' | 'delayedBodies') {
    return this.keys.partition(queue.tenantId, queue.name, partition, part)
  }

  async queueStats(queue: Queue): Promise<QueueStats> {
    const pipeline = this.redis.pipeline()
    for (const p of partitions(queue)) {
      // A stream that was never written does not exist: XINFO then errors, which means zero.
      pipeline.xinfo('STREAM', this.key(queue, p, 'stream'))
      pipeline.xinfo('GROUPS', this.key(queue, p, 'stream'))
      pipeline.zcard(this.key(queue, p, 'delayed'))
    }
    const replies = ((await pipeline.exec()) ?? []) as Reply[]
    const stats: QueueStats = {
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: null,
    }
    for (let i = 0; i < replies.length; i += 3) {
      const [streamErr, stream] = replies[i]!
      const [groupsErr, groups] = replies[i + 1]!
      const [delayedErr, delayed] = replies[i + 2]!
      if (delayedErr) throw delayedErr
      stats.scheduled += Number(delayed)
      if (streamErr || groupsErr) continue
      const info = fields(stream)
      stats.length += Number(info.length ?? 0)
      const last = String(info['last-generated-id'] ?? '0-0')
      if (last !== '0-0' && (!stats.lastMessageId || compareIds(last, stats.lastMessageId) > 0)) {
        stats.lastMessageId = last
      }
      const groupList = (groups as unknown[]).map(fields)
      // Every partition carries the same groups; count them once.
      stats.consumerGroups = Math.max(stats.consumerGroups, groupList.length)
      for (const g of groupList) stats.pending += Number(g.pending ?? 0)
    }
    return stats
  }

  async purge(queue: Queue): Promise<number> {
    let removed = 0
    for (const p of partitions(queue)) {
      removed += await this.redis.purge(
        this.key(queue, p, 'stream'),
        this.key(queue, p, 'delayed'),
        this.key(queue, p, 'delayedBodies')
      )
    }
    return removed
  }

  async removeQueue(queue: Queue): Promise<void> {
    for (const p of partitions(queue)) {
      const pattern = this.keys.partitionPattern(queue.tenantId, queue.name, p)
      let cursor = '0'
      do {
        const [next, found] = await this.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
        if (found.length > 0) await this.redis.unlink(...found)
        cursor = next
      } while (cursor !== '0')
    }
  }
}
