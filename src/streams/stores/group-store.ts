import type { GroupPosition } from '../../domain/messages'
import type { GroupStore } from '../../domain/ports'
import type { Queue } from '../../domain/queues'
import type { Subscription, SubscriptionCounters } from '../../domain/subscriptions'
import { fields, PartitionKeys, partitions } from './base'

/** Consumer groups on every partition of a queue, and the delivery counters of subscriptions. */
export class RedisGroupStore extends PartitionKeys implements GroupStore {
  async ensureGroup(queue: Queue, group: string, start: GroupPosition): Promise<void> {
    const id = positionOf(start)
    for (const p of partitions(queue)) {
      try {
        await this.redis.xgroup('CREATE', this.key(queue, p, 'stream'), group, id, 'MKSTREAM')
      } catch (err) {
        // Another subscription of the same group created it first.
        if (!(err instanceof Error && err.message.startsWith('BUSYGROUP'))) throw err
      }
    }
  }

  async removeGroup(queue: Queue, group: string): Promise<void> {
    for (const p of partitions(queue)) {
      await this.redis.xgroup('DESTROY', this.key(queue, p, 'stream'), group)
      const { heads, parked } = this.ordering(queue, p, group)
      await this.redis.unlink(this.inflight(queue, p, group), heads, parked)
    }
  }

  async removeConsumer(
    queue: Queue,
    group: string,
    consumer: string,
    heir: string
  ): Promise<number> {
    let handed = 0
    for (const p of partitions(queue)) {
      handed += await this.redis.removeConsumer(
        this.key(queue, p, 'stream'),
        this.inflight(queue, p, group),
        group,
        consumer,
        heir,
        Date.now()
      )
    }
    return handed
  }

  async seek(queue: Queue, group: string, position: GroupPosition): Promise<string> {
    const id = positionOf(position)
    for (const p of partitions(queue)) {
      await this.redis.xgroup('SETID', this.key(queue, p, 'stream'), group, id)
    }
    return id
  }

  async groupStats(queue: Queue, group: string): Promise<{ lag: number; pending: number }> {
    let lag = 0
    let pending = 0
    for (const p of partitions(queue)) {
      const groups = (
        (await this.redis.xinfo('GROUPS', this.key(queue, p, 'stream'))) as unknown[]
      ).map(fields)
      const g = groups.find((x) => x.name === group)
      if (!g) continue
      pending += Number(g.pending ?? 0)
      // Redis reports no lag when it cannot tell (after deletions); count the unread entries.
      lag +=
        g.lag === null || g.lag === undefined
          ? await this.unread(queue, p, String(g['last-delivered-id']))
          : Number(g.lag)
    }
    return { lag, pending }
  }

  private async unread(queue: Queue, partition: number, lastDelivered: string): Promise<number> {
    const entries = await this.redis.xrange(
      this.key(queue, partition, 'stream'),
      `(${lastDelivered}`,
      '+',
      'COUNT',
      10_000
    )
    return entries.length
  }

  async counters(sub: Subscription): Promise<SubscriptionCounters> {
    const raw = await this.redis.hgetall(this.keys.subscriptionCounters(sub.tenantId, sub.id))
    return {
      delivered: Number(raw.delivered ?? 0),
      acked: Number(raw.acked ?? 0),
      failed: Number(raw.failed ?? 0),
      deadLettered: Number(raw.deadLettered ?? 0),
    }
  }

  async countOutcome(
    sub: Subscription,
    outcome: keyof SubscriptionCounters,
    n: number
  ): Promise<void> {
    if (n > 0)
      await this.redis.hincrby(this.keys.subscriptionCounters(sub.tenantId, sub.id), outcome, n)
  }

  async clearCounters(sub: Subscription): Promise<void> {
    // Two hash tags: one command each (a cluster refuses a command across slots).
    const flow = this.keys.subscriptionFlow(sub.tenantId, sub.id)
    await this.redis.unlink(
      this.keys.subscriptionCounters(sub.tenantId, sub.id),
      flow.leases,
      flow.bucket,
      flow.pause
    )
    await this.redis.zrem(this.keys.tenantLastAck(sub.tenantId), sub.id)
  }
}

/** The stream id a group position stands for. */
function positionOf(position: GroupPosition): string {
  if (position === 'earliest') return '0'
  if (position === 'latest') return '$'
  // Just before the time: entries from that millisecond on are read next.
  return `${Math.max(0, position.getTime() - 1)}-18446744073709551615`
}
