import { describe, expect, test } from 'bun:test'
import type { Subscription } from '../../../../src/domain/subscriptions'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

const PULL = { max: 10, visibilityMs: 30_000, maxDeliveries: 3, deadHoldMs: 1000 }

describe('group store', () => {
  test('groups: created once on every partition, lag and pending, seek, removal', async () => {
    const { messages, groups } = await storesOf()
    const queue = queueOf(2)
    await messages.write(queue, 0, [writeOf('a'), writeOf('b')], WRITE_OPTS())
    await messages.write(queue, 1, [writeOf('c')], WRITE_OPTS())
    await groups.ensureGroup(queue, 'g', 'earliest')
    await groups.ensureGroup(queue, 'g', 'latest')
    expect(await groups.groupStats(queue, 'g')).toEqual({ lag: 3, pending: 0 })
    await messages.pull(queue, 0, { ...PULL, group: 'g', consumer: 'c', max: 1, now: Date.now() })
    expect(await groups.groupStats(queue, 'g')).toEqual({ lag: 2, pending: 1 })
    expect(await groups.seek(queue, 'g', 'latest')).toBe('$')
    expect((await groups.groupStats(queue, 'g')).lag).toBe(0)
    expect(await groups.seek(queue, 'g', 'earliest')).toBe('0')
    expect((await groups.groupStats(queue, 'g')).lag).toBe(3)
    expect(await groups.seek(queue, 'g', new Date(1000))).toBe('999-18446744073709551615')
    await groups.removeGroup(queue, 'g')
    expect(await groups.groupStats(queue, 'g')).toEqual({ lag: 0, pending: 0 })
  })

  test('removeConsumer hands what the consumer holds to its heir', async () => {
    const { messages, groups } = await storesOf()
    const queue = queueOf()
    await groups.ensureGroup(queue, 'g', 'earliest')
    await messages.write(queue, 0, [writeOf('a'), writeOf('b')], WRITE_OPTS())
    await messages.pull(queue, 0, { ...PULL, group: 'g', consumer: 'old', now: Date.now() })
    expect(await groups.removeConsumer(queue, 'g', 'old', 'heir')).toBe(2)
    // Handed over due at once, with the delivery count kept.
    const pulled = await messages.pull(queue, 0, {
      ...PULL,
      group: 'g',
      consumer: 'heir',
      now: Date.now(),
    })
    expect(pulled.delivered.map((d) => [d.message.messageId, d.deliveryCount])).toEqual([
      ['a', 2],
      ['b', 2],
    ])
  })

  test("counters: counted per outcome, nothing for zero, cleared with the subscription's", async () => {
    const { groups } = await storesOf()
    const sub = { tenantId: crypto.randomUUID(), id: crypto.randomUUID() } as Subscription
    await groups.countOutcome(sub, 'delivered', 3)
    await groups.countOutcome(sub, 'acked', 2)
    await groups.countOutcome(sub, 'failed', 0)
    expect(await groups.counters(sub)).toEqual({
      delivered: 3,
      acked: 2,
      failed: 0,
      deadLettered: 0,
    })
    await groups.clearCounters(sub)
    expect(await groups.counters(sub)).toEqual({
      delivered: 0,
      acked: 0,
      failed: 0,
      deadLettered: 0,
    })
  })
})
