import type { DelayedStore } from '../../domain/ports'
import type { Queue } from '../../domain/queues'
import type { PartitionPart } from '../keys'
import { decodePromote } from '../scripts/replies'
import { delayedMember, PartitionKeys, type Reply, sideBySide } from './base'

/**
 * The delayed registry (which partition has a delayed message due when), the promotion of due
 * messages into their streams, and the claims that let one ticker fire a schedule occurrence.
 */
export class RedisDelayedStore extends PartitionKeys implements DelayedStore {
  /**
   * Notes that a partition has a delayed message due at `due`, and wakes sleeping tickers.
   * Called after the message is stored, so a ticker never settles the entry without it.
   */
  async registerDelayed(queue: Queue, partition: number, due: number): Promise<void> {
    const { registry, generations, clock } = this.keys.delayedRegistry
    await this.redis.registerDelayed(
      registry,
      generations,
      clock,
      delayedMember(queue.tenantId, queue.name, partition),
      due
    )
    await this.redis.publish(this.keys.delayedWakeupChannel, String(due))
  }

  /**
   * Registers the partition's earliest delayed message when the registry has no entry for it
   * or a later one: a publish that died between storing the message and registering it (or
   * could not reach the registry's node) leaves that, and no ticker would ever look.
   */
  async repairDelayed(queue: Queue, partition: number): Promise<void> {
    const { registry } = this.keys.delayedRegistry
    const [[e1, earliest], [e2, registered]] = (await sideBySide([
      this.redis.zrange(this.key(queue, partition, 'delayed'), '0', '0', 'WITHSCORES'),
      this.redis.zscore(registry, delayedMember(queue.tenantId, queue.name, partition)),
    ])) as [Reply, Reply]
    if (e1 || e2) throw e1 ?? e2
    const due = (earliest as string[])[1]
    if (due === undefined) return
    if (registered !== null && Number(registered) <= Number(due)) return
    await this.registerDelayed(queue, partition, Number(due))
  }

  async duePartitions(
    now: number,
    limit: number
  ): Promise<Array<{ member: string; generation: string }>> {
    const { registry, generations } = this.keys.delayedRegistry
    const members = await this.redis.zrangebyscore(registry, '-inf', now, 'LIMIT', 0, limit)
    if (members.length === 0) return []
    const gens = await this.redis.hmget(generations, ...members)
    return members.map((member, i) => ({ member, generation: gens[i] ?? '' }))
  }

  async earliestDue(): Promise<number | null> {
    const [, score] = await this.redis.zrange(
      this.keys.delayedRegistry.registry,
      '0',
      '0',
      'WITHSCORES'
    )
    return score === undefined ? null : Number(score)
  }

  async promotePartition(
    member: string,
    generation: string,
    now: number,
    limit: number
  ): Promise<number[]> {
    const [tenantId, name, p] = member.split('|') as [string, string, string]
    const partition = Number(p)
    const key = (part: PartitionPart) => this.key({ tenantId, name }, partition, part)
    const dueTimes: number[] = []
    let nextDue = -1
    for (;;) {
      const promoted = decodePromote(
        await this.redis.promoteDue(
          key('stream'),
          key('delayed'),
          key('delayedBodies'),
          key('index'),
          now,
          limit
        )
      )
      dueTimes.push(...promoted.dueTimes)
      nextDue = promoted.nextDue
      if (promoted.promoted < limit || nextDue < 0 || nextDue > now) break
    }
    const { registry, generations } = this.keys.delayedRegistry
    await this.redis.settleDelayed(registry, generations, member, generation, nextDue)
    return dueTimes
  }

  async claimOccurrence(scheduleId: string, occurrenceMs: number, ttlMs: number): Promise<boolean> {
    const claimed = await this.redis.set(
      this.keys.scheduleClaim(scheduleId, occurrenceMs),
      '1',
      'PX',
      ttlMs,
      'NX'
    )
    return claimed === 'OK'
  }
}
