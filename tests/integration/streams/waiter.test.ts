import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { publishMessage } from '../../../src/domain/publish'
import { createQueue } from '../../../src/domain/queues'
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
})
