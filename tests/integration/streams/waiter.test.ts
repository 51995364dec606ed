import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { publishMessage } from '../../../src/domain/publish'
import { createQueue } from '../../../src/domain/queues'
import { BlockingWaiter } from '../../../src/streams/waiter'
import { newTenant } from '../../helpers/harness'
import { type OutageDeps, startOutageDeps, timed } from '../../helpers/outage'

describe('long-poll waiter', () => {
  let outage: OutageDeps | undefined

  beforeAll(async () => {
    outage = await startOutageDeps()
  })
  afterAll(async () => {
    await outage?.close()
  })

  test('a wait on a frozen Redis returns after its timeout and the 1 s watchdog, then works again', async () => {
    const { deps } = outage!
    const tenant = newTenant()
    const ctx = {
      tenantId: tenant,
      principal: { kind: 'user' as const, name: 't' },
      requestId: 'r',
    }
    const queue = await createQueue(deps.queueDeps, ctx, { name: 'waiting', partitionCount: 2 })
    const { waiter } = deps.consumeDeps
    const after = await waiter.lastIds(queue)

    outage!.freeze()
    try {
      const { ms } = await timed(() => waiter.wait(queue, after, 300))
      expect(ms).toBeGreaterThanOrEqual(300)
      expect(ms).toBeLessThan(300 + 1000 + 500)
    } finally {
      outage!.thaw()
    }
    // The dropped connection is replaced: a wait ends as soon as a message comes.
    const waiting = timed(() => waiter.wait(queue, after, 3000))
    await Bun.sleep(100)
    await publishMessage(deps.publishDeps, ctx, 'waiting', { payload: 1 })
    expect((await waiting).ms).toBeLessThan(2000)
  })

  test('the connection pool gives back what a burst of concurrent waits opened', async () => {
    const { deps } = outage!
    const ctx = {
      tenantId: newTenant(),
      principal: { kind: 'user' as const, name: 't' },
      requestId: 'r',
    }
    const queue = await createQueue(deps.queueDeps, ctx, { name: 'burst' })
    const blockingOnServer = async () =>
      ((await deps.redis.call('CLIENT', 'LIST')) as string)
        .split('\n')
        .filter((line) => line.includes(`name=mq-blocking-${process.pid} `)).length
    const before = await blockingOnServer()
    const waiter = new BlockingWaiter(deps.messages, deps.redisTarget, deps.logger, 256, 300)
    try {
      const after = await waiter.lastIds(queue)
      // A burst, as when a killed consumer's polls overlap its successor's: 20 at once.
      await Promise.all(Array.from({ length: 20 }, () => waiter.wait(queue, after, 100)))
      expect(waiter.connections).toBe(20)
      expect(await blockingOnServer()).toBe(before + 20)
      // Then one poll at a time, for several idle periods: the pool comes down to what it uses.
      const until = performance.now() + 1500
      while (performance.now() < until) await waiter.wait(queue, after, 100)
      expect(waiter.connections).toBe(1)
      expect(await blockingOnServer()).toBe(before + 1)
    } finally {
      await waiter.close()
    }
    expect(waiter.connections).toBe(0)
    for (let i = 0; i < 50 && (await blockingOnServer()) > before; i++) await Bun.sleep(20)
    expect(await blockingOnServer()).toBe(before)
  })
})
