import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { Consumer, drain, produce } from './client'
import { type DeliveryRecord, expectValid, History, report } from './oracle'
import { reaper } from './processes'
import { outgoing, startSingleService, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

const MESSAGES = 1000
const MAX_ATTEMPTS = 5
/** One message in a hundred always fails (RELIABILITY R7: 1 %). */
const isPoison = (id: string) => Number(id.split('-')[1]) % 100 === 7

test('R7 poison messages: dead-lettered exactly once after exactly maxRetryAttempts deliveries, invariant at every sample', async () => {
  const { client } = await startSingleService()
  const history = new History()
  const tenant = newTenant()
  const target = (
    await subscribedQueues(
      client,
      [tenant],
      { name: 'work', partitionCount: 2, maxLength: 100_000 },
      { maxRetryAttempts: MAX_ATTEMPTS, retryDelayMs: 100, retryBackoff: 'fixed' }
    )
  )[0]!
  await produce(client, history, outgoing('r7', [target], { count: MESSAGES }), {
    concurrency: 10,
  })

  const handle = (m: { messageId: string }) => (isPoison(m.messageId) ? 'nack' : 'ack')
  const consumers = [1, 2, 3].map((n) =>
    new Consumer({
      client,
      ...target,
      name: `c${n}`,
      // Slow enough that the invariant is sampled several times while messages move.
      max: 5,
      processingMs: [50, 100],
      handle,
      onDelivery: (record) => history.deliver(record),
    }).start()
  )

  // published = acked + pending + unread + dead-lettered, read while no consumer is mid-request.
  const samples: number[] = []
  const violations: Array<Record<string, number>> = []
  const sample = async () => {
    await Promise.all(consumers.map((c) => c.pause()))
    try {
      const sub = await client.must(
        tenant,
        'GET',
        `/subscriptions/${target.subscriptionId}`,
        undefined,
        200
      )
      const dlq = await client.call(tenant, 'GET', '/queues/work.dlq')
      const dead = dlq.status === 200 ? dlq.body.stats.length : 0
      const { acked, pending, lag } = sub.stats
      const total = acked + pending + lag + dead
      samples.push(total)
      if (total !== MESSAGES) violations.push({ acked, pending, lag, dead })
      return sub.stats.pending + sub.stats.lag
    } finally {
      for (const c of consumers) c.resume()
    }
  }
  const started = Date.now()
  while ((await sample()) > 0) {
    if (Date.now() - started > 60_000) throw new Error('consumers did not finish')
    await Bun.sleep(1000)
  }
  await Promise.all(consumers.map((c) => c.stop()))
  await drain(client, history, [target], { handle })
  const figures = history.check()

  const byMessage = history.byMessage()
  const poison = [...history.publishes.keys()].filter(isPoison)
  const poisonDeliveries = poison.map((id) => byMessage.get(id) ?? [])
  const wrongAttempts = poisonDeliveries.filter(
    (list) =>
      list.length !== MAX_ATTEMPTS ||
      list
        .map((d) => d.deliveryCount)
        .toSorted((a, b) => a - b)
        .join() !== '1,2,3,4,5'
  ).length
  const deadOnce = poison.filter((id) => history.deadLetters.get(id) === 1).length
  const deadOthers = [...history.deadLetters.keys()].filter((id) => !isPoison(id)).length

  // Redrive: the dead letters come back with a fresh count and are handled this time.
  const redriven = await client.must(tenant, 'POST', '/queues/work.dlq/redrive', {}, 200)
  const again: DeliveryRecord[] = []
  const fixed = new Consumer({
    client,
    ...target,
    name: 'after-redrive',
    waitMs: 500,
    onDelivery: (record) => again.push(record),
  }).start()
  const deadline = Date.now() + 20_000
  while (again.length < poison.length && Date.now() < deadline) await Bun.sleep(100)
  await fixed.stop()
  const dlqAfter = await client.must(tenant, 'GET', '/queues/work.dlq', undefined, 200)
  const subAfter = await client.must(
    tenant,
    'GET',
    `/subscriptions/${target.subscriptionId}`,
    undefined,
    200
  )

  report('R7 poison → DLQ', {
    ...figures,
    poison: poison.length,
    wrongAttempts,
    deadOnce,
    deadOthers,
    samples: samples.length,
    invariantViolations: violations.length,
    redriven: redriven.redriven,
    redeliveredFresh: again.filter((d) => d.deliveryCount === 1 && isPoison(d.messageId)).length,
  })
  expectValid(figures)
  expect(poison.length).toBe(MESSAGES / 100)
  expect(wrongAttempts).toBe(0)
  expect(deadOnce).toBe(poison.length)
  expect(deadOthers).toBe(0)
  expect(samples.length).toBeGreaterThanOrEqual(4)
  expect(violations).toEqual([])
  expect(redriven.redriven).toBe(poison.length)
  expect(again.map((d) => d.messageId).toSorted()).toEqual(poison.toSorted())
  expect(again.every((d) => d.deliveryCount === 1)).toBe(true)
  expect(dlqAfter.stats.length).toBe(0)
  expect(subAfter.stats.pending).toBe(0)
}, 120_000)
