import { afterAll, expect, test } from 'bun:test'
import { newTenant } from '../helpers/harness'
import { Consumer, drain, produce } from './client'
import { expectValid, History, report } from './oracle'
import { ChaosRedis, chaosDatabase, reaper, ServiceProcess, serviceEnv } from './processes'
import { adminClient, outgoing, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

// RELIABILITY R2: 20 concurrent publishers, the api killed every 5 s; here every 3 s, 4 times.
const PUBLISHERS = 20
const KILLS = 4
const KILL_EVERY_MS = 3000

test('R2 api kill -9 mid-publish, clients retry with messageId: lost 0, duplicates 0', async () => {
  const redis = await ChaosRedis.start({ fsync: 'always' })
  const database = await chaosDatabase()
  if (!database.shared) {
    console.log('R2 skipped: several service processes need PostgreSQL (TEST_PG_URL)')
    return
  }
  // The publishers' api is the one killed; consumers read through another, and a worker
  // promotes the delayed messages.
  const env = serviceEnv(redis, database)
  const publishApi = new ServiceProcess('api', 'api-publish', env)
  const consumeApi = new ServiceProcess('api', 'api-consume', env)
  const worker = new ServiceProcess('worker', 'worker', env)
  await Promise.all([publishApi.start(), consumeApi.start(), worker.start()])
  const publisher = adminClient(() => publishApi.url)
  const reader = adminClient(() => consumeApi.url)
  const history = new History()

  const tenants = [newTenant(), newTenant(), newTenant()]
  const targets = await subscribedQueues(reader, tenants, {
    name: 'events',
    partitionCount: 4,
    maxLength: 100_000,
  })
  const consumers = targets.map((t) =>
    new Consumer({
      client: reader,
      ...t,
      name: `consumer-${t.tenant.slice(0, 4)}`,
      max: 50,
      onDelivery: (record) => history.deliver(record),
    }).start()
  )

  let stop = false
  const messages = outgoing('r2', targets, {
    more: () => !stop,
    // One in five is delayed: its registration with the tickers must survive the crash too.
    extra: (i) => (i % 5 === 0 ? { delayMs: 300 + (i % 7) * 200 } : undefined),
  })
  let refused = 0
  let deduplicated = 0
  let timedOut = 0
  const producing = produce(publisher, history, messages, {
    concurrency: PUBLISHERS,
    pauseMs: 40,
    retryUntil: Date.now() + 120_000,
    onAnswer: (a) => {
      if (a.status === 0) refused++
      if (a.error === 'TimeoutError') timedOut++
      if (a.status === 200 && a.body?.duplicate === true) deduplicated++
    },
  })
  const restartMs: number[] = []
  for (let k = 0; k < KILLS; k++) {
    await Bun.sleep(KILL_EVERY_MS)
    await publishApi.kill9()
    const started = Date.now()
    await publishApi.start()
    restartMs.push(Date.now() - started)
  }
  // A stall instead of a crash (a long pause, a stopped VM): requests outlive the clients' 5 s
  // timeout, are retried, and run anyway once the process thaws.
  publishApi.freeze()
  await Bun.sleep(6000)
  publishApi.thaw()
  await Bun.sleep(1000)
  stop = true
  await producing
  await Promise.all(consumers.map((c) => c.stop()))
  const drainMs = await drain(reader, history, targets)

  const figures = history.check()
  // A second stored copy would come as a second first delivery.
  const storedTwice = [...history.byMessage().values()].filter(
    (list) => list.filter((d) => d.deliveryCount === 1).length > 1
  ).length
  report('R2 api kill -9', {
    ...figures,
    kills: KILLS,
    noAnswer: refused,
    deduplicated,
    timedOut,
    storedTwice,
    maxRestartMs: Math.max(...restartMs),
    drainMs,
  })

  expectValid(figures)
  expect(figures.duplicated).toBe(0)
  expect(storedTwice).toBe(0)
  expect(figures.unknown).toBe(0)
  expect(refused).toBeGreaterThan(0)
  expect(timedOut).toBeGreaterThan(0)
}, 150_000)
