import { describe, expect, test } from 'bun:test'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

describe('inspection store', () => {
  test("findMessage: a scheduled one with its due time, a published one with each group's progress", async () => {
    const { messages, groups, inspection } = await storesOf()
    const queue = queueOf(2)
    const due = Date.now() + 60_000
    await messages.write(queue, 0, [writeOf('later', due)], WRITE_OPTS())
    await messages.write(queue, 1, [writeOf('now')], WRITE_OPTS())
    await groups.ensureGroup(queue, 'g', 'earliest')
    await groups.ensureGroup(queue, 'h', 'earliest')
    await messages.pull(queue, 1, {
      group: 'g',
      consumer: 'c',
      max: 1,
      now: Date.now(),
      visibilityMs: 30_000,
      maxDeliveries: 3,
      deadHoldMs: 1000,
    })
    expect(await inspection.findMessage(queue, 'later')).toMatchObject({
      partition: 0,
      streamId: null,
      deliverAt: due,
      message: { messageId: 'later' },
    })
    const found = await inspection.findMessage(queue, 'now')
    expect(found).toMatchObject({ partition: 1, deliverAt: null, message: { messageId: 'now' } })
    expect(found!.groups).toEqual([
      { consumerGroup: 'g', state: 'delivered', deliveryCount: 1 },
      { consumerGroup: 'h', state: 'waiting', deliveryCount: 0 },
    ])
    expect(await inspection.findMessage(queue, 'none')).toBeNull()
  })

  test('readEntries pages after an id; removeEntries deletes them with their index entries', async () => {
    const { messages, inspection } = await storesOf()
    const queue = queueOf()
    await messages.write(
      queue,
      0,
      ['a', 'b', 'c'].map((id) => writeOf(id)),
      WRITE_OPTS()
    )
    const all = await inspection.readEntries(queue, 0, '0-0', 10)
    expect(all.map((e) => e.message.messageId)).toEqual(['a', 'b', 'c'])
    const a = all[0]
    const after = await inspection.readEntries(queue, 0, a!.streamId, 1)
    expect(after.map((e) => e.message.messageId)).toEqual(['b'])
    expect(await inspection.removeEntries(queue, 0, [a!.streamId])).toBe(1)
    expect(await inspection.removeEntries(queue, 0, [])).toBe(0)
    expect(await inspection.findMessage(queue, 'a')).toBeNull()
    expect((await inspection.readEntries(queue, 0, '0-0', 10)).length).toBe(2)
  })

  test('cancelScheduled removes a still-scheduled message, once', async () => {
    const { messages, inspection } = await storesOf()
    const queue = queueOf(3)
    await messages.write(queue, 2, [writeOf('s', Date.now() + 60_000)], WRITE_OPTS())
    expect(await inspection.cancelScheduled(queue, 's')).toBe(true)
    expect(await inspection.cancelScheduled(queue, 's')).toBe(false)
    expect(await inspection.findMessage(queue, 's')).toBeNull()
  })
})
