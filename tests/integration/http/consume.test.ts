import { describe, expect, test } from 'bun:test'
import { ReceiptCodec } from '../../../src/streams/codec'
import { BASE, call } from '../../helpers/api'
import { ack, type Delivery, publish, pull, subscribe } from '../../helpers/consuming'
import { newTenant, testApp, token } from '../../helpers/harness'

type App = Awaited<ReturnType<typeof testApp>>

async function setup(queue: Record<string, unknown> = {}) {
  const app = await testApp()
  const tenant = newTenant()
  const name = 'orders'
  expect(
    (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name, ...queue } })).status
  ).toBe(201)
  return { app, tenant, name }
}

const receiptsOf = (ds: Delivery[]) => ds.map((d) => d.receipt)

const nack = async (app: App, tenant: string, sub: string, receipts: string[], extra = {}) =>
  (
    await call(app, 'POST', `${BASE}/subscriptions/${sub}/nack`, {
      tenant,
      body: { receipts, ...extra },
    })
  ).body as {
    requeued: number
    deadLettered: number
  }

async function stats(app: App, tenant: string, sub: string) {
  return (await call(app, 'GET', `${BASE}/subscriptions/${sub}`, { tenant })).body.stats
}

describe('consume: happy', () => {
  test('each group gets every message; consumers in one group share them', async () => {
    const { app, tenant } = await setup({ partitionCount: 4 })
    const billing1 = await subscribe(app, tenant, { consumerGroup: 'billing', consumerName: 'b1' })
    const billing2 = await subscribe(app, tenant, { consumerGroup: 'billing', consumerName: 'b2' })
    const audit = await subscribe(app, tenant, { consumerGroup: 'audit', consumerName: 'a1' })
    const ids = await publish(
      app,
      tenant,
      Array.from({ length: 40 }, (_, i) => ({ i }))
    )

    const first = await pull(app, tenant, billing1, { max: 25 })
    const second = await pull(app, tenant, billing2, { max: 100 })
    const shared = [...first, ...second].map((d) => d.messageId)
    expect(first).toHaveLength(25)
    expect(shared.toSorted()).toEqual(ids.toSorted())
    const all = await pull(app, tenant, audit)
    expect(all.map((d) => d.messageId).toSorted()).toEqual(ids.toSorted())
    expect(all.every((d) => d.deliveryCount === 1)).toBe(true)

    expect(
      await ack(
        app,
        tenant,
        billing1,
        first.map((d) => d.receipt)
      )
    ).toBe(25)
    expect(
      await ack(
        app,
        tenant,
        billing2,
        second.map((d) => d.receipt)
      )
    ).toBe(15)
    expect(
      await ack(
        app,
        tenant,
        audit,
        all.map((d) => d.receipt)
      )
    ).toBe(40)
    expect(await pull(app, tenant, billing1)).toEqual([])
    const s = await stats(app, tenant, audit)
    expect(s).toMatchObject({ pending: 0, lag: 0, delivered: 40, acked: 40, deadLettered: 0 })
  })

  test('a delivery not acked within its visibility timeout comes back; the stale receipt acks nothing', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const [id] = await publish(app, tenant, ['hello'])
    const [first] = await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })
    expect(first).toMatchObject({ messageId: id, deliveryCount: 1, payload: 'hello' })
    expect(await pull(app, tenant, sub)).toEqual([])
    await Bun.sleep(1100)
    const [again] = await pull(app, tenant, sub)
    expect(again).toMatchObject({ messageId: id, deliveryCount: 2 })
    expect(await ack(app, tenant, sub, [first!.receipt])).toBe(0)
    expect(await ack(app, tenant, sub, [again!.receipt])).toBe(1)
    expect(await stats(app, tenant, sub)).toMatchObject({
      pending: 0,
      delivered: 2,
      acked: 1,
      failed: 1,
    })
  })

  test('one ack settles current receipts across partitions; stale and repeated ones settle nothing', async () => {
    const { app, tenant } = await setup({ partitionCount: 3 })
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    await publish(
      app,
      tenant,
      Array.from({ length: 30 }, (_, i) => i)
    )
    const first = await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })
    expect(first).toHaveLength(30)
    expect(new Set(first.map((d) => d.partition)).size).toBe(3)
    await Bun.sleep(1100)
    const again = await pull(app, tenant, sub)
    expect(again).toHaveLength(30)
    expect(again.every((d) => d.deliveryCount === 2)).toBe(true)

    const half = again.filter((_, i) => i % 2 === 0)
    const rest = again.filter((_, i) => i % 2 === 1)
    const receipts = [...receiptsOf(first), ...receiptsOf(half), half[1]!.receipt]
    expect(await ack(app, tenant, sub, receipts)).toBe(half.length)
    expect(await stats(app, tenant, sub)).toMatchObject({ pending: rest.length, acked: 15 })
    expect(await ack(app, tenant, sub, receiptsOf(rest))).toBe(rest.length)
    expect(await stats(app, tenant, sub)).toMatchObject({ pending: 0, acked: 30 })
  })

  test('receipts far apart in the pending list settle and come back like neighbours', async () => {
    const { app, tenant } = await setup()
    const mine = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'mine' })
    const busy = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'busy' })
    await publish(
      app,
      tenant,
      Array.from({ length: 104 }, (_, i) => i)
    )
    // Between each of mine and the next lie 50 entries another consumer holds.
    const spread: Delivery[] = []
    for (let i = 0; i < 2; i++) {
      spread.push(...(await pull(app, tenant, mine, { max: 2, visibilityTimeoutMs: 1000 })))
      expect(await pull(app, tenant, busy, { max: 50 })).toHaveLength(50)
    }
    expect(spread.map((d) => d.payload)).toEqual([0, 1, 52, 53])

    expect(await ack(app, tenant, mine, [spread[0]!.receipt, spread[3]!.receipt])).toBe(2)
    await Bun.sleep(1100)
    const back = await pull(app, tenant, mine)
    expect(back.map((d) => [d.payload, d.deliveryCount])).toEqual([
      [1, 2],
      [52, 2],
    ])
    expect(await nack(app, tenant, mine, receiptsOf(back), { delayMs: 60_000 })).toEqual({
      requeued: 2,
      deadLettered: 0,
    })
    expect(await nack(app, tenant, mine, [back[0]!.receipt, back[0]!.receipt])).toEqual({
      requeued: 1,
      deadLettered: 0,
    })
    expect(await stats(app, tenant, mine)).toMatchObject({ pending: 102, acked: 2 })
  })

  test('long poll returns as soon as a message is published', async () => {
    const { app, tenant } = await setup({ partitionCount: 2 })
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const started = Date.now()
    const waiting = pull(app, tenant, sub, { waitMs: 10_000 })
    await Bun.sleep(300)
    await publish(app, tenant, ['late'])
    const got = await waiting
    const elapsed = Date.now() - started
    expect(got.map((d) => d.payload)).toEqual(['late'])
    expect(elapsed).toBeGreaterThanOrEqual(300)
    expect(elapsed).toBeLessThan(2000)
    const empty = Date.now()
    expect(await pull(app, tenant, sub, { waitMs: 500 })).toEqual([])
    expect(Date.now() - empty).toBeGreaterThanOrEqual(450)
  })

  test('a long poll whose client went away takes nothing when it wakes', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const gone = new AbortController()
    const abandoned = app.request(`${BASE}/subscriptions/${sub}/pull`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token(tenant)}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ max: 10, waitMs: 3000 }),
      signal: gone.signal,
    })
    await Bun.sleep(300)
    gone.abort()
    await publish(app, tenant, ['after the client left'])
    // Woken by the publish, the abandoned poll must not take the message: nobody would get it,
    // and it would stay hidden for the whole visibility timeout.
    await Bun.sleep(300)
    expect((await pull(app, tenant, sub)).map((d) => d.payload)).toEqual(['after the client left'])
    expect(((await (await abandoned).json()) as { messages: unknown[] }).messages).toEqual([])
  })

  test('nack requeues with delay; after maxRetryAttempts it goes to the DLQ once; redrive brings it back', async () => {
    const { app, tenant } = await setup({ partitionCount: 2 })
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      maxRetryAttempts: 3,
    })
    const [poison] = await publish(app, tenant, [{ poison: true }], { headers: { kind: 'poison' } })
    await publish(app, tenant, [{ ok: 1 }])

    const seen: number[] = []
    for (let attempt = 1; attempt <= 3; attempt++) {
      const got = await pull(app, tenant, sub)
      const bad = got.find((d) => d.messageId === poison)!
      for (const d of got)
        if (d.messageId !== poison) expect(await ack(app, tenant, sub, [d.receipt])).toBe(1)
      seen.push(bad.deliveryCount)
      const result = await nack(app, tenant, sub, [bad.receipt], {
        delayMs: 0,
        reason: 'cannot parse',
      })
      expect(result).toEqual(
        attempt < 3 ? { requeued: 1, deadLettered: 0 } : { requeued: 0, deadLettered: 1 }
      )
    }
    expect(seen).toEqual([1, 2, 3])
    expect(await pull(app, tenant, sub)).toEqual([])

    const dlq = await call(app, 'GET', `${BASE}/queues/orders.dlq/messages`, { tenant })
    expect(dlq.status).toBe(200)
    expect(dlq.body.items).toHaveLength(1)
    expect(dlq.body.items[0]).toMatchObject({
      messageId: poison,
      payload: { poison: true },
      headers: {
        kind: 'poison',
        'x-mq-original-queue': 'orders',
        'x-mq-delivery-count': '3',
        'x-mq-dead-letter-reason': 'cannot parse',
        'x-mq-consumer-group': 'g',
      },
    })
    const s = await stats(app, tenant, sub)
    expect(s).toMatchObject({ pending: 0, deadLettered: 1, acked: 1 })
    // published = acked + pending + dead-lettered
    expect(2).toBe(s.acked + s.pending + s.deadLettered)

    const redriven = await call(app, 'POST', `${BASE}/queues/orders.dlq/redrive`, {
      tenant,
      body: {},
    })
    expect(redriven.body).toEqual({ redriven: 1 })
    expect(
      (await call(app, 'GET', `${BASE}/queues/orders.dlq/messages`, { tenant })).body.items
    ).toEqual([])
    const [back] = await pull(app, tenant, sub)
    expect(back).toMatchObject({ messageId: poison, deliveryCount: 1, payload: { poison: true } })
    expect(back!.headers).toEqual({ kind: 'poison', 'x-mq-redrive-count': '1' })
    // The dead-letter queue is an ordinary queue, shaped like its source.
    const made = await call(app, 'GET', `${BASE}/queues/orders.dlq`, { tenant })
    expect(made.body).toMatchObject({ partitionCount: 2, encrypted: false, stats: { length: 0 } })
  })

  test('regression: a redrive into the queue it reads from is 400 and copies nothing (it re-read its own copies until max, past the deadline)', async () => {
    const { app, tenant } = await setup()
    await publish(app, tenant, [{ n: 1 }, { n: 2 }])
    const self = await call(app, 'POST', `${BASE}/queues/orders/redrive`, {
      tenant,
      body: { toQueue: 'orders', max: 1000 },
    })
    expect(self.status).toBe(400)
    expect(self.body.code).toBe('MQ_VALIDATION_FAILED')
    const after = await call(app, 'GET', `${BASE}/queues/orders`, { tenant })
    expect(after.body.stats.length).toBe(2)
  })

  test('a visibility timeout after the last attempt dead-letters too', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      maxRetryAttempts: 1,
    })
    const [id] = await publish(app, tenant, ['x'])
    expect(await pull(app, tenant, sub, { visibilityTimeoutMs: 1000 })).toHaveLength(1)
    await Bun.sleep(1100)
    expect(await pull(app, tenant, sub)).toEqual([])
    const dlq = await call(app, 'GET', `${BASE}/queues/orders.dlq/messages`, { tenant })
    expect(dlq.body.items.map((m: { messageId: string }) => m.messageId)).toEqual([id])
    expect(await stats(app, tenant, sub)).toMatchObject({ pending: 0, deadLettered: 1 })
  })

  test('filters: non-matching messages are acknowledged without delivery', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      messageFilter: {
        headers: { type: 'order.created' },
        payload: { country: { in: ['CN', 'SG'] }, total: { gt: 10 } },
      },
    })
    await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: {
        queue: 'orders',
        messages: [
          { payload: { country: 'CN', total: 50 }, headers: { type: 'order.created' } },
          { payload: { country: 'US', total: 50 }, headers: { type: 'order.created' } },
          { payload: { country: 'SG', total: 5 }, headers: { type: 'order.created' } },
          { payload: { country: 'SG', total: 20 }, headers: { type: 'order.paid' } },
          { payload: { country: 'SG', total: 99 }, headers: { type: 'order.created' } },
        ],
      },
    })
    const got = await pull(app, tenant, sub)
    expect(got.map((d) => d.payload)).toEqual([
      { country: 'CN', total: 50 },
      { country: 'SG', total: 99 },
    ])
    expect(await stats(app, tenant, sub)).toMatchObject({ pending: 2, lag: 0 })
  })

  test('a pull reads on past a batch its filter drops entirely', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      messageFilter: { headers: { type: 'wanted' } },
    })
    await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: {
        queue: 'orders',
        messages: [
          ...Array.from({ length: 12 }, (_, i) => ({ payload: i, headers: { type: 'other' } })),
          { payload: 'the one', headers: { type: 'wanted' } },
        ],
      },
    })
    const got = await pull(app, tenant, sub, { max: 5 })
    expect(got.map((d) => d.payload)).toEqual(['the one'])
  })

  test('encrypted payloads are delivered intact; seek earliest replays; TTL expiry skips', async () => {
    const { app, tenant } = await setup({ encrypted: true })
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    await publish(app, tenant, [{ card: '4111' }])
    await publish(app, tenant, ['short-lived'], { ttlMs: 1 })
    await Bun.sleep(5)
    const got = await pull(app, tenant, sub)
    expect(got.map((d) => d.payload)).toEqual([{ card: '4111' }])
    await ack(
      app,
      tenant,
      sub,
      got.map((d) => d.receipt)
    )
    const seek = await call(app, 'POST', `${BASE}/subscriptions/${sub}/seek`, {
      tenant,
      body: { to: 'earliest' },
    })
    expect(seek).toMatchObject({ status: 200, body: { position: '0' } })
    expect((await pull(app, tenant, sub)).map((d) => d.payload)).toEqual([{ card: '4111' }])
  })

  test('GET /messages/{id} tracks status; DELETE cancels only what is still scheduled', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const [id] = await publish(app, tenant, ['now'])
    const record = async () =>
      (await call(app, 'GET', `${BASE}/messages/${id}?queue=orders`, { tenant })).body
    expect(await record()).toMatchObject({ messageId: id, status: 'published', payload: 'now' })
    const [d] = await pull(app, tenant, sub)
    expect(await record()).toMatchObject({
      status: 'delivered',
      consumerGroups: [{ consumerGroup: 'g', state: 'delivered', deliveryCount: 1 }],
    })
    await ack(app, tenant, sub, [d!.receipt])
    expect((await record()).status).toBe('acked')
    expect(
      (await call(app, 'DELETE', `${BASE}/messages/${id}?queue=orders`, { tenant })).status
    ).toBe(409)

    const later = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: 'later', delayMs: 60_000 },
    })
    expect(later.body).toMatchObject({ status: 'scheduled', deliverAt: expect.any(String) })
    const scheduled = await call(
      app,
      'GET',
      `${BASE}/messages/${later.body.messageId}?queue=orders`,
      {
        tenant,
      }
    )
    expect(scheduled.body).toMatchObject({
      status: 'scheduled',
      payload: 'later',
      deliverAt: later.body.deliverAt,
    })
    expect(
      (
        await call(app, 'DELETE', `${BASE}/messages/${later.body.messageId}?queue=orders`, {
          tenant,
        })
      ).status
    ).toBe(204)
    expect(
      (await call(app, 'GET', `${BASE}/messages/${later.body.messageId}?queue=orders`, { tenant }))
        .status
    ).toBe(404)
  })

  test('peek pages across partitions without consuming', async () => {
    const { app, tenant } = await setup({ partitionCount: 3 })
    const ids = await publish(
      app,
      tenant,
      Array.from({ length: 7 }, (_, i) => i)
    )
    const page1 = await call(app, 'GET', `${BASE}/queues/orders/messages?limit=4`, {
      tenant,
      scope: 'mq:read',
    })
    expect(page1.body.items).toHaveLength(4)
    const page2 = await call(
      app,
      'GET',
      `${BASE}/queues/orders/messages?limit=4&from=${page1.body.nextCursor}`,
      { tenant }
    )
    expect(page2.body.items).toHaveLength(3)
    expect(page2.body.nextCursor).toBeNull()
    const seen = [...page1.body.items, ...page2.body.items].map(
      (m: { messageId: string }) => m.messageId
    )
    expect(seen.toSorted()).toEqual(ids.toSorted())
  })
})

describe('consume: errors and security', () => {
  test('paused subscription answers 409; max over maxPollRecords is 400', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      maxPollRecords: 5,
    })
    const over = await call(app, 'POST', `${BASE}/subscriptions/${sub}/pull`, {
      tenant,
      body: { max: 6 },
    })
    expect(over.status).toBe(400)
    await call(app, 'POST', `${BASE}/subscriptions/${sub}/pause`, { tenant })
    const paused = await call(app, 'POST', `${BASE}/subscriptions/${sub}/pull`, {
      tenant,
      body: {},
    })
    expect(paused.status).toBe(409)
    expect(paused.body.code).toBe('MQ_SUBSCRIPTION_PAUSED')
  })

  test("regression: a receipt that cannot be the subscription's is 400 and settles nothing, not {acked: 0}", async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const sibling = await subscribe(app, tenant, { consumerGroup: 'h', consumerName: 'c' })
    await publish(app, tenant, ['x'])
    const [d] = await pull(app, tenant, sub)
    const [s] = await pull(app, tenant, sibling)
    const forged = `${d!.receipt.split('.')[0]}.AAAAAAAAAAAAAAAAAAAAAA`
    const otherTenant = new ReceiptCodec(Buffer.alloc(32, 1)).encode(newTenant(), {
      subscriptionId: sub,
      partition: 0,
      streamId: '1-0',
      deliveryCount: 1,
    })
    const cases: Record<string, string> = {
      garbage: 'garbage',
      empty: '',
      forged,
      "another tenant's": otherTenant,
      "another subscription's": s!.receipt,
    }
    for (const path of ['ack', 'nack']) {
      for (const [what, bad] of Object.entries(cases)) {
        const res = await call(app, 'POST', `${BASE}/subscriptions/${sub}/${path}`, {
          tenant,
          body: { receipts: [d!.receipt, bad] },
        })
        expect({ path, what, status: res.status }).toEqual({ path, what, status: 400 })
        expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
        expect(res.body.details.issues[0].path).toBe('receipts.1')
      }
    }
    expect(await stats(app, tenant, sub)).toMatchObject({ pending: 1, acked: 0 })

    const other = newTenant()
    for (const path of ['pull', 'ack', 'nack', 'seek']) {
      const body =
        path === 'seek' ? { to: 'latest' } : path === 'pull' ? {} : { receipts: [d!.receipt] }
      const res = await call(app, 'POST', `${BASE}/subscriptions/${sub}/${path}`, {
        tenant: other,
        body,
      })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe('MQ_SUBSCRIPTION_NOT_FOUND')
    }
    expect(
      (await call(app, 'GET', `${BASE}/messages/${d!.messageId}?queue=orders`, { tenant: other }))
        .status
    ).toBe(404)
    expect(
      (await call(app, 'GET', `${BASE}/queues/orders/messages`, { tenant: other })).status
    ).toBe(404)
    expect(await ack(app, tenant, sub, [d!.receipt])).toBe(1)
  })

  test('consuming needs mq:consume', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const res = await call(app, 'POST', `${BASE}/subscriptions/${sub}/pull`, {
      tenant,
      scope: 'mq:publish mq:read',
      body: {},
    })
    expect(res.status).toBe(403)
  })
})
