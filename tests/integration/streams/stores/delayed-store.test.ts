import { describe, expect, test } from 'bun:test'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

describe('delayed store', () => {
  test('a registered partition comes due, and its promotion moves the messages into the stream', async () => {
    const { messages, delayed, inspection } = await storesOf()
    const queue = queueOf(2)
    const now = Date.now()
    const due = now + 50
    await messages.write(queue, 1, [writeOf('a', due), writeOf('b', due + 1)], WRITE_OPTS(now))
    await delayed.registerDelayed(queue, 1, due)
    const member = `${queue.tenantId}|${queue.name}|1`
    // The registry is shared with other tests: look for this queue's entry only.
    const mine = async (at: number) =>
      (await delayed.duePartitions(at, 10_000)).filter((d) => d.member === member)
    expect(await mine(now)).toEqual([])
    expect(await delayed.earliestDue()).not.toBeNull()
    const [entry] = await mine(due + 10)
    expect(entry).toBeDefined()
    expect(await delayed.promotePartition(member, entry!.generation, due + 10, 1)).toEqual([
      due,
      due + 1,
    ])
    expect(await mine(Number.MAX_SAFE_INTEGER)).toEqual([])
    const entries = await inspection.readEntries(queue, 1, '0-0', 10)
    expect(entries.map((e) => e.message.messageId)).toEqual(['a', 'b'])
  })

  test('repairDelayed registers a delayed message whose registration was lost', async () => {
    const { messages, delayed } = await storesOf()
    const queue = queueOf()
    const due = Date.now() + 60_000
    await messages.write(queue, 0, [writeOf('a', due)], WRITE_OPTS())
    const member = `${queue.tenantId}|${queue.name}|0`
    const registered = async () =>
      (await delayed.duePartitions(due, 10_000)).some((d) => d.member === member)
    expect(await registered()).toBe(false)
    await delayed.repairDelayed(queue, 0)
    expect(await registered()).toBe(true)
  })

  test('an occurrence is claimed once', async () => {
    const { delayed } = await storesOf()
    const id = crypto.randomUUID()
    expect(await delayed.claimOccurrence(id, 1000, 60_000)).toBe(true)
    expect(await delayed.claimOccurrence(id, 1000, 60_000)).toBe(false)
    expect(await delayed.claimOccurrence(id, 2000, 60_000)).toBe(true)
  })
})
