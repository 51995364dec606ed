import { describe, expect, test } from 'bun:test'
import { systemLedgerRecords } from '../../../src/db/scoped-ledger'
import type { Attempt } from '../../../src/domain/ledger'
import { MessageRecordSchema, RedriveOneResultSchema } from '../../../src/http/schemas/messages'
import { BASE, call, expectError } from '../../helpers/api'
import { ack, type Delivery, publish, pull, subscribe } from '../../helpers/consuming'
import { newTenant, readyDeps, testApp } from '../../helpers/harness'
import { streamMessage } from '../../helpers/ledger'

/** GET, DELETE and redrive of one message: `/queues/{name}/messages/{messageId}`. */

type App = Awaited<ReturnType<typeof testApp>>

async function setup(queue: Record<string, unknown> = {}) {
  const app = await testApp()
  const tenant = newTenant()
  const res = await call(app, 'POST', `${BASE}/queues`, {
    tenant,
    body: { name: 'orders', ...queue },
  })
  expect(res.status).toBe(201)
  return { app, tenant }
}

const one = (name: string, id: string) =>
  `${BASE}/queues/${name}/messages/${encodeURIComponent(id)}`

const getOne = (app: App, tenant: string, id: string, name = 'orders') =>
  call(app, 'GET', one(name, id), { tenant })
const deleteOne = (app: App, tenant: string, id: string, name = 'orders') =>
  call(app, 'DELETE', one(name, id), { tenant })
const redriveOne = (app: App, tenant: string, id: string, name = 'orders.dlq') =>
  call(app, 'POST', `${one(name, id)}/redrive`, { tenant })

/** A message nacked into `orders.dlq` by a subscription that allows one delivery. */
async function deadLetter(app: App, tenant: string) {
  const sub = await subscribe(app, tenant, {
    consumerGroup: 'g',
    consumerName: 'c',
    maxRetryAttempts: 1,
  })
  const [id] = await publish(app, tenant, [{ poison: true }], { headers: { kind: 'poison' } })
  const [d] = await pull(app, tenant, sub)
  const nacked = await call(app, 'POST', `${BASE}/subscriptions/${sub}/nack`, {
    tenant,
    body: { receipts: [d!.receipt], reason: 'cannot parse' },
  })
  expect(nacked.body).toEqual({ requeued: 0, deadLettered: 1 })
  return { sub, id: id! }
}

describe('one message: happy', () => {
  test('GET shows a stored message like a peek item, with its status and groups', async () => {
    const { app, tenant } = await setup()
    await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const [id] = await publish(app, tenant, [{ total: 42 }], {
      headers: { kind: 'order' },
      key: 'customer-1',
    })
    const res = await getOne(app, tenant, id!)
    expect(res.status).toBe(200)
    const m = MessageRecordSchema.parse(res.body)
    expect(m).toMatchObject({
      messageId: id,
      queue: 'orders',
      partition: 0,
      payload: { total: 42 },
      headers: { kind: 'order' },
      key: 'customer-1',
      status: 'published',
      consumerGroups: [{ consumerGroup: 'g', state: 'waiting', deliveryCount: 0 }],
      attempts: [],
    })
  })

  test('GET finds a scheduled message and a dead letter in its dead-letter queue', async () => {
    const { app, tenant } = await setup()
    const [later] = await publish(app, tenant, ['later'], { delayMs: 60_000 })
    expect((await getOne(app, tenant, later!)).body).toMatchObject({ status: 'scheduled' })
    const { id } = await deadLetter(app, tenant)
    const dead = await getOne(app, tenant, id, 'orders.dlq')
    expect(dead.status).toBe(200)
    expect(dead.body).toMatchObject({
      queue: 'orders.dlq',
      payload: { poison: true },
      headers: { 'x-mq-original-queue': 'orders', 'x-mq-dead-letter-reason': 'cannot parse' },
    })
  })

  test('GET answers from the ledger once Redis no longer has it, with each attempt and its status code', async () => {
    const { app, tenant } = await setup()
    const deps = await readyDeps()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const queue = (await deps.queueDeps.queues.get(tenant, 'orders'))!
    const t = Date.now() - 10_000
    const records = systemLedgerRecords(deps.database.db, deps.logger)
    await records.recordMessages([streamMessage(queue, 'gone-1', '{"n":1}', t)])
    const attempt = (
      deliveryCount: number,
      extra: Partial<Attempt> & Pick<Attempt, 'status'>
    ): Attempt => ({
      messageId: 'gone-1',
      partition: 0,
      streamId: `${t}-0`,
      deliveryCount,
      at: t + deliveryCount * 1000,
      processingMs: 5,
      nextRetryAt: null,
      message: null,
      error: null,
      ...extra,
    })
    await records.recordAttempts([
      {
        tenantId: tenant,
        queueId: queue.id,
        subscriptionId: sub,
        consumer: 'c',
        attempts: [
          attempt(1, {
            status: 'retrying',
            error: 'webhook: endpoint answered 503',
            statusCode: 503,
          }),
          attempt(2, { status: 'success' }),
        ],
      },
    ])
    const res = await getOne(app, tenant, 'gone-1')
    expect(res.status).toBe(200)
    const m = MessageRecordSchema.parse(res.body)
    expect(m).toMatchObject({ status: 'acked', payload: { n: 1 }, consumerGroups: [] })
    expect(m.attempts.map((a) => [a.deliveryCount, a.status, a.statusCode, a.error])).toEqual([
      [1, 'retrying', 503, 'webhook: endpoint answered 503'],
      [2, 'success', null, null],
    ])
    expect(m.attempts[0]).toMatchObject({ subscriptionId: sub, consumerGroup: 'g' })
  })

  test('DELETE removes a waiting, an acknowledged and a scheduled message; none is delivered after', async () => {
    const { app, tenant } = await setup({ partitionCount: 2 })
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const [acked] = await publish(app, tenant, ['acked'])
    const [first] = await pull(app, tenant, sub)
    expect(await ack(app, tenant, sub, [first!.receipt])).toBe(1)
    const [waiting, kept] = await publish(app, tenant, ['waiting', 'kept'])
    const [later] = await publish(app, tenant, ['later'], { delayMs: 60_000 })
    for (const id of [acked!, waiting!, later!]) {
      expect((await deleteOne(app, tenant, id)).status).toBe(204)
    }
    // What left a stream is in the ledger as removed; a cancelled one never entered the ledger.
    for (const id of [acked!, waiting!]) {
      const gone = await getOne(app, tenant, id)
      expect(MessageRecordSchema.parse(gone.body)).toMatchObject({
        messageId: id,
        status: 'removed',
        consumerGroups: [],
      })
    }
    expectError(await getOne(app, tenant, later!), 404, 'MQ_MESSAGE_NOT_FOUND')
    // Whatever was still scheduled comes due: the cancelled one is not among it.
    const deps = await readyDeps()
    const key = (p: number, part: 'stream' | 'delayed' | 'delayedBodies' | 'index') =>
      deps.keys.partition(tenant, 'orders', p, part)
    for (const p of [0, 1]) {
      const [promoted] = (await deps.redis.promoteDue(
        key(p, 'stream'),
        key(p, 'delayed'),
        key(p, 'delayedBodies'),
        key(p, 'index'),
        Date.now() + 120_000,
        100
      )) as number[]
      expect(promoted).toBe(0)
    }
    expect((await pull(app, tenant, sub)).map((d) => d.messageId)).toEqual([kept!])
    expectError(await deleteOne(app, tenant, waiting!), 404, 'MQ_MESSAGE_NOT_FOUND')
  })

  test('DELETE marks a message the ledger already recorded as removed, keeping its attempts', async () => {
    const { app, tenant } = await setup()
    const deps = await readyDeps()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    const [id] = await publish(app, tenant, [{ n: 7 }])
    const [d] = await pull(app, tenant, sub)
    expect(await ack(app, tenant, sub, [d!.receipt])).toBe(1)
    // As the ledger writer would have it by now: the message's row and its acknowledged attempt.
    const queue = (await deps.queueDeps.queues.get(tenant, 'orders'))!
    const found = (await deps.inspectDeps.messages.findMessage(queue, id!))!
    const records = systemLedgerRecords(deps.database.db, deps.logger)
    await records.recordMessages([
      {
        tenantId: tenant,
        queueId: queue.id,
        partition: 0,
        streamId: found.streamId!,
        message: found.message,
      },
    ])
    await records.recordAttempts([
      {
        tenantId: tenant,
        queueId: queue.id,
        subscriptionId: sub,
        consumer: 'c',
        attempts: [
          {
            messageId: id!,
            partition: 0,
            streamId: found.streamId!,
            deliveryCount: 1,
            status: 'success',
            at: Date.now(),
            processingMs: 3,
            error: null,
            nextRetryAt: null,
            message: null,
          },
        ],
      },
    ])
    expect((await deleteOne(app, tenant, id!)).status).toBe(204)
    const m = MessageRecordSchema.parse((await getOne(app, tenant, id!)).body)
    expect(m).toMatchObject({ status: 'removed', payload: { n: 7 }, consumerGroups: [] })
    expect(m.attempts.map((a) => a.status)).toEqual(['success'])
  })

  test('DELETE of a message a group has out is 409 MQ_MESSAGE_IN_FLIGHT, and 204 once it is settled', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, { consumerGroup: 'g', consumerName: 'c' })
    // A second group that has not read it does not hold it back once the first settles.
    await subscribe(app, tenant, { consumerGroup: 'h', consumerName: 'c' })
    const [id] = await publish(app, tenant, ['x'])
    const [d] = await pull(app, tenant, sub)
    const refused = expectError(await deleteOne(app, tenant, id!), 409, 'MQ_MESSAGE_IN_FLIGHT')
    expect(refused.message).toContain(id!)
    expect(await ack(app, tenant, sub, [d!.receipt])).toBe(1)
    expect((await deleteOne(app, tenant, id!)).status).toBe(204)
  })

  test('redrive moves one dead letter back to its queue and says where', async () => {
    const { app, tenant } = await setup({ partitionCount: 2 })
    const { sub, id } = await deadLetter(app, tenant)
    const res = await redriveOne(app, tenant, id)
    expect(res.status).toBe(200)
    const where = RedriveOneResultSchema.parse(res.body)
    expect(where.messageId).toBe(id)
    expect(where.queue).toBe('orders')
    // Gone from the dead-letter queue's stream; its ledger copy says it was removed.
    expect((await getOne(app, tenant, id, 'orders.dlq')).body).toMatchObject({ status: 'removed' })
    expect((await getOne(app, tenant, id)).body).toMatchObject({ status: 'published' })
    const back = (await pull(app, tenant, sub)) as Delivery[]
    expect(back.map((d) => [d.messageId, d.partition, d.deliveryCount])).toEqual([
      [id, where.partition, 1],
    ])
    expect(back[0]!.headers).toEqual({ kind: 'poison', 'x-mq-redrive-count': '1' })
    expectError(await redriveOne(app, tenant, id), 404, 'MQ_MESSAGE_NOT_FOUND')
  })
})

describe('one message: errors', () => {
  test('an unknown message or queue is 404', async () => {
    const { app, tenant } = await setup()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders.dlq' } })
    expectError(await getOne(app, tenant, 'nope'), 404, 'MQ_MESSAGE_NOT_FOUND')
    expectError(await deleteOne(app, tenant, 'nope'), 404, 'MQ_MESSAGE_NOT_FOUND')
    expectError(await redriveOne(app, tenant, 'nope'), 404, 'MQ_MESSAGE_NOT_FOUND')
    expectError(await getOne(app, tenant, 'x', 'ghost'), 404, 'MQ_QUEUE_NOT_FOUND')
    expectError(await deleteOne(app, tenant, 'x', 'ghost'), 404, 'MQ_QUEUE_NOT_FOUND')
    expectError(await redriveOne(app, tenant, 'x', 'ghost'), 404, 'MQ_QUEUE_NOT_FOUND')
  })

  test('a message id publishing would refuse is 400 on every route', async () => {
    const { app, tenant } = await setup()
    for (const bad of ['with space', 'x'.repeat(201), 'tab\there', 'ü']) {
      for (const res of [
        await getOne(app, tenant, bad),
        await deleteOne(app, tenant, bad),
        await redriveOne(app, tenant, bad),
      ]) {
        expectError(res, 400, 'MQ_VALIDATION_FAILED', bad)
      }
    }
  })

  test('redriving a message that is no dead letter is 400 and moves nothing', async () => {
    const { app, tenant } = await setup()
    const [id] = await publish(app, tenant, ['plain'])
    expectError(await redriveOne(app, tenant, id!, 'orders'), 400, 'MQ_VALIDATION_FAILED')
    expect((await getOne(app, tenant, id!)).status).toBe(200)
  })
})

describe('one message: security', () => {
  test("another tenant's message answers 404 exactly as a missing one, and is left alone", async () => {
    const { app, tenant } = await setup()
    const { id } = await deadLetter(app, tenant)
    const [stored] = await publish(app, tenant, ['mine'])
    const other = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant: other, body: { name: 'orders' } })
    await call(app, 'POST', `${BASE}/queues`, { tenant: other, body: { name: 'orders.dlq' } })
    for (const as of [other, newTenant()]) {
      const answers = [
        await getOne(app, as, stored!),
        await deleteOne(app, as, stored!),
        await redriveOne(app, as, id),
      ]
      for (const res of answers) {
        const code = as === other ? 'MQ_MESSAGE_NOT_FOUND' : 'MQ_QUEUE_NOT_FOUND'
        expectError(res, 404, code)
      }
    }
    expect((await getOne(app, tenant, stored!)).status).toBe(200)
    expect((await getOne(app, tenant, id, 'orders.dlq')).status).toBe(200)
  })

  test('DELETE and redrive need mq:admin; GET needs mq:read', async () => {
    const { app, tenant } = await setup()
    const [id] = await publish(app, tenant, ['x'])
    const as = (scope: string, method: string, path: string) =>
      call(app, method, path, { tenant, scope })
    expect((await as('mq:read', 'GET', one('orders', id!))).status).toBe(200)
    expectError(await as('mq:publish', 'DELETE', one('orders', id!)), 403, 'MQ_FORBIDDEN')
    expectError(
      await as('mq:consume', 'POST', `${one('orders', id!)}/redrive`),
      403,
      'MQ_FORBIDDEN'
    )
  })
})
