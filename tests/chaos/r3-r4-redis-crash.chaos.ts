import { afterAll, expect, test } from 'bun:test'
import { Keys } from '../../src/streams/keys'
import { newTenant } from '../helpers/harness'
import { type DrainTarget, drain, publish } from './client'
import { expectValid, History, report } from './oracle'
import { type ChaosRedis, reaper } from './processes'
import { startSingleService, steadyTraffic, subscribedQueues } from './stack'

afterAll(() => reaper.cleanup())

const PARTITIONS = 2
const GROUP = 'workers'
const keys = new Keys('mq')

/** Every partition's pending ids and the group's last-delivered-id, read straight from Redis. */
async function groupState(redis: ChaosRedis, targets: DrainTarget[]) {
  const client = redis.inspector()
  try {
    const pending = new Set<string>()
    const lastDelivered = new Map<string, string>()
    for (const t of targets) {
      for (let p = 0; p < PARTITIONS; p++) {
        const stream = keys.partition(t.tenant, t.queue, p, 'stream')
        const entries = (await client.xpending(stream, GROUP, '-', '+', 100_000)) as Array<
          [string, string, number, number]
        >
        for (const [id] of entries) pending.add(`${stream} ${id}`)
        const groups = (await client.xinfo('GROUPS', stream)) as unknown[][]
        const group = groups.map((g) => Object.fromEntries(chunk(g))).find((g) => g.name === GROUP)
        lastDelivered.set(stream, String(group?.['last-delivered-id'] ?? '0-0'))
      }
    }
    return { pending, lastDelivered }
  } finally {
    client.disconnect()
  }
}

function chunk(flat: unknown[]): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = []
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([String(flat[i]), flat[i + 1]])
  return out
}

const idAtLeast = (a: string, b: string) => {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint]
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint]
  return am > bm || (am === bm && as >= bs)
}

/**
 * RELIABILITY R3/R4: steady publishing and consuming, redis-server killed with SIGKILL and
 * started again on the same files 2 s later.
 */
async function redisCrash(fsync: 'always' | 'everysec') {
  const { redis, service, client } = await startSingleService(fsync)
  const history = new History()
  const targets = await subscribedQueues(client, [newTenant(), newTenant()], {
    name: 'jobs',
    partitionCount: PARTITIONS,
    maxLength: 100_000,
  })
  const traffic = steadyTraffic(client, history, targets, {
    prefix: fsync,
    consumersPer: 2,
    consumer: { visibilityTimeoutMs: 5000, processingMs: [0, 20] },
  })
  const { consumers } = traffic
  await Bun.sleep(3000)

  // Hold the consumers so the group's state is still when it is read, then crash Redis. One
  // more pull leaves deliveries unacknowledged, so the pending lists have something to keep.
  await Promise.all(consumers.map((c) => c.pause()))
  let held = 0
  for (const t of targets) {
    for (let i = 0; i < 5; i++)
      await publish(client, history, { ...t, messageId: `held-${fsync}-${t.tenant}-${i}` })
    const pulled = await client.must(
      t.tenant,
      'POST',
      `/subscriptions/${t.subscriptionId}/pull`,
      { max: 20, visibilityTimeoutMs: 5000 },
      200
    )
    for (const m of pulled.messages as Array<{ messageId: string; deliveryCount: number }>) {
      held++
      history.deliver({ ...m, consumer: 'holder', ts: Date.now(), intact: true })
    }
  }
  const before = await groupState(redis, targets)
  await redis.kill9()
  await Bun.sleep(2000)
  await redis.restart()
  const upAt = Date.now()
  const after = await groupState(redis, targets)

  // The first publish the service accepts after Redis is back.
  const probe = { ...targets[0]!, messageId: `probe-${fsync}` }
  while ((await publish(client, history, probe, { retryUntil: 0 })) !== 'ok') await Bun.sleep(50)
  const servingAfterMs = Date.now() - upAt
  for (const c of consumers) c.resume()
  await Bun.sleep(3000)
  // No consumer loop is stuck: each has pulled successfully since Redis came back.
  const stuck = consumers.filter((c) => c.lastPullOkAt < upAt).length
  await traffic.stop()
  const drainMs = await drain(client, history, targets)

  const figures = history.check()
  const pelKept = [...before.pending].filter((id) => !after.pending.has(id)).length === 0
  const positionKept = [...before.lastDelivered].every(([stream, id]) =>
    idAtLeast(after.lastDelivered.get(stream) ?? '0-0', id)
  )
  report(`R${fsync === 'always' ? 3 : 4} redis kill -9 (appendfsync ${fsync})`, {
    ...figures,
    held,
    pendingBefore: before.pending.size,
    pendingAfter: after.pending.size,
    pelKept,
    positionKept,
    servingAfterMs,
    stuck,
    drainMs,
  })
  expectValid(figures)
  expect(figures.duplicated).toBeLessThanOrEqual(held)
  expect(before.pending.size).toBeGreaterThan(0)
  expect(pelKept).toBe(true)
  expect(positionKept).toBe(true)
  expect(servingAfterMs).toBeLessThanOrEqual(5000)
  expect(stuck).toBe(0)
  expect(service.running).toBe(true)
}

test(
  'R3 redis kill -9 and restart with appendfsync always: acknowledged publishes lost 0',
  () => redisCrash('always'),
  120_000
)

test(
  'R4 redis kill -9 and restart with appendfsync everysec: lost measured, 0 for a process crash',
  () => redisCrash('everysec'),
  120_000
)
