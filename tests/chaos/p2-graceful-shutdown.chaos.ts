import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { drain, queueWithSubscription } from './client'
import { expectValid, History, report } from './oracle'
import { reaper } from './processes'
import { startSingleService, steadyTraffic, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

test('P2 graceful shutdown under load: in-flight work finished, no duplicates after restart, no 5xx', async () => {
  const { service, client } = await startSingleService()
  const statuses = new Map<number, number>()
  client.observe = (_method, _path, answer) =>
    statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1)
  const history = new History()
  const tenants = [newTenant(), newTenant()]
  const targets = await subscribedQueues(client, tenants, {
    name: 'jobs',
    partitionCount: 2,
    maxLength: 100_000,
  })
  let stop = false
  // A consumer of a queue nobody publishes to, always in a long poll of the longest wait.
  const idle = await queueWithSubscription(client, tenants[0]!, { name: 'quiet' })
  const idlePulls: Array<{ at: number; status: number; ms: number }> = []
  const idleAbort = new AbortController()
  const idlePolling = (async () => {
    while (!stop) {
      const answer = await client.call(
        tenants[0]!,
        'POST',
        `/subscriptions/${idle}/pull`,
        { waitMs: 20_000 },
        { timeoutMs: 30_000, signal: idleAbort.signal }
      )
      idlePulls.push({ at: Date.now() - answer.ms, status: answer.status, ms: answer.ms })
      if (answer.status !== 200) await Bun.sleep(100)
    }
  })()
  const traffic = steadyTraffic(client, history, targets, {
    prefix: 'p2',
    consumersPer: 2,
    consumer: {
      waitMs: 5000,
      processingMs: [0, 30],
      // Long enough to wait out the restart: a receipt stays good until its visibility ends.
      settleRetryMs: 25_000,
    },
  })
  await Bun.sleep(3000)
  const termAt = Date.now()
  const exitCode = await service.terminate()
  const shutdownMs = Date.now() - termAt
  await service.start()
  await Bun.sleep(3000)
  await traffic.stop()
  stop = true
  idleAbort.abort()
  await idlePolling
  // The long poll in progress at SIGTERM ended with an answer, not a dropped connection.
  const idleAnswer = idlePulls.find((p) => p.at < termAt && p.at + p.ms >= termAt)
  const drainMs = await drain(client, history, targets)

  const figures = history.check()
  const serverErrors = [...statuses].filter(([s]) => s >= 500).reduce((n, [, c]) => n + c, 0)
  report('P2 graceful shutdown', {
    ...figures,
    exitCode,
    shutdownMs,
    serverErrors,
    idleLongPoll: idleAnswer,
    noAnswer: statuses.get(0) ?? 0,
    drainMs,
  })
  expectValid(figures)
  expect(figures.duplicated).toBe(0)
  expect(exitCode).toBe(0)
  expect(shutdownMs).toBeLessThan(10_000)
  expect(serverErrors).toBe(0)
  expect(idleAnswer?.status).toBe(200)
}, 120_000)
