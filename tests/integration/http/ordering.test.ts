import { describe, expect, test } from 'bun:test'
import { BASE, call, expectError } from '../../helpers/api'
import { ack, type Delivery, publish, pull, subscribe } from '../../helpers/consuming'
import { newTenant, testApp } from '../../helpers/harness'

/** Ordered delivery per key (issue 25) over HTTP: the setting, and what pulls see. */

type App = Awaited<ReturnType<typeof testApp>>

async function setup(partitionCount = 2) {
  const app = await testApp()
  const tenant = newTenant()
  const res = await call(app, 'POST', `${BASE}/queues`, {
    tenant,
    body: { name: 'orders', partitionCount },
  })
  expect(res.status).toBe(201)
  return { app, tenant }
}

/** Publishes `seq` 0.. under each key, in turn, one batch per round. */
async function publishKeyed(app: App, tenant: string, keys: string[], rounds: number) {
  for (let seq = 0; seq < rounds; seq++) {
    for (const key of keys) await publish(app, tenant, [{ key, seq }], { key })
  }
}

const label = (d: Delivery) => {
  const p = d.payload as { key: string; seq: number }
  return `${p.key}#${p.seq}`
}

/** A pull subscription of group `g` delivering in key order. */
const ordered = (app: App, tenant: string, name: string, extra: Record<string, unknown> = {}) =>
  subscribe(app, tenant, { consumerGroup: 'g', consumerName: name, ordering: 'key', ...extra })

const nack = (app: App, tenant: string, sub: string, receipts: string[], delayMs = 0) =>
  call(app, 'POST', `${BASE}/subscriptions/${sub}/nack`, {
    tenant,
    body: { receipts, delayMs },
  })

describe('ordering: the setting', () => {
  test('set at create, shown by GET and lists, default none; PUT may not change it', async () => {
    const { app, tenant } = await setup()
    const ordered = await subscribe(app, tenant, {
      consumerGroup: 'billing',
      consumerName: 'b1',
      ordering: 'key',
    })
    const plain = await subscribe(app, tenant, { consumerGroup: 'audit', consumerName: 'a1' })
    const got = await call(app, 'GET', `${BASE}/subscriptions/${ordered}`, { tenant })
    expect(got.body.ordering).toBe('key')
    const list = await call(app, 'GET', `${BASE}/subscriptions?queue=orders`, { tenant })
    const byId = Object.fromEntries(
      list.body.items.map((s: { id: string; ordering: string }) => [s.id, s.ordering])
    )
    expect(byId).toEqual({ [ordered]: 'key', [plain]: 'none' })

    const change = await call(app, 'PUT', `${BASE}/subscriptions/${ordered}`, {
      tenant,
      body: { ordering: 'none' },
    })
    expect(expectError(change, 400, 'MQ_VALIDATION_FAILED').message).toContain('ordering')
    expectError(
      await call(app, 'PUT', `${BASE}/subscriptions/${plain}`, {
        tenant,
        body: { ordering: 'key' },
      }),
      400,
      'MQ_VALIDATION_FAILED'
    )
    const same = await call(app, 'PUT', `${BASE}/subscriptions/${ordered}`, {
      tenant,
      body: { ordering: 'key', retryDelayMs: 10 },
    })
    expect(same.status).toBe(200)
    expect(same.body).toMatchObject({ ordering: 'key', retryDelayMs: 10 })
    expectError(
      await call(app, 'POST', `${BASE}/subscriptions`, {
        tenant,
        body: {
          queue: 'orders',
          consumerGroup: 'billing',
          consumerName: 'b2',
          subscriptionType: 'redis_consumer',
          ordering: 'none',
        },
      }),
      400,
      'MQ_VALIDATION_FAILED'
    )
    expectError(
      await call(app, 'POST', `${BASE}/subscriptions`, {
        tenant,
        body: {
          queue: 'orders',
          consumerGroup: 'c',
          consumerName: 'c1',
          subscriptionType: 'redis_consumer',
          ordering: 'fifo',
        },
      }),
      400,
      'MQ_VALIDATION_FAILED'
    )
    // Joining without naming it takes the group's.
    const mate = await subscribe(app, tenant, { consumerGroup: 'billing', consumerName: 'b3' })
    expect(
      (await call(app, 'GET', `${BASE}/subscriptions/${mate}`, { tenant })).body.ordering
    ).toBe('key')
  })
})

describe('ordering: pulls', () => {
  test('two consumers never hold two messages of one key; other keys and unkeyed ones flow', async () => {
    const { app, tenant } = await setup()
    const one = await ordered(app, tenant, 'c1')
    const two = await ordered(app, tenant, 'c2')
    await publishKeyed(app, tenant, ['k1', 'k2'], 3)
    await publish(app, tenant, [{ free: 1 }, { free: 2 }])

    const first = await pull(app, tenant, one)
    expect(
      first
        .filter((d) => d.payload && (d.payload as { key?: string }).key)
        .map(label)
        .toSorted()
    ).toEqual(['k1#0', 'k2#0'])
    expect(first).toHaveLength(4)
    expect(await pull(app, tenant, two)).toEqual([])
    // A message of k1 read while k1#0 is out is parked: for the group it is still waiting.
    const [parked] = await publish(app, tenant, [{ key: 'k1', seq: 3 }], { key: 'k1' })
    expect(await pull(app, tenant, two)).toEqual([])
    const record = await call(app, 'GET', `${BASE}/messages/${parked}?queue=orders`, { tenant })
    expect(record.body.consumerGroups).toEqual([
      { consumerGroup: 'g', state: 'waiting', deliveryCount: 0 },
    ])

    const k1 = first.find((d) => label(d) === 'k1#0')!
    expect(await ack(app, tenant, one, [k1.receipt])).toBe(1)
    expect((await pull(app, tenant, two)).map(label)).toEqual(['k1#1'])
    expect(await pull(app, tenant, one)).toEqual([])
  })

  test('a message parked behind its key cannot be deleted (409), and can once acknowledged', async () => {
    const { app, tenant } = await setup(1)
    const sub = await ordered(app, tenant, 'c1')
    const [, parked] = await publish(
      app,
      tenant,
      [
        { key: 'k', seq: 0 },
        { key: 'k', seq: 1 },
      ],
      {
        key: 'k',
      }
    )
    const [head] = await pull(app, tenant, sub)
    expect(label(head!)).toBe('k#0')
    const path = `${BASE}/queues/orders/messages/${parked}`
    expectError(await call(app, 'DELETE', path, { tenant }), 409, 'MQ_MESSAGE_IN_FLIGHT')
    expect(await ack(app, tenant, sub, [head!.receipt])).toBe(1)
    const [next] = await pull(app, tenant, sub)
    expect(next!.messageId).toBe(parked!)
    expect(await ack(app, tenant, sub, [next!.receipt])).toBe(1)
    expect((await call(app, 'DELETE', path, { tenant })).status).toBe(204)
  })

  test('a nacked message comes back before any later message of its key', async () => {
    const { app, tenant } = await setup(1)
    const sub = await ordered(app, tenant, 'c1', { maxRetryAttempts: 5 })
    await publishKeyed(app, tenant, ['k'], 3)
    const [head] = await pull(app, tenant, sub)
    expect(label(head!)).toBe('k#0')
    expect((await nack(app, tenant, sub, [head!.receipt], 200)).body.requeued).toBe(1)
    // Held through the nack's delay: nothing of k, not even the next one.
    expect(await pull(app, tenant, sub)).toEqual([])
    const again = await pull(app, tenant, sub, { waitMs: 2000 })
    expect(again.map((d) => [label(d), d.deliveryCount])).toEqual([['k#0', 2]])
    expect(await ack(app, tenant, sub, [again[0]!.receipt])).toBe(1)
    expect((await pull(app, tenant, sub)).map(label)).toEqual(['k#1'])
  })

  test('after maxRetryAttempts the message goes to the dead-letter queue, and its key moves on', async () => {
    const { app, tenant } = await setup(1)
    const sub = await ordered(app, tenant, 'c1', { maxRetryAttempts: 2 })
    await publishKeyed(app, tenant, ['k'], 2)
    const [first] = await pull(app, tenant, sub)
    expect((await nack(app, tenant, sub, [first!.receipt])).body.requeued).toBe(1)
    const [second] = await pull(app, tenant, sub)
    expect([label(second!), second!.deliveryCount]).toEqual(['k#0', 2])
    expect((await nack(app, tenant, sub, [second!.receipt])).body.deadLettered).toBe(1)
    const dlq = await call(app, 'GET', `${BASE}/queues/orders.dlq/messages`, { tenant })
    expect(dlq.body.items.map((m: { payload: unknown }) => m.payload)).toEqual([
      { key: 'k', seq: 0 },
    ])
    expect((await pull(app, tenant, sub)).map((d) => [label(d), d.deliveryCount])).toEqual([
      ['k#1', 1],
    ])
  })

  test('a visibility timeout hands the held message out again, still before the later ones', async () => {
    const { app, tenant } = await setup(1)
    const one = await ordered(app, tenant, 'c1')
    const two = await ordered(app, tenant, 'c2')
    await publishKeyed(app, tenant, ['k'], 2)
    expect((await pull(app, tenant, one, { visibilityTimeoutMs: 1000 })).map(label)).toEqual([
      'k#0',
    ])
    const again = await pull(app, tenant, two, { waitMs: 3000 })
    expect(again.map((d) => [label(d), d.deliveryCount])).toEqual([['k#0', 2]])
    expect(await ack(app, tenant, two, [again[0]!.receipt])).toBe(1)
    expect((await pull(app, tenant, one)).map(label)).toEqual(['k#1'])
  })

  test('deleting the consumer that holds a key hands it to a group mate, and the parked ones stay behind it', async () => {
    const { app, tenant } = await setup(1)
    const one = await ordered(app, tenant, 'c1')
    const two = await ordered(app, tenant, 'c2')
    await publishKeyed(app, tenant, ['k'], 3)
    expect((await pull(app, tenant, one)).map(label)).toEqual(['k#0'])
    expect((await call(app, 'DELETE', `${BASE}/subscriptions/${one}`, { tenant })).status).toBe(204)
    const handed = await pull(app, tenant, two)
    expect(handed.map(label)).toEqual(['k#0'])
    expect(await ack(app, tenant, two, [handed[0]!.receipt])).toBe(1)
    expect((await pull(app, tenant, two)).map(label)).toEqual(['k#1'])
  })

  test('a message past its TTL releases its key, out or parked, and the next one comes', async () => {
    const { app, tenant } = await setup(1)
    const sub = await ordered(app, tenant, 'c1')
    await publish(app, tenant, [{ key: 'k', seq: 0 }], { key: 'k', ttlMs: 800 })
    await publish(app, tenant, [{ key: 'k', seq: 1 }], { key: 'k', ttlMs: 800 })
    await publish(app, tenant, [{ key: 'k', seq: 2 }], { key: 'k' })
    expect((await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })).map(label)).toEqual([
      'k#0',
    ])
    await Bun.sleep(1100)
    // k#0 timed out past its TTL: dropped, not delivered; k#1, parked behind it, expired too.
    expect((await pull(app, tenant, sub, { waitMs: 3000 })).map(label)).toEqual(['k#2'])
  })

  test('a purge clears what the key held: new messages of it are delivered', async () => {
    const { app, tenant } = await setup(1)
    const sub = await ordered(app, tenant, 'c1')
    await publishKeyed(app, tenant, ['k'], 2)
    expect((await pull(app, tenant, sub)).map(label)).toEqual(['k#0'])
    expect((await call(app, 'POST', `${BASE}/queues/orders/purge`, { tenant })).status).toBe(200)
    await publish(app, tenant, [{ key: 'k', seq: 9 }], { key: 'k' })
    expect((await pull(app, tenant, sub)).map(label)).toEqual(['k#9'])
  })
})
