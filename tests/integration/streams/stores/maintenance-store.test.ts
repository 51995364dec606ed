import { describe, expect, test } from 'bun:test'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

const PULL = { max: 10, visibilityMs: 30_000, maxDeliveries: 3, deadHoldMs: 1000 }

describe('maintenance store', () => {
  test('queueStats sums the partitions; a partition never written counts zero', async () => {
    const { messages, groups, maintenance } = await storesOf()
    const queue = queueOf(3)
    expect(await maintenance.queueStats(queue)).toEqual({
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: null,
      ledgerGap: 0,
    })
    const written = [
      ...(await messages.write(queue, 0, [writeOf('a'), writeOf('b')], WRITE_OPTS())),
      ...(await messages.write(queue, 1, [writeOf('c')], WRITE_OPTS())),
    ]
    await messages.write(queue, 1, [writeOf('d', Date.now() + 60_000)], WRITE_OPTS())
    // The newest over the partitions: by time, then sequence (two may share a millisecond).
    const [last] = written
      .map((w) => w.streamId!)
      .sort((x, y) => {
        const [xm, xs] = x.split('-').map(Number) as [number, number]
        const [ym, ys] = y.split('-').map(Number) as [number, number]
        return ym - xm || ys - xs
      })
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.pull(queue, 0, { ...PULL, group: 'g', consumer: 'c', now: Date.now() })
    expect(await maintenance.queueStats(queue)).toEqual({
      length: 3,
      pending: 2,
      scheduled: 1,
      consumerGroups: 1,
      lastMessageId: last ?? null,
      ledgerGap: 0,
    })
  })

  test('purge empties the partitions and keeps the groups', async () => {
    const { messages, groups, maintenance } = await storesOf()
    const queue = queueOf(2)
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.write(queue, 0, [writeOf('a')], WRITE_OPTS())
    await messages.write(queue, 1, [writeOf('b'), writeOf('c', Date.now() + 60_000)], WRITE_OPTS())
    expect(await maintenance.purge(queue)).toBe(3)
    expect(await maintenance.queueStats(queue)).toMatchObject({
      length: 0,
      scheduled: 0,
      consumerGroups: 1,
    })
  })

  test('trimPartition drops acknowledged entries and keeps unread ones', async () => {
    const { messages, groups, maintenance, inspection } = await storesOf()
    const queue = queueOf()
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.write(
      queue,
      0,
      ['a', 'b', 'c'].map((id) => writeOf(id)),
      WRITE_OPTS()
    )
    const { delivered } = await messages.pull(queue, 0, {
      ...PULL,
      group: 'g',
      consumer: 'c',
      max: 2,
      now: Date.now(),
    })
    await messages.settle(
      queue,
      0,
      'g',
      'ack',
      delivered.map((d) => ({ streamId: d.streamId, deliveryCount: 1, delayMs: 0 })),
      { now: Date.now(), maxDeliveries: 3, deadHoldMs: 1000 }
    )
    expect(await maintenance.trimPartition(queue, 0, 0, 1, 10)).toBe(2)
    const left = await inspection.readEntries(queue, 0, '0-0', 10)
    expect(left.map((e) => e.message.messageId)).toEqual(['c'])
  })

  test('removeQueue deletes every key of the queue; the sweep does it again and forgets it', async () => {
    const { messages, groups, maintenance, redis, keys } = await storesOf()
    const queue = queueOf(2)
    const sub = { tenantId: queue.tenantId, id: crypto.randomUUID() }
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.write(queue, 0, [writeOf('a', 0, 'd')], WRITE_OPTS())
    await messages.write(queue, 1, [writeOf('b', Date.now() + 60_000)], WRITE_OPTS())
    await redis.hincrby(keys.subscriptionCounters(sub.tenantId, sub.id), 'acked', 1)
    const exists = () =>
      Promise.all([
        redis.exists(keys.partition(queue.tenantId, queue.name, 0, 'stream')),
        redis.exists(keys.partition(queue.tenantId, queue.name, 1, 'delayed')),
        redis.exists(keys.dedup(queue.tenantId, queue.name, 0, 'd')),
        redis.exists(keys.subscriptionCounters(sub.tenantId, sub.id)),
      ])
    expect(await exists()).toEqual([1, 1, 1, 1])
    await maintenance.removeQueue({ ...queue, subscriptionIds: [sub.id] })
    expect(await exists()).toEqual([0, 0, 0, 0])
    // A late writer recreates a key; the sweep removes it when no queue of the name exists.
    await messages.write(queue, 0, [writeOf('late')], WRITE_OPTS())
    const record = JSON.stringify({
      tenantId: queue.tenantId,
      name: queue.name,
      partitionCount: queue.partitionCount,
      subscriptionIds: [sub.id],
    })
    expect(await redis.zscore(keys.removedQueues, record)).not.toBeNull()
    await maintenance.sweepRemovedQueues(
      Date.now() + 1,
      async (tenantId) => tenantId !== queue.tenantId
    )
    expect(await exists()).toEqual([0, 0, 0, 0])
    expect(await redis.zscore(keys.removedQueues, record)).toBeNull()
  })
})
