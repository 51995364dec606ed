import { describe, expect, test } from 'bun:test'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

const PULL = {
  group: 'g',
  consumer: 'c',
  max: 10,
  visibilityMs: 30_000,
  maxDeliveries: 3,
  deadHoldMs: 1000,
}
const SETTLE = { maxDeliveries: 3, deadHoldMs: 1000 }

describe('message store', () => {
  test('write: published, scheduled, duplicate within the window, full past maxLength', async () => {
    const { messages } = await storesOf()
    const queue = queueOf()
    const now = Date.now()
    const results = await messages.write(
      queue,
      0,
      [writeOf('a'), writeOf('b', now + 60_000), writeOf('c', 0, 'd1'), writeOf('c2', 0, 'd1')],
      WRITE_OPTS(now)
    )
    expect(results.map((r) => [r.status, r.duplicate])).toEqual([
      ['published', false],
      ['scheduled', false],
      ['published', false],
      ['published', true],
    ])
    expect(results[0]!.streamId).toMatch(/^\d+-\d+$/)
    expect(results[1]!.streamId).toBeNull()
    // The duplicate answers with the first copy's entry.
    expect(results[3]!.streamId).toBe(results[2]!.streamId)
    const full = await messages.write(queue, 0, [writeOf('z')], {
      ...WRITE_OPTS(now),
      maxLength: 3,
    })
    expect(full.map((r) => r.status)).toEqual(['full'])
  })

  test('routeDedup: an id keeps the partition its first copy took', async () => {
    const { messages } = await storesOf()
    const queue = queueOf(4)
    expect(await messages.routeDedup(queue, [{ dedupId: 'x', partition: 2 }], 60_000)).toEqual([2])
    expect(
      await messages.routeDedup(
        queue,
        [
          { dedupId: 'x', partition: 0 },
          { dedupId: 'y', partition: 3 },
        ],
        60_000
      )
    ).toEqual([2, 3])
  })

  test('pull hands out once; ack settles; nack brings it back with its count up', async () => {
    const { messages, groups } = await storesOf()
    const queue = queueOf()
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.write(queue, 0, [writeOf('a'), writeOf('b')], WRITE_OPTS())
    const first = await messages.pull(queue, 0, { ...PULL, now: Date.now() })
    expect(first.delivered.map((d) => [d.message.messageId, d.deliveryCount])).toEqual([
      ['a', 1],
      ['b', 1],
    ])
    expect(first.nextDeadline).toBeGreaterThan(Date.now())
    expect((await messages.pull(queue, 0, { ...PULL, now: Date.now() })).delivered).toEqual([])
    const [a, b] = first.delivered as [(typeof first.delivered)[0], (typeof first.delivered)[0]]
    const acked = await messages.settle(
      queue,
      0,
      'g',
      'ack',
      [{ streamId: a.streamId, deliveryCount: 1, delayMs: 0 }],
      { ...SETTLE, now: Date.now(), details: 'ids' }
    )
    expect(acked.settled).toBe(1)
    expect(acked.done.map((d) => d.messageId)).toEqual(['a'])
    const nacked = await messages.settle(
      queue,
      0,
      'g',
      'nack',
      [{ streamId: b.streamId, deliveryCount: 1, delayMs: 0 }],
      { ...SETTLE, now: Date.now() }
    )
    expect(nacked).toMatchObject({ settled: 1, dead: [] })
    const again = await messages.pull(queue, 0, { ...PULL, now: Date.now() + 1 })
    expect(again.delivered.map((d) => [d.message.messageId, d.deliveryCount])).toEqual([['b', 2]])
    // A stale receipt (the first delivery's count) settles nothing.
    const stale = await messages.settle(
      queue,
      0,
      'g',
      'ack',
      [{ streamId: b.streamId, deliveryCount: 1, delayMs: 0 }],
      { ...SETTLE, now: Date.now() }
    )
    expect(stale.settled).toBe(0)
  })

  test('a pull on a group that is gone is MQ_SUBSCRIPTION_NOT_FOUND', async () => {
    const { messages } = await storesOf()
    const queue = queueOf()
    await messages.write(queue, 0, [writeOf('a')], WRITE_OPTS())
    await expect(messages.pull(queue, 0, { ...PULL, now: Date.now() })).rejects.toMatchObject({
      code: 'MQ_SUBSCRIPTION_NOT_FOUND',
    })
  })
})
