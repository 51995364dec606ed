/**
 * Issue 21: what a consumer group's subscriptions share, and the ways deleting, seeking,
 * filtering and dead-lettering lost, stranded or repeated a message of a group.
 */
import { describe, expect, test } from 'bun:test'
import { Cluster } from 'ioredis'
import { moveToDeadLetter } from '../../../src/domain/consume'
import type { StoredDelivery } from '../../../src/domain/messages'
import { BASE, call } from '../../helpers/api'
import { ack, publish, pull, subscribe as subscribeOrders } from '../../helpers/consuming'
import { newTenant, sharedDeps, testApp } from '../../helpers/harness'

type App = Awaited<ReturnType<typeof testApp>>

async function setup(partitions = 1) {
  const app = await testApp()
  const tenant = newTenant()
  const res = await call(app, 'POST', `${BASE}/queues`, {
    tenant,
    body: { name: 'orders', partitionCount: partitions },
  })
  expect(res.status).toBe(201)
  return { app, tenant }
}

async function subscribe(
  app: App,
  tenant: string,
  body: Record<string, unknown>
): ReturnType<typeof call> {
  return call(app, 'POST', `${BASE}/subscriptions`, {
    tenant,
    body: {
      queue: 'orders',
      consumerGroup: 'g',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
      ...body,
    },
  })
}

const subscribed = (app: App, tenant: string, body: Record<string, unknown>) =>
  subscribeOrders(app, tenant, { consumerGroup: 'g', ...body })

/** Every key of the deployment's prefix that names each of `needles` (every master's). */
async function keysNaming(...needles: string[]): Promise<string[]> {
  const deps = await sharedDeps()
  const servers = deps.redis instanceof Cluster ? deps.redis.nodes('master') : [deps.redis]
  const found: string[] = []
  for (const server of servers) {
    let cursor = '0'
    do {
      const [next, keys] = await server.scan(
        cursor,
        'MATCH',
        `${deps.keys.prefix}:*`,
        'COUNT',
        1000
      )
      found.push(...keys.filter((k) => needles.every((n) => k.includes(n))))
      cursor = next
    } while (cursor !== '0')
  }
  return found
}

/** The consumers of a group on one partition, by name. */
async function consumersOf(tenant: string, partition: number, group = 'g'): Promise<string[]> {
  const deps = await sharedDeps()
  const stream = deps.keys.partition(tenant, 'orders', partition, 'stream')
  const reply = (await deps.redis.xinfo('CONSUMERS', stream, group)) as unknown[][]
  return reply.map((c) => String(c[1]))
}

describe('deleting a subscription of a group', () => {
  test('what the deleted consumer held goes to the group at once, its count kept', async () => {
    const { app, tenant } = await setup()
    const a = await subscribed(app, tenant, { consumerName: 'a' })
    const b = await subscribed(app, tenant, { consumerName: 'b' })
    const ids = await publish(app, tenant, [1, 2, 3])
    expect(await pull(app, tenant, a, { visibilityTimeoutMs: 60_000 })).toHaveLength(3)

    expect((await call(app, 'DELETE', `${BASE}/subscriptions/${a}`, { tenant })).status).toBe(204)
    expect(await consumersOf(tenant, 0)).not.toContain('a')
    // Not after the 60 s visibility: a's receipts can never acknowledge them.
    const got = await pull(app, tenant, b)
    expect(got.map((d) => d.messageId).sort()).toEqual(ids.sort())
    expect(got.map((d) => d.deliveryCount)).toEqual([2, 2, 2])
    expect(
      await ack(
        app,
        tenant,
        b,
        got.map((d) => d.receipt)
      )
    ).toBe(3)
  })

  test('a long poll of the deleted one running while messages are published loses none', async () => {
    const { app, tenant } = await setup(2)
    for (let round = 0; round < 3; round++) {
      const group = `g${round}`
      const a = await subscribed(app, tenant, {
        consumerGroup: group,
        consumerName: 'a',
        offsetResetPolicy: 'latest',
      })
      const b = await subscribed(app, tenant, {
        consumerGroup: group,
        consumerName: 'b',
        offsetResetPolicy: 'latest',
      })
      const polling = pull(app, tenant, a, { waitMs: 2000, visibilityTimeoutMs: 60_000 }).catch(
        () => []
      )
      await Bun.sleep(50)
      const publishing = (async () => {
        const ids: string[] = []
        for (let i = 0; i < 12; i++) {
          ids.push(...(await publish(app, tenant, [i])))
          await Bun.sleep(round * 3)
        }
        return ids
      })()
      await Bun.sleep(10 + round * 10)
      const deleted = await call(app, 'DELETE', `${BASE}/subscriptions/${a}`, { tenant })
      expect(deleted.status).toBe(204)
      const ids = await publishing
      await polling
      // Whatever the long poll took comes back to b without waiting out its visibility.
      const seen = new Set<string>()
      const until = Date.now() + 3000
      while (seen.size < ids.length && Date.now() < until) {
        const got = await pull(app, tenant, b)
        for (const d of got) seen.add(d.messageId)
        await ack(
          app,
          tenant,
          b,
          got.map((d) => d.receipt)
        )
        if (got.length === 0) await Bun.sleep(50)
      }
      expect([...seen].sort()).toEqual(ids.sort())
      expect(await consumersOf(tenant, 0, group)).not.toContain('a')
      expect(await consumersOf(tenant, 1, group)).not.toContain('a')
      expect((await call(app, 'DELETE', `${BASE}/subscriptions/${b}`, { tenant })).status).toBe(204)
    }
  })

  test('leaves no key or member of it behind in Redis', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup(2)
    const a = await subscribed(app, tenant, { consumerName: 'a' })
    const b = await subscribed(app, tenant, { consumerName: 'b' })
    await publish(app, tenant, [1, 2, 3, 4])
    for (const sub of [a, b]) {
      const got = await pull(app, tenant, sub, { max: 2 })
      expect(
        await ack(
          app,
          tenant,
          sub,
          got.map((d) => d.receipt)
        )
      ).toBe(got.length)
    }
    await publish(app, tenant, [5])
    await pull(app, tenant, a)
    // The last-ack times are written by the flow window; wait for them to be there to go.
    const lastAck = deps.keys.tenantLastAck(tenant)
    for (let i = 0; i < 50 && (await deps.redis.zscore(lastAck, a)) === null; i++) {
      await Bun.sleep(50)
    }
    expect(await deps.redis.zscore(lastAck, a)).not.toBeNull()

    expect((await call(app, 'DELETE', `${BASE}/subscriptions/${a}`, { tenant })).status).toBe(204)
    expect(await keysNaming(a)).toEqual([])
    expect(await deps.redis.zscore(lastAck, a)).toBeNull()
    for (const p of [0, 1]) expect(await consumersOf(tenant, p)).not.toContain('a')

    expect((await call(app, 'DELETE', `${BASE}/subscriptions/${b}`, { tenant })).status).toBe(204)
    expect(await keysNaming(b)).toEqual([])
    expect(await deps.redis.zscore(lastAck, b)).toBeNull()
    expect(await keysNaming(tenant, ':inflight:g')).toEqual([])
    for (const p of [0, 1]) {
      const stream = deps.keys.partition(tenant, 'orders', p, 'stream')
      expect(await deps.redis.xinfo('GROUPS', stream)).toEqual([])
    }
  })
})

describe('a request racing the delete of a group', () => {
  test('a pull or ack that finds the group gone is 404, not 500', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const a = await subscribed(app, tenant, { consumerName: 'a' })
    const queue = (await deps.subscriptionDeps.queues.get(tenant, 'orders'))!
    expect((await call(app, 'DELETE', `${BASE}/subscriptions/${a}`, { tenant })).status).toBe(204)
    const opts = { now: Date.now(), maxDeliveries: 3, deadHoldMs: 30_000 }
    const pulling = deps.messages.pull(queue, 0, {
      ...opts,
      group: 'g',
      consumer: 'a',
      max: 1,
      visibilityMs: 1000,
    })
    await expect(pulling).rejects.toMatchObject({ code: 'MQ_SUBSCRIPTION_NOT_FOUND' })
    const acking = deps.messages.settle(
      queue,
      0,
      'g',
      'ack',
      [{ streamId: '1-0', deliveryCount: 1, delayMs: 0 }],
      opts
    )
    await expect(acking).rejects.toMatchObject({ code: 'MQ_SUBSCRIPTION_NOT_FOUND' })
  })
})

describe('a seek back over deliveries still out', () => {
  test('one pull never returns an entry twice, the count goes on, and only the latest receipt acks', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribed(app, tenant, { consumerName: 'a', maxRetryAttempts: 10 })
    await publish(app, tenant, [1])
    const first = await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })
    expect(first.map((d) => d.deliveryCount)).toEqual([1])
    await Bun.sleep(1100)
    const second = await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })
    expect(second.map((d) => d.deliveryCount)).toEqual([2])
    await Bun.sleep(1100)
    const seek = await call(app, 'POST', `${BASE}/subscriptions/${sub}/seek`, {
      tenant,
      body: { to: 'earliest' },
    })
    expect(seek.status).toBe(200)

    const third = await pull(app, tenant, sub, { visibilityTimeoutMs: 60_000 })
    expect(third.map((d) => d.deliveryCount)).toEqual([3])
    expect(await pull(app, tenant, sub)).toEqual([])
    expect(await ack(app, tenant, sub, [first[0]!.receipt, second[0]!.receipt])).toBe(0)
    expect(await ack(app, tenant, sub, [third[0]!.receipt])).toBe(1)
  })

  test('a delivery within its visibility is not handed out again; acked ones replay', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribed(app, tenant, { consumerName: 'a' })
    const ids = await publish(app, tenant, [1, 2, 3])
    const out = await pull(app, tenant, sub, { max: 2, visibilityTimeoutMs: 60_000 })
    expect(await ack(app, tenant, sub, [out[0]!.receipt])).toBe(1)
    await call(app, 'POST', `${BASE}/subscriptions/${sub}/seek`, {
      tenant,
      body: { to: 'earliest' },
    })

    const replay = await pull(app, tenant, sub, { visibilityTimeoutMs: 60_000 })
    // The acked one again (a new delivery), the one still out not, the unread one.
    expect(replay.map((d) => `${d.messageId}:${d.deliveryCount}`)).toEqual([
      `${ids[0]}:1`,
      `${ids[2]}:1`,
    ])
    expect(await ack(app, tenant, sub, [out[1]!.receipt])).toBe(1)
  })

  test('a pull reads on past more deliveries still out than one script call passes', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribed(app, tenant, { consumerName: 'a', maxPollRecords: 1000 })
    for (let i = 0; i < 11; i++) {
      await publish(
        app,
        tenant,
        Array.from({ length: 100 }, (_, j) => i * 100 + j)
      )
    }
    let out = 0
    while (out < 1100) {
      out += (await pull(app, tenant, sub, { max: 1000, visibilityTimeoutMs: 60_000 })).length
    }
    await call(app, 'POST', `${BASE}/subscriptions/${sub}/seek`, {
      tenant,
      body: { to: 'earliest' },
    })
    const [fresh] = await publish(app, tenant, ['new'])
    const got = await pull(app, tenant, sub, { max: 10 })
    expect(got.map((d) => d.messageId)).toEqual([fresh!])
  })
})

describe('settings a group shares', () => {
  test('a subscription joining with another filter, retry budget or dead-letter queue is 400', async () => {
    const { app, tenant } = await setup()
    const filter = { headers: { type: 'a' } }
    await subscribed(app, tenant, {
      consumerName: 'a',
      messageFilter: filter,
      maxRetryAttempts: 5,
      deadLetterQueue: 'bad',
    })
    for (const [field, value] of [
      ['messageFilter', { headers: { type: 'b' } }],
      ['messageFilter', null],
      ['maxRetryAttempts', 3],
      ['deadLetterQueue', 'other'],
    ] as const) {
      const res = await subscribe(app, tenant, { consumerName: 'b', [field]: value })
      expect(res.status).toBe(400)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
      expect(res.body.details.issues[0].path).toBe(field)
    }
    // Left out, they are the group's; named the same, accepted.
    const b = await subscribe(app, tenant, { consumerName: 'b' })
    expect(b.status).toBe(201)
    expect(b.body).toMatchObject({
      messageFilter: filter,
      maxRetryAttempts: 5,
      deadLetterQueue: 'bad',
    })
    const c = await subscribe(app, tenant, {
      consumerName: 'c',
      messageFilter: { headers: { type: 'a' } },
      maxRetryAttempts: 5,
      deadLetterQueue: 'bad',
    })
    expect(c.status).toBe(201)
    // Another group is free to differ.
    expect((await subscribe(app, tenant, { consumerGroup: 'h', consumerName: 'a' })).status).toBe(
      201
    )

    const put = await call(app, 'PUT', `${BASE}/subscriptions/${b.body.id}`, {
      tenant,
      body: { messageFilter: null },
    })
    expect(put.status).toBe(400)
    expect(put.body.details.issues[0].path).toBe('messageFilter')
    const same = await call(app, 'PUT', `${BASE}/subscriptions/${b.body.id}`, {
      tenant,
      body: { maxRetryAttempts: 5, retryDelayMs: 10 },
    })
    expect(same.status).toBe(200)
  })

  test('a group alone may change them', async () => {
    const { app, tenant } = await setup()
    const a = await subscribed(app, tenant, { consumerName: 'a' })
    const put = await call(app, 'PUT', `${BASE}/subscriptions/${a}`, {
      tenant,
      body: { messageFilter: { key: 'k' }, maxRetryAttempts: 2 },
    })
    expect(put.status).toBe(200)
  })

  test('concurrent joins with different filters: one of them is refused', async () => {
    const { app, tenant } = await setup()
    const results = await Promise.all(
      ['x', 'y', 'z', 'w'].map((type, i) =>
        subscribe(app, tenant, { consumerName: `c${i}`, messageFilter: { headers: { type } } })
      )
    )
    expect(results.filter((r) => r.status === 201)).toHaveLength(1)
    expect(results.filter((r) => r.status === 400)).toHaveLength(3)
  })
})

describe('dead-lettering an entry the group shares', () => {
  async function deadSetup(maxRetryAttempts = 1) {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const a = await subscribed(app, tenant, { consumerName: 'a', maxRetryAttempts })
    const b = await subscribed(app, tenant, { consumerName: 'b' })
    const queue = (await deps.subscriptionDeps.queues.get(tenant, 'orders'))!
    const load = async (id: string) => (await deps.subscriptionDeps.subscriptions.get(tenant, id))!
    return { deps, app, tenant, a, b, queue, subA: await load(a), subB: await load(b) }
  }

  test('a late ack while the move holds the entry acknowledges nothing (nack path)', async () => {
    const { deps, app, tenant, a, queue } = await deadSetup()
    await publish(app, tenant, [1])
    const [d] = await pull(app, tenant, a)
    const { streamId } = deps.receipts.decode(tenant, d!.receipt)!
    const nacked = await deps.messages.settle(
      queue,
      0,
      'g',
      'nack',
      [{ streamId, deliveryCount: 1, delayMs: 0 }],
      { now: Date.now(), maxDeliveries: 1, deadHoldMs: 30_000 }
    )
    expect(nacked.dead).toHaveLength(1)
    // The move is under way (the copy written, the source not yet acknowledged): the
    // consumer's ack comes late.
    expect(await ack(app, tenant, a, [d!.receipt])).toBe(0)
    const moved = await deps.messages.settle(
      queue,
      0,
      'g',
      'ack',
      [{ streamId, deliveryCount: nacked.dead[0]!.heldAs!, delayMs: 0 }],
      { now: Date.now(), maxDeliveries: 1, deadHoldMs: 30_000 }
    )
    expect(moved.settled).toBe(1)
  })

  test('a late ack while the move holds the entry acknowledges nothing (timeout path)', async () => {
    const { deps, app, tenant, a, queue } = await deadSetup()
    await publish(app, tenant, [1])
    const [d] = await pull(app, tenant, a, { visibilityTimeoutMs: 1000 })
    await Bun.sleep(1100)
    const pulled = await deps.messages.pull(queue, 0, {
      group: 'g',
      consumer: 'b',
      max: 10,
      now: Date.now(),
      visibilityMs: 1000,
      maxDeliveries: 1,
      deadHoldMs: 30_000,
    })
    expect(pulled.dead.map((x) => [x.deliveryCount, x.heldAs])).toEqual([[1, 2]])
    expect(await ack(app, tenant, a, [d!.receipt])).toBe(0)
  })

  test('two members moving the same entry write one dead letter', async () => {
    const { deps, app, tenant, a, queue, subA, subB } = await deadSetup()
    await publish(app, tenant, [1])
    await pull(app, tenant, a, { visibilityTimeoutMs: 1000 })
    await Bun.sleep(1100)
    const pullAs = async (consumer: string) =>
      (
        await deps.messages.pull(queue, 0, {
          group: 'g',
          consumer,
          max: 10,
          now: Date.now() + 31_000 * (consumer === 'b' ? 1 : 0),
          visibilityMs: 1000,
          maxDeliveries: 1,
          deadHoldMs: 30_000,
        })
      ).dead
    // a's move stalls past the 30 s hold (its clock says so), and b's pull takes the entry up.
    const deadA: StoredDelivery[] = await pullAs('a')
    const deadB: StoredDelivery[] = await pullAs('b')
    expect(deadA).toHaveLength(1)
    expect(deadB).toHaveLength(1)
    const ctx = { tenantId: tenant, principal: { name: 'tester' } } as never
    const why = 'visibility timeout after the last attempt'
    const movedB = await moveToDeadLetter(deps.consumeDeps, ctx, subB, queue, deadB, why)
    const movedA = await moveToDeadLetter(deps.consumeDeps, ctx, subA, queue, deadA, why)
    expect(movedA + movedB).toBe(1)
    const dlq = (await deps.subscriptionDeps.queues.get(tenant, 'orders.dlq'))!
    expect((await deps.messages.queueStats(dlq)).length).toBe(1)
  })
})
