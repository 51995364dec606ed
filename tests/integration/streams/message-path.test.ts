import { describe, expect, test } from 'bun:test'
import { Cluster } from 'ioredis'
import type { Deps } from '../../../src/deps'
import type { Queue } from '../../../src/domain/queues'
import { createLogger } from '../../../src/observability/logger'
import type { MaintenanceTask } from '../../../src/observability/metrics'
import { Trimmer } from '../../../src/worker/trimmer'
import { call, newTenant, sharedDeps, testApp } from '../../helpers/harness'
import { storedMessage } from '../../helpers/ledger'

const B = '/api/v1/mq'
type App = Awaited<ReturnType<typeof testApp>>

/** A trimmer over `queues` only (the shared Redis holds other tests' queues too). */
function trimmerOf(
  deps: Deps,
  queues: () => Promise<Queue[]>,
  failures: MaintenanceTask[] = [],
  logger = deps.logger
) {
  return new Trimmer({
    queues: async (after) => (after === null ? queues() : []),
    trimPartition: (...args) => deps.messages.trimPartition(...args),
    repairDelayed: (queue, p) => deps.messages.repairDelayed(queue, p),
    sweepRemovedQueues: async () => 0,
    onFailure: (task) => failures.push(task),
    ledgerGraceMs: null,
    logger,
  })
}

async function createQueue(app: App, tenant: string, name: string, extra = {}) {
  const res = await call(app, 'POST', `${B}/queues`, { tenant, body: { name, ...extra } })
  expect(res.status).toBe(201)
}

async function subscribe(app: App, tenant: string, queue: string, group = 'g') {
  const res = await call(app, 'POST', `${B}/subscriptions`, {
    tenant,
    body: {
      queue,
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      consumerGroup: group,
      consumerName: 'c',
    },
  })
  expect(res.status).toBe(201)
  return res.body.id as string
}

async function publish(app: App, tenant: string, queue: string, messages: unknown[]) {
  return call(app, 'POST', `${B}/publish/batch`, { tenant, body: { queue, messages } })
}

async function pullAndAck(app: App, tenant: string, sub: string) {
  const pulled = await call(app, 'POST', `${B}/subscriptions/${sub}/pull`, {
    tenant,
    body: { max: 100 },
  })
  expect(pulled.status).toBe(200)
  const receipts = pulled.body.messages.map((m: { receipt: string }) => m.receipt)
  const acked = await call(app, 'POST', `${B}/subscriptions/${sub}/ack`, {
    tenant,
    body: { receipts },
  })
  expect(acked.status).toBe(200)
  return receipts.length as number
}

/** Every key matching `pattern`, on every master of a cluster. */
async function keysMatching(deps: Deps, pattern: string): Promise<string[]> {
  const servers = deps.redis instanceof Cluster ? deps.redis.nodes('master') : [deps.redis]
  const out: string[] = []
  for (const server of servers) {
    let cursor = '0'
    do {
      const [next, found] = await server.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
      out.push(...found)
      cursor = next
    } while (cursor !== '0')
  }
  return out
}

describe('trimming', () => {
  test('a seek to a time neither breaks trimming of later queues nor the publish (#21.1)', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'a')
    await createQueue(app, tenant, 'b')
    const subA = await subscribe(app, tenant, 'a')
    const subB = await subscribe(app, tenant, 'b')
    expect((await publish(app, tenant, 'a', [{ payload: 1 }])).status).toBe(201)
    const seek = await call(app, 'POST', `${B}/subscriptions/${subA}/seek`, {
      tenant,
      body: { to: new Date(Date.now() - 3_600_000).toISOString() },
    })
    expect(seek.status).toBe(200)
    expect((await publish(app, tenant, 'b', [{ payload: 1 }, { payload: 2 }])).status).toBe(201)
    expect(await pullAndAck(app, tenant, subB)).toBe(2)

    const failures: MaintenanceTask[] = []
    const queues = async () => [
      (await deps.queueDeps.queues.get(tenant, 'a'))!,
      (await deps.queueDeps.queues.get(tenant, 'b'))!,
    ]
    expect(await trimmerOf(deps, queues, failures).sweep()).toBe(2)
    expect(failures).toEqual([])
    expect(await deps.redis.xlen(deps.keys.partition(tenant, 'a', 0, 'stream'))).toBe(1)

    // A full `reject` queue looks for acknowledged entries to trim: the sought group's
    // position is read the same way, and the answer is 429 (the entry is unread), not 500.
    expect(
      (await call(app, 'PUT', `${B}/queues/a`, { tenant, body: { maxLength: 1 } })).status
    ).toBe(200)
    const full = await publish(app, tenant, 'a', [{ payload: 2 }])
    expect(full.status).toBe(429)
    expect(full.body).toMatchObject({ code: 'MQ_QUEUE_FULL' })
  })

  test('a partition that fails is logged, counted and skipped; the sweep goes on', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'a')
    await createQueue(app, tenant, 'b')
    const subB = await subscribe(app, tenant, 'b')
    expect((await publish(app, tenant, 'b', [{ payload: 1 }])).status).toBe(201)
    expect(await pullAndAck(app, tenant, subB)).toBe(1)
    // A key of the wrong type makes every script on queue a's partition fail.
    await deps.redis.set(deps.keys.partition(tenant, 'a', 0, 'stream'), 'not a stream')
    const failures: MaintenanceTask[] = []
    const queueA = (await deps.queueDeps.queues.get(tenant, 'a'))!
    const queues = async () => [queueA, (await deps.queueDeps.queues.get(tenant, 'b'))!]
    const lines: string[] = []
    const logger = createLogger('warn', { write: (line: string) => lines.push(line) })
    expect(await trimmerOf(deps, queues, failures, logger).sweep()).toBe(1)
    expect(failures).toEqual(['trim'])
    // Code and ids only: no message text (a Lua error quotes the script's values).
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      expect.objectContaining({
        level: 40, // warn
        task: 'trim',
        code: 'WRONGTYPE',
        tenantId: tenant,
        queueId: queueA.id,
        partition: 0,
      }),
    ])
    expect(lines.join()).not.toContain('Operation against')
    await deps.redis.del(deps.keys.partition(tenant, 'a', 0, 'stream'))
  })

  test('a group moved back by a seek holds back what it will re-read (#21.7)', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q')
    const stream = deps.keys.partition(tenant, 'q', 0, 'stream')
    const res = await publish(
      app,
      tenant,
      'q',
      [1, 2, 3, 4, 5].map((payload) => ({ payload }))
    )
    expect(res.status).toBe(201)
    await deps.redis.xgroup('CREATE', stream, 'a', '0')
    await deps.redis.xgroup('CREATE', stream, 'b', '0')
    const read = async (group: string) =>
      (
        (await deps.redis.xreadgroup('GROUP', group, 'c', 'COUNT', 10, 'STREAMS', stream, '>')) as [
          string,
          Array<[string, string[]]>,
        ][]
      )[0]![1].map(([id]) => id)
    const a = await read('a')
    await deps.redis.xack(stream, 'a', ...a.slice(0, 4))
    await deps.redis.xgroup('SETID', stream, 'a', '0')
    await deps.redis.xack(stream, 'b', ...(await read('b')))
    const queue = (await deps.queueDeps.queues.get(tenant, 'q'))!
    expect(await trimmerOf(deps, async () => [queue]).sweep()).toBe(0)
    expect(await deps.redis.xlen(stream)).toBe(5)
    // Once a has read them again and settled all five, they go.
    await deps.redis.xack(stream, 'a', ...(await read('a')))
    expect(await trimmerOf(deps, async () => [queue]).sweep()).toBe(5)
  })
})

describe('drop_oldest (#21.6)', () => {
  test('when dropping cannot make room (delayed messages fill it), nothing is dropped', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q', { overflow: 'drop_oldest', maxLength: 6 })
    const later = new Date(Date.now() + 3_600_000).toISOString()
    const sent = await publish(app, tenant, 'q', [
      { payload: 1 },
      { payload: 2 },
      { payload: 3 },
      { payload: 4, deliverAt: later },
      { payload: 5, deliverAt: later },
      { payload: 6, deliverAt: later },
    ])
    expect(sent.status).toBe(201)
    expect(
      (await call(app, 'PUT', `${B}/queues/q`, { tenant, body: { maxLength: 3 } })).status
    ).toBe(200)
    const refused = await publish(app, tenant, 'q', [{ payload: 7 }])
    expect(refused.status).toBe(429)
    expect(await deps.redis.xlen(deps.keys.partition(tenant, 'q', 0, 'stream'))).toBe(3)
  })

  test('when dropping makes room, it drops the oldest and publishes', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q', { overflow: 'drop_oldest', maxLength: 3 })
    const later = new Date(Date.now() + 3_600_000).toISOString()
    const first = await publish(app, tenant, 'q', [
      { payload: 1 },
      { payload: 2 },
      { payload: 3, deliverAt: later },
    ])
    expect(first.status).toBe(201)
    expect((await publish(app, tenant, 'q', [{ payload: 4 }])).status).toBe(201)
    const entries = await deps.redis.xrange(deps.keys.partition(tenant, 'q', 0, 'stream'), '-', '+')
    expect(entries.map(([, f]) => f[f.indexOf('p') + 1])).toEqual(['2', '4'])
  })
})

describe('delayed registry', () => {
  async function setup() {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q')
    const queue = (await deps.queueDeps.queues.get(tenant, 'q'))!
    const now = Date.now()
    /** Stores a delayed message as a publish does, without registering it. */
    const store = (messageId: string, due: number) =>
      deps.messages.write(
        queue,
        0,
        [{ dedupId: null, deliverAt: due, message: storedMessage(messageId, '"x"', now) }],
        { now, maxLength: 100, dedupWindowMs: 60_000 }
      )
    const key = (part: 'stream' | 'delayed' | 'delayedBodies' | 'index') =>
      deps.keys.partition(tenant, 'q', 0, part)
    return { app, deps, tenant, queue, now, store, key, member: `${tenant}|q|0` }
  }

  test('a ticker settling after a rival ticker and a new registration keeps the entry (#21.5)', async () => {
    const { deps, queue, now, store, key, member } = await setup()
    const { registry, generations } = deps.keys.delayedRegistry
    await store('m1', now + 1000)
    await deps.messages.registerDelayed(queue, 0, now + 1000)
    const tickAt = now + 2000
    const look = async () =>
      (await deps.messages.duePartitions(tickAt, 100_000)).find((d) => d.member === member)!
    // Both tickers read the entry and its generation.
    const t1 = await look()
    const t2 = await look()
    expect(t1.generation).toBe(t2.generation)
    // T2 promotes m1 and settles: the entry and its generation go.
    expect(await deps.messages.promotePartition(member, t2.generation, tickAt, 100)).toEqual([
      now + 1000,
    ])
    expect(await deps.redis.zscore(registry, member)).toBeNull()
    // T1 promotes: nothing is left.
    const [promoted, next] = await deps.redis.promoteDue(
      key('stream'),
      key('delayed'),
      key('delayedBodies'),
      key('index'),
      tickAt,
      100
    )
    expect([Number(promoted), Number(next)]).toEqual([0, -1])
    // m2 is published and registered.
    await store('m2', now + 5000)
    await deps.messages.registerDelayed(queue, 0, now + 5000)
    // T1 settles with the generation it read: it must not take m2's entry away.
    expect(await deps.redis.settleDelayed(registry, generations, member, t1.generation, -1)).toBe(0)
    expect(Number(await deps.redis.zscore(registry, member))).toBe(now + 5000)
    const [again] = await deps.messages
      .duePartitions(now + 6000, 100_000)
      .then((all) => all.filter((d) => d.member === member))
    expect(
      await deps.messages.promotePartition(member, again!.generation, now + 6000, 100)
    ).toEqual([now + 5000])
  })

  test('a delayed message whose registration was lost is registered by the sweep (#21 a)', async () => {
    const { deps, queue, now, store, member } = await setup()
    const { registry } = deps.keys.delayedRegistry
    // What a publish that died (or could not reach the registry's node) between storing the
    // message and registering it leaves: no ticker would ever look at the partition.
    await store('lost', now + 1000)
    expect(await deps.redis.zscore(registry, member)).toBeNull()
    await trimmerOf(deps, async () => [queue]).sweep()
    expect(Number(await deps.redis.zscore(registry, member))).toBe(now + 1000)
    // A later registration than the earliest due time is lowered to it too.
    await store('earlier', now + 500)
    await trimmerOf(deps, async () => [queue]).sweep()
    expect(Number(await deps.redis.zscore(registry, member))).toBe(now + 500)
  })
})

describe('deleting a queue (#21.8)', () => {
  test('leaves no key of it behind: partitions, registry entries, subscription counters', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q', { partitionCount: 2 })
    const sub = await subscribe(app, tenant, 'q')
    const later = new Date(Date.now() + 3_600_000).toISOString()
    const sent = await publish(app, tenant, 'q', [
      { payload: 1, messageId: 'with-dedup' },
      { payload: 2, key: 'k' },
      { payload: 3, deliverAt: later },
      { payload: 4, deliverAt: later, key: 'k' },
    ])
    expect(sent.status).toBe(201)
    expect(await pullAndAck(app, tenant, sub)).toBe(2)
    // One left in flight too.
    expect((await publish(app, tenant, 'q', [{ payload: 5 }])).status).toBe(201)
    const pulled = await call(app, 'POST', `${B}/subscriptions/${sub}/pull`, { tenant, body: {} })
    expect(pulled.body.messages).toHaveLength(1)
    const counters = deps.keys.subscriptionCounters(tenant, sub)
    expect(await deps.redis.exists(counters)).toBe(1)
    expect(await keysMatching(deps, `*${tenant}:q:*`)).not.toEqual([])

    expect((await call(app, 'DELETE', `${B}/queues/q`, { tenant })).status).toBe(204)
    expect(await keysMatching(deps, `*${tenant}:q:*`)).toEqual([])
    expect(await keysMatching(deps, `*${sub}*`)).toEqual([])
    const { registry, generations } = deps.keys.delayedRegistry
    for (const p of [0, 1]) {
      expect(await deps.redis.zscore(registry, `${tenant}|q|${p}`)).toBeNull()
      expect(await deps.redis.hget(generations, `${tenant}|q|${p}`)).toBeNull()
    }
    expect(await deps.redis.zscore(deps.keys.tenantLastAck(tenant), sub)).toBeNull()
  })
})

describe('writers racing a queue delete (#21 b)', () => {
  test('a publish that resolved the queue before its delete recreates keys; the sweep removes them', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q')
    const stale = (await deps.queueDeps.queues.get(tenant, 'q'))!
    expect((await call(app, 'DELETE', `${B}/queues/q`, { tenant })).status).toBe(204)
    expect(await keysMatching(deps, `*${tenant}:q:*`)).toEqual([])
    // The write of a publish that had resolved the queue just before the delete.
    const now = Date.now()
    await deps.messages.write(
      stale,
      0,
      [{ dedupId: 'late', deliverAt: 0, message: storedMessage('late', '1', now) }],
      { now, maxLength: 100, dedupWindowMs: 60_000 }
    )
    expect(await keysMatching(deps, `*${tenant}:q:*`)).not.toEqual([])
    // Within the grace period the sweep leaves it (the writer may not be done)...
    const exists = async (t: string, n: string) => (await deps.queueDeps.queues.get(t, n)) !== null
    await deps.messages.sweepRemovedQueues(now - 60_000, exists)
    expect(await keysMatching(deps, `*${tenant}:q:*`)).not.toEqual([])
    // ...and after it, removes what was recreated, then forgets the deleted queue.
    await deps.messages.sweepRemovedQueues(Date.now(), exists)
    expect(await keysMatching(deps, `*${tenant}:q:*`)).toEqual([])
    const records = await deps.redis.zrange(deps.keys.removedQueues, '0', '-1')
    expect(records.filter((r) => r.includes(tenant))).toEqual([])
  })

  test('a queue of the same name created again keeps its messages through the sweep', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q')
    expect((await call(app, 'DELETE', `${B}/queues/q`, { tenant })).status).toBe(204)
    await createQueue(app, tenant, 'q')
    expect((await publish(app, tenant, 'q', [{ payload: 1 }])).status).toBe(201)
    await deps.messages.sweepRemovedQueues(
      Date.now(),
      async (t, n) => (await deps.queueDeps.queues.get(t, n)) !== null
    )
    expect(await deps.redis.xlen(deps.keys.partition(tenant, 'q', 0, 'stream'))).toBe(1)
  })

  test('a promotion by a ticker that read the registry before the delete recreates nothing', async () => {
    const app = await testApp()
    const deps = await sharedDeps()
    const tenant = newTenant()
    await createQueue(app, tenant, 'q')
    const later = new Date(Date.now() + 1000).toISOString()
    expect((await publish(app, tenant, 'q', [{ payload: 1, deliverAt: later }])).status).toBe(201)
    const member = `${tenant}|q|0`
    const [seen] = (await deps.messages.duePartitions(Date.now() + 2000, 100_000)).filter(
      (d) => d.member === member
    )
    expect(seen).toBeDefined()
    expect((await call(app, 'DELETE', `${B}/queues/q`, { tenant })).status).toBe(204)
    expect(
      await deps.messages.promotePartition(member, seen!.generation, Date.now() + 2000, 100)
    ).toEqual([])
    expect(await keysMatching(deps, `*${tenant}:q:*`)).toEqual([])
    expect(await deps.redis.zscore(deps.keys.delayedRegistry.registry, member)).toBeNull()
  })
})
