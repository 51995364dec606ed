import { describe, expect, test } from 'bun:test'
import type { Redis } from 'ioredis'
import { queueOf, storesOf, WRITE_OPTS, writeOf } from '../../../helpers/stores'

describe('wait store', () => {
  test('lastIds: the newest entry of each partition, 0-0 for an empty one', async () => {
    const { messages, waits } = await storesOf()
    const queue = queueOf(2)
    const [written] = await messages.write(queue, 1, [writeOf('a')], WRITE_OPTS())
    expect(await waits.lastIds(queue)).toEqual(['0-0', written!.streamId!])
  })

  test('a wait ends when an entry arrives, and after its timeout when none does', async () => {
    const { redis, messages, waits } = await storesOf()
    const queue = queueOf(2)
    const client = (redis as Redis).duplicate()
    // Connections here do not queue commands while they connect.
    await new Promise((ready) => client.once('ready', ready))
    try {
      const after = await waits.lastIds(queue)
      let started = Date.now()
      await waits.waitForEntries(client, queue, after, 150)
      expect(Date.now() - started).toBeGreaterThanOrEqual(100)
      started = Date.now()
      const waiting = waits.waitForEntries(client, queue, after, 10_000)
      await Bun.sleep(50)
      await messages.write(queue, 1, [writeOf('a')], WRITE_OPTS())
      await waiting
      expect(Date.now() - started).toBeLessThan(5000)
    } finally {
      client.disconnect()
    }
  })
})
