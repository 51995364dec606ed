import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { type Answer, Consumer, drain, produce } from './client'
import { expectValid, History, report } from './oracle'
import { reaper } from './processes'
import { outgoing, startSingleService, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

const MESSAGES = 800
const MAX_LENGTH = 200

test('R8 full queue: 429 MQ_QUEUE_FULL when full, silent drops 0, no nil-field entry delivered', async () => {
  // Role all: its trimmer removes acknowledged entries while the queue is at its cap.
  const { client } = await startSingleService()
  const history = new History()
  const tenant = newTenant()
  const target = (
    await subscribedQueues(client, [tenant], {
      name: 'capped',
      partitionCount: 2,
      maxLength: MAX_LENGTH,
      overflow: 'reject',
    })
  )[0]!
  // One slow consumer: about 70 messages a second against producers that want far more.
  const consumer = new Consumer({
    client,
    ...target,
    name: 'slow',
    max: 5,
    processingMs: [60, 80],
    onDelivery: (record) => history.deliver(record),
  }).start()
  const full: Answer[] = []
  // The queue's length, sampled while it is being filled.
  let producing = true
  let maxLengthSeen = 0
  const sampling = (async () => {
    while (producing) {
      const queue = await client.call(tenant, 'GET', '/queues/capped')
      if (queue.status === 200) maxLengthSeen = Math.max(maxLengthSeen, queue.body.stats.length)
      await Bun.sleep(100)
    }
  })()
  await produce(client, history, outgoing('r8', [target], { count: MESSAGES }), {
    concurrency: 10,
    pauseMs: 5,
    // A message gets three tries at a full queue, then is given up as failed.
    maxFullAttempts: 3,
    onAnswer: (a) => {
      if (a.status === 429) full.push(a)
    },
  })
  producing = false
  await sampling
  await consumer.stop()
  const drainMs = await drain(client, history, [target])

  const figures = history.check()
  const unclear = full.filter(
    (a) =>
      a.body?.code !== 'MQ_QUEUE_FULL' ||
      !String(a.body?.message).includes(`maximum of ${MAX_LENGTH}`) ||
      !(a.body?.retryAfter > 0)
  ).length
  report('R8 full queue', {
    ...figures,
    answers429: full.length,
    unclear429: unclear,
    maxLengthSeen,
    drainMs,
  })
  expectValid(figures)
  expect(full.length).toBeGreaterThan(0)
  expect(figures.fail).toBeGreaterThan(0)
  expect(unclear).toBe(0)
  expect(maxLengthSeen).toBeLessThanOrEqual(MAX_LENGTH)
}, 120_000)
