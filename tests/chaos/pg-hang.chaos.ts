import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { type Answer, drain } from './client'
import { expectValid, History, report } from './oracle'
import { reaper } from './processes'
import { startSingleService, steadyTraffic, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

/** Longer than the service's 10 s request deadline, so a request stuck on it must hit that. */
const FREEZE_MS = 12_000

test('PostgreSQL sessions frozen: metadata requests answer (503 at worst) within the 10 s deadline, publishing goes on, lost 0', async () => {
  const { service, client, database } = await startSingleService()
  if (!database.freezeSessions) {
    console.log('PostgreSQL case skipped: it freezes PostgreSQL sessions (TEST_PG_URL)')
    return
  }
  const history = new History()
  const targets = await subscribedQueues(client, [newTenant(), newTenant()], {
    name: 'jobs',
    maxLength: 100_000,
  })
  // Publishing and consuming read queue metadata from the process's cache, not PostgreSQL.
  const traffic = steadyTraffic(client, history, targets, { prefix: 'pg' })
  await Bun.sleep(1000)

  const thaw = await database.freezeSessions()
  const frozenAt = Date.now()
  // Meanwhile, every half second, a request that needs PostgreSQL: creating a queue.
  const creates: Answer[] = []
  const creating: Array<Promise<void>> = []
  while (Date.now() - frozenAt < FREEZE_MS) {
    creating.push(
      client
        .call(newTenant(), 'POST', '/queues', { name: 'fresh' }, { timeoutMs: 20_000 })
        .then((a) => {
          creates.push(a)
        })
    )
    await Bun.sleep(500)
  }
  thaw()
  await Promise.all(creating)
  const afterThaw = await client.call(newTenant(), 'POST', '/queues', { name: 'after' })
  await Bun.sleep(1000)
  await traffic.stop()
  await drain(client, history, targets)

  const figures = history.check()
  const statuses: Record<number, number> = {}
  for (const a of creates) statuses[a.status] = (statuses[a.status] ?? 0) + 1
  const maxCreateMs = Math.round(Math.max(...creates.map((a) => a.ms)))
  report('PostgreSQL frozen', {
    ...figures,
    freezeMs: FREEZE_MS,
    creates: statuses,
    maxCreateMs,
    createAfterThaw: afterThaw.status,
  })
  expectValid(figures)
  // Every request answered: created, or 503 at the deadline; none left hanging.
  expect(creates.every((a) => a.status === 201 || a.status === 503)).toBe(true)
  expect(maxCreateMs).toBeLessThanOrEqual(10_000 + 1500)
  expect(afterThaw.status).toBe(201)
  expect(service.running).toBe(true)
  expect(service.logs()).not.toMatch(/unhandled|uncaught/i)
}, 120_000)
