import { describe, expect, test } from 'bun:test'
import type { z } from '@hono/zod-openapi'
import { eq } from 'drizzle-orm'
import { createApp } from '../../../src/app'
import { CachedSubscriptionStore } from '../../../src/db/metadata-cache'
import { messageSubscriptions } from '../../../src/db/schema'
import { SubscriptionRepository } from '../../../src/db/subscription-repository'
import { openSigningSecret } from '../../../src/domain/subscription-admin'
import { SubscriptionListSchema, SubscriptionSchema } from '../../../src/http/schemas/subscriptions'
import { createLogger } from '../../../src/observability/logger'
import { createRedis } from '../../../src/streams/redis'
import { BASE, call } from '../../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp, token } from '../../helpers/harness'

const Q = `${BASE}/queues`
const S = `${BASE}/subscriptions`

type App = Awaited<ReturnType<typeof testApp>>

/** The fields a creating request must have. */
const minimal = {
  queue: 'orders',
  consumerGroup: 'g',
  consumerName: 'c',
  subscriptionType: 'redis_consumer',
}

/** A tenant with one queue, and a way to subscribe to it. */
async function setup(queue = 'orders', settings: Record<string, unknown> = {}) {
  const app = await testApp()
  const tenant = newTenant()
  const created = await call(app, 'POST', Q, { tenant, body: { name: queue, ...settings } })
  expect(created.status).toBe(201)
  return { app, tenant }
}

async function subscribe(
  app: App,
  tenant: string,
  body: Record<string, unknown>
): Promise<z.infer<typeof SubscriptionSchema>> {
  // A webhook subscription is the tenant administrator's to create (API.md "Scopes").
  const res = await call(app, 'POST', S, {
    tenant,
    scope: body.subscriptionType === 'webhook' ? 'mq:admin' : 'mq:consume',
    body: { ...minimal, ...body },
  })
  expect(res.status).toBe(201)
  return SubscriptionSchema.parse(res.body)
}

/** XINFO GROUPS of one partition's stream, as objects. */
async function groupsOf(tenant: string, queue: string, partition: number) {
  const deps = await sharedDeps()
  const reply = (await deps.redis.xinfo(
    'GROUPS',
    deps.keys.partition(tenant, queue, partition, 'stream')
  )) as unknown[][]
  return reply.map((flat) => {
    const out: Record<string, unknown> = {}
    for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = flat[i + 1]
    return out
  })
}

describe('subscriptions: happy', () => {
  test('create with defaults, get with stats, list, update, pause, resume, delete', async () => {
    const { app, tenant } = await setup()
    const created = await call(app, 'POST', S, {
      tenant,
      scope: 'mq:consume',
      body: {
        queue: 'orders',
        consumerGroup: 'billing',
        consumerName: 'billing-1',
        subscriptionType: 'redis_consumer',
      },
    })
    expect(created.status).toBe(201)
    const sub = SubscriptionSchema.parse(created.body)
    expect(sub).toMatchObject({
      queue: 'orders',
      consumerGroup: 'billing',
      consumerName: 'billing-1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'latest',
      maxPollRecords: 500,
      sessionTimeoutMs: 30_000,
      heartbeatIntervalMs: 3000,
      handlerConfig: {},
      deadLetterQueue: 'orders.dlq',
      maxRetryAttempts: 3,
      retryDelayMs: 1000,
      retryBackoff: 'exponential',
      messageFilter: null,
      status: 'active',
      statusReason: null,
      lastConsumedAt: null,
    })
    for (const hidden of ['stats', 'signingSecret', 'tenantId', 'queueId']) {
      expect(created.body).not.toHaveProperty(hidden)
    }

    const got = await call(app, 'GET', `${S}/${sub.id}`, { tenant, scope: 'mq:read' })
    expect(got.status).toBe(200)
    expect(SubscriptionSchema.parse(got.body).stats).toEqual({
      lag: 0,
      pending: 0,
      delivered: 0,
      acked: 0,
      failed: 0,
      deadLettered: 0,
    })

    const listed = await call(app, 'GET', S, { tenant, scope: 'mq:read' })
    const page = SubscriptionListSchema.parse(listed.body)
    expect(page.items.map((s) => s.id)).toEqual([sub.id])
    expect(page.nextCursor).toBeNull()
    expect(listed.body.items[0]).not.toHaveProperty('stats')

    const filter = {
      headers: { type: 'order.created' },
      payload: { country: { in: ['CN', 'SG'] } },
    }
    const updated = await call(app, 'PUT', `${S}/${sub.id}`, {
      tenant,
      scope: 'mq:admin',
      body: {
        maxPollRecords: 50,
        retryBackoff: 'fixed',
        deadLetterQueue: 'orders-failed',
        messageFilter: filter,
      },
    })
    expect(updated.status).toBe(200)
    expect(updated.body).toMatchObject({
      maxPollRecords: 50,
      retryBackoff: 'fixed',
      deadLetterQueue: 'orders-failed',
      messageFilter: filter,
      consumerGroup: 'billing',
      sessionTimeoutMs: 30_000,
    })
    expect(updated.body).not.toHaveProperty('stats')
    expect(Date.parse(updated.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(sub.updatedAt))
    // null goes back to the default dead-letter queue.
    const reset = await call(app, 'PUT', `${S}/${sub.id}`, {
      tenant,
      body: { deadLetterQueue: null, messageFilter: null },
    })
    expect(reset.body).toMatchObject({ deadLetterQueue: 'orders.dlq', messageFilter: null })

    const paused = await call(app, 'POST', `${S}/${sub.id}/pause`, { tenant, scope: 'mq:consume' })
    expect(paused.status).toBe(200)
    expect(SubscriptionSchema.parse(paused.body).status).toBe('paused')
    const pausedList = await call(app, 'GET', `${S}?status=paused`, { tenant })
    expect(pausedList.body.items.map((s: { id: string }) => s.id)).toEqual([sub.id])
    const resumed = await call(app, 'POST', `${S}/${sub.id}/resume`, {
      tenant,
      scope: 'mq:consume',
    })
    expect(resumed.status).toBe(200)
    expect(resumed.body).toMatchObject({ status: 'active', statusReason: null })

    const deleted = await call(app, 'DELETE', `${S}/${sub.id}`, { tenant, scope: 'mq:consume' })
    expect(deleted.status).toBe(204)
    const gone = await call(app, 'GET', `${S}/${sub.id}`, { tenant })
    expect(gone.status).toBe(404)
    expect(gone.body.code).toBe('MQ_SUBSCRIPTION_NOT_FOUND')
  })

  test('resume clears the reason a subscription was paused for', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {})
    // As the webhook worker does on a 410 Gone.
    await deps.subscriptionDeps.subscriptions.update(tenant, sub.id, {
      status: 'paused',
      statusReason: 'endpoint answered 410 Gone',
    })
    const got = await call(app, 'GET', `${S}/${sub.id}`, { tenant })
    expect(got.body).toMatchObject({ status: 'paused', statusReason: 'endpoint answered 410 Gone' })
    const resumed = await call(app, 'POST', `${S}/${sub.id}/resume`, { tenant })
    expect(resumed.body).toMatchObject({ status: 'active', statusReason: null })
  })

  test('the group exists on every partition, at 0-0 for earliest and at the end for latest', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup('orders', { partitionCount: 3 })
    const lastIds: string[] = []
    for (const p of [0, 1, 2]) {
      const stream = deps.keys.partition(tenant, 'orders', p, 'stream')
      for (let i = 0; i <= p; i++) lastIds[p] = (await deps.redis.xadd(stream, '*', 'm', `${i}`))!
    }
    const early = await subscribe(app, tenant, {
      consumerGroup: 'from-start',
      consumerName: 'c1',
      offsetResetPolicy: 'earliest',
    })
    const late = await subscribe(app, tenant, { consumerGroup: 'only-new', consumerName: 'c1' })
    expect(late.offsetResetPolicy).toBe('latest')

    for (const p of [0, 1, 2]) {
      const groups = await groupsOf(tenant, 'orders', p)
      const byName = Object.fromEntries(groups.map((g) => [g.name, g]))
      expect(byName['from-start']?.['last-delivered-id']).toBe('0-0')
      expect(byName['only-new']?.['last-delivered-id']).toBe(lastIds[p])
    }
    // 1 + 2 + 3 entries are unread by the earliest group, none by the latest one.
    const earlyStats = await call(app, 'GET', `${S}/${early.id}`, { tenant })
    expect(earlyStats.body.stats).toMatchObject({ lag: 6, pending: 0 })
    const lateStats = await call(app, 'GET', `${S}/${late.id}`, { tenant })
    expect(lateStats.body.stats).toMatchObject({ lag: 0, pending: 0 })
  })

  test('the group is created on an empty queue too (MKSTREAM)', async () => {
    const { app, tenant } = await setup('orders', { partitionCount: 2 })
    await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      offsetResetPolicy: 'earliest',
    })
    for (const p of [0, 1]) {
      expect((await groupsOf(tenant, 'orders', p)).map((g) => g.name)).toEqual(['g'])
    }
  })

  test('deleting one of two keeps the group; deleting the last destroys it', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup('orders', { partitionCount: 2 })
    const one = await subscribe(app, tenant, { consumerGroup: 'shared', consumerName: 'c1' })
    const two = await subscribe(app, tenant, { consumerGroup: 'shared', consumerName: 'c2' })
    const stream = deps.keys.partition(tenant, 'orders', 0, 'stream')
    // c1 read and acknowledged everything: nothing pending, so its consumer may go.
    await deps.redis.xadd(stream, '*', 'm', '1')
    const read = (await deps.redis.xreadgroup(
      'GROUP',
      'shared',
      'c1',
      'STREAMS',
      stream,
      '>'
    )) as Array<[string, Array<[string, string[]]>]>
    await deps.redis.xack(stream, 'shared', read[0]![1][0]![0])

    expect((await call(app, 'DELETE', `${S}/${one.id}`, { tenant })).status).toBe(204)
    for (const p of [0, 1]) {
      expect((await groupsOf(tenant, 'orders', p)).map((g) => g.name)).toEqual(['shared'])
    }
    const consumers = (await deps.redis.xinfo('CONSUMERS', stream, 'shared')) as unknown[][]
    expect(consumers.map((c) => c[1])).not.toContain('c1')

    expect((await call(app, 'DELETE', `${S}/${two.id}`, { tenant })).status).toBe(204)
    for (const p of [0, 1]) expect(await groupsOf(tenant, 'orders', p)).toEqual([])
  })

  test('a consumer holding pending deliveries leaves them to the group when its subscription goes', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const one = await subscribe(app, tenant, { consumerGroup: 'shared', consumerName: 'c1' })
    await subscribe(app, tenant, { consumerGroup: 'shared', consumerName: 'c2' })
    const stream = deps.keys.partition(tenant, 'orders', 0, 'stream')
    const id = await deps.redis.xadd(stream, '*', 'm', '1')
    await deps.redis.xreadgroup('GROUP', 'shared', 'c1', 'STREAMS', stream, '>')

    expect((await call(app, 'DELETE', `${S}/${one.id}`, { tenant })).status).toBe(204)
    const consumers = (await deps.redis.xinfo('CONSUMERS', stream, 'shared')) as unknown[][]
    expect(consumers.map((c) => c[1])).toEqual(['c2'])
    // Its delivery is c2's now, its count kept, due at once.
    expect(await deps.redis.xpending(stream, 'shared', '-', '+', 10)).toEqual([
      [id, 'c2', expect.any(Number), 1],
    ])
    const inflight = deps.keys.inflight(tenant, 'orders', 0, 'shared')
    expect(Number(await deps.redis.zscore(inflight, id!))).toBeLessThanOrEqual(Date.now())
  })

  test('stats count outcomes; deleting clears the counters', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const created = await subscribe(app, tenant, {})
    const sub = (await deps.subscriptionDeps.subscriptions.get(tenant, created.id))!
    await deps.messages.countOutcome(sub, 'delivered', 5)
    await deps.messages.countOutcome(sub, 'acked', 3)
    await deps.messages.countOutcome(sub, 'failed', 2)
    await deps.messages.countOutcome(sub, 'deadLettered', 1)
    const got = await call(app, 'GET', `${S}/${sub.id}`, { tenant })
    expect(got.body.stats).toEqual({
      lag: 0,
      pending: 0,
      delivered: 5,
      acked: 3,
      failed: 2,
      deadLettered: 1,
    })
    await call(app, 'DELETE', `${S}/${sub.id}`, { tenant })
    expect(await deps.redis.exists(deps.keys.subscriptionCounters(tenant, sub.id))).toBe(0)
  })

  test('webhook: signing secret returned once, stored sealed; handlerConfig defaults', async () => {
    const deps = await sharedDeps()
    const { app, tenant } = await setup()
    const created = await subscribe(app, tenant, {
      consumerGroup: 'hooks',
      consumerName: 'h1',
      subscriptionType: 'webhook',
      handlerConfig: { url: 'https://example.com/hook', headers: { 'x-env': 'test' } },
    })
    const secret = created.signingSecret as string
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32)
    expect(created.handlerConfig).toEqual({
      url: 'https://example.com/hook',
      method: 'POST',
      headers: { 'x-env': 'test' },
      timeoutMs: 15_000,
    })

    const got = await call(app, 'GET', `${S}/${created.id}`, { tenant })
    expect(got.body).not.toHaveProperty('signingSecret')
    const listed = await call(app, 'GET', S, { tenant })
    expect(listed.body.items[0]).not.toHaveProperty('signingSecret')
    const updated = await call(app, 'PUT', `${S}/${created.id}`, {
      tenant,
      body: { maxRetryAttempts: 5 },
    })
    expect(updated.body).not.toHaveProperty('signingSecret')

    const [row] = await deps.database.db
      .select()
      .from(messageSubscriptions)
      .where(eq(messageSubscriptions.id, created.id))
    expect(row!.signingSecret).toBeString()
    expect(row!.signingSecret).not.toContain(secret.slice(6))
    expect(row!.signingSecret).not.toContain('whsec_')
    const stored = (await deps.subscriptionDeps.subscriptions.get(tenant, created.id))!
    expect(openSigningSecret(deps.cipher, stored)).toBe(secret)
    // Sealed to this subscription: under another id it does not open.
    expect(() => openSigningSecret(deps.cipher, { ...stored, id: crypto.randomUUID() })).toThrow()

    const second = await subscribe(app, tenant, {
      consumerGroup: 'hooks',
      consumerName: 'h2',
      subscriptionType: 'webhook',
      handlerConfig: { url: 'http://example.com/other' },
    })
    expect(second.signingSecret).not.toBe(secret)
  })

  test('list pages oldest first with a cursor, filtered by queue and status', async () => {
    const { app, tenant } = await setup()
    await call(app, 'POST', Q, { tenant, body: { name: 'other' } })
    const ids: string[] = []
    for (const [queue, name] of [
      ['orders', 'a'],
      ['other', 'b'],
      ['orders', 'c'],
      ['orders', 'd'],
    ] as const) {
      ids.push((await subscribe(app, tenant, { queue, consumerGroup: 'g', consumerName: name })).id)
    }
    await call(app, 'POST', `${S}/${ids[3]}/pause`, { tenant })

    const first = await call(app, 'GET', `${S}?limit=3`, { tenant, scope: 'mq:read' })
    const page1 = SubscriptionListSchema.parse(first.body)
    expect(page1.items.map((s) => s.id)).toEqual(ids.slice(0, 3))
    expect(page1.nextCursor).toBeString()
    const second = await call(app, 'GET', `${S}?limit=3&cursor=${page1.nextCursor}`, { tenant })
    expect(second.body.items.map((s: { id: string }) => s.id)).toEqual([ids[3]])
    expect(second.body.nextCursor).toBeNull()

    const byQueue = await call(app, 'GET', `${S}?queue=orders&status=active`, { tenant })
    expect(byQueue.body.items.map((s: { id: string }) => s.id)).toEqual([ids[0], ids[2]])
    const other = await call(app, 'GET', `${S}?queue=other`, { tenant })
    expect(other.body.items.map((s: { queue: string }) => s.queue)).toEqual(['other'])
  })

  test('a change in one process drops the cached subscription in another', async () => {
    const deps = await sharedDeps()
    const logger = createLogger('silent')
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {})
    const subscriber = createRedis(deps.redisTarget, 'subscriber', logger)
    try {
      const elsewhere = new CachedSubscriptionStore(
        new SubscriptionRepository(deps.database.db),
        60_000,
        deps.redis,
        deps.keys.metadataChannel,
        logger
      )
      await elsewhere.listen(subscriber)
      expect((await elsewhere.get(tenant, sub.id))?.maxPollRecords).toBe(500)
      await call(app, 'PUT', `${S}/${sub.id}`, { tenant, body: { maxPollRecords: 7 } })
      let seen: number | undefined
      for (let i = 0; i < 50 && seen !== 7; i++) {
        await Bun.sleep(20)
        seen = (await elsewhere.get(tenant, sub.id))?.maxPollRecords
      }
      expect(seen).toBe(7)
    } finally {
      await subscriber.quit()
    }
  })
  test('the OpenAPI document lists every subscription route', async () => {
    const app = await testApp()
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, Record<string, unknown>>
    }
    expect(Object.keys(doc.paths[S] ?? {}).sort()).toEqual(['get', 'post'])
    expect(Object.keys(doc.paths[`${S}/{id}`] ?? {}).sort()).toEqual(['delete', 'get', 'put'])
    expect(doc.paths[`${S}/{id}/pause`]).toHaveProperty('post')
    expect(doc.paths[`${S}/{id}/resume`]).toHaveProperty('post')
  })
})

describe('subscriptions: errors', () => {
  test('no such queue is 404 MQ_QUEUE_NOT_FOUND', async () => {
    const { app, tenant } = await setup()
    const res = await call(app, 'POST', S, {
      tenant,
      body: { ...minimal, queue: 'nope' },
    })
    expect(res.status).toBe(404)
    expect(res.body.code).toBe('MQ_QUEUE_NOT_FOUND')
  })

  test('the same consumer in the same group is 409 MQ_SUBSCRIPTION_EXISTS', async () => {
    const { app, tenant } = await setup()
    await subscribe(app, tenant, {})
    const again = await call(app, 'POST', S, {
      tenant,
      body: {
        ...minimal,
        subscriptionType: 'webhook',
        handlerConfig: { url: 'https://example.com' },
      },
    })
    expect(again.status).toBe(409)
    expect(again.body.code).toBe('MQ_SUBSCRIPTION_EXISTS')
    // The same consumer name in another group is another subscription.
    await subscribe(app, tenant, { consumerGroup: 'g2', consumerName: 'c' })
  })

  test.each([
    ['kafka_consumer', { subscriptionType: 'kafka_consumer' }, 'subscriptionType'],
    ['an unknown type', { subscriptionType: 'sqs' }, 'subscriptionType'],
    ['a webhook without url', { subscriptionType: 'webhook' }, 'handlerConfig.url'],
    [
      'a webhook with an ftp url',
      { subscriptionType: 'webhook', handlerConfig: { url: 'ftp://example.com/x' } },
      'handlerConfig.url',
    ],
    [
      'a webhook with a relative url',
      { subscriptionType: 'webhook', handlerConfig: { url: '/hook' } },
      'handlerConfig.url',
    ],
    [
      'an unknown filter operator',
      { messageFilter: { payload: { n: { regex: 'x' } } } },
      'messageFilter.payload.n',
    ],
    [
      'an empty operator object',
      { messageFilter: { headers: { t: {} } } },
      'messageFilter.headers.t',
    ],
    [
      'an object to compare with',
      { messageFilter: { payload: { n: { eq: { a: 1 } } } } },
      'messageFilter.payload.n',
    ],
    ['`in` without a list', { messageFilter: { key: { in: 'a' } } }, 'messageFilter.key'],
    ['an unknown filter target', { messageFilter: { body: { a: 1 } } }, 'messageFilter'],
    ['a group with a colon', { consumerGroup: 'a:b' }, 'consumerGroup'],
    ['a consumer with braces', { consumerName: 'a{b}' }, 'consumerName'],
    ['maxPollRecords 0', { maxPollRecords: 0 }, 'maxPollRecords'],
    ['sessionTimeoutMs below a second', { sessionTimeoutMs: 10 }, 'sessionTimeoutMs'],
    ['an unknown backoff', { retryBackoff: 'linear' }, 'retryBackoff'],
    ['the queue as its own dead-letter queue', { deadLetterQueue: 'orders' }, 'deadLetterQueue'],
    ['an unknown field', { colour: 'blue' }, ''],
  ])('%s is 400 MQ_VALIDATION_FAILED naming its path', async (_what, body, path) => {
    const { app, tenant } = await setup()
    const res = await call(app, 'POST', S, {
      tenant,
      body: { ...minimal, ...body },
    })
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    expect(res.body.details.issues.map((i: { path: string }) => i.path)).toContain(path)
    expect((await call(app, 'GET', S, { tenant })).body.items).toEqual([])
  })

  test('PUT may not change queue, group, consumer, type or status, nor drop a webhook url', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {
      consumerGroup: 'g',
      consumerName: 'c',
      subscriptionType: 'webhook',
      handlerConfig: { url: 'https://example.com/hook' },
    })
    for (const body of [
      { queue: 'other' },
      { consumerGroup: 'h' },
      { consumerName: 'd' },
      { subscriptionType: 'redis_consumer' },
      { status: 'paused' },
      { handlerConfig: { method: 'PUT' } },
      { deadLetterQueue: 'orders' },
    ]) {
      const res = await call(app, 'PUT', `${S}/${sub.id}`, { tenant, body })
      expect(res.status).toBe(400)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    }
    const after = await call(app, 'GET', `${S}/${sub.id}`, { tenant })
    expect(after.body).toMatchObject({
      consumerGroup: 'g',
      status: 'active',
      deadLetterQueue: 'orders.dlq',
    })
  })

  test('an unknown id is 404 on every route; a malformed one is 400', async () => {
    const { app, tenant } = await setup()
    const routes = (id: string) =>
      [
        ['GET', `${S}/${id}`],
        ['PUT', `${S}/${id}`, { maxPollRecords: 1 }],
        ['DELETE', `${S}/${id}`],
        ['POST', `${S}/${id}/pause`],
        ['POST', `${S}/${id}/resume`],
      ] as const
    for (const [method, path, body] of routes(crypto.randomUUID())) {
      const res = await call(app, method, path, { tenant, body })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe('MQ_SUBSCRIPTION_NOT_FOUND')
    }
    for (const [method, path, body] of routes('not-a-uuid')) {
      const res = await call(app, method, path, { tenant, body })
      expect(res.status).toBe(400)
      expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    }
    const badCursor = await call(app, 'GET', `${S}?cursor=garbage`, { tenant })
    expect(badCursor.status).toBe(400)
  })

  test('a subscription goes with its queue, even while cached, and stays gone', async () => {
    const { app, tenant } = await setup()
    const sub = await subscribe(app, tenant, {})
    expect((await call(app, 'GET', `${S}/${sub.id}`, { tenant })).status).toBe(200)
    expect((await call(app, 'DELETE', `${Q}/orders`, { tenant })).status).toBe(204)
    expect((await call(app, 'GET', `${S}/${sub.id}`, { tenant })).status).toBe(404)
    await call(app, 'POST', Q, { tenant, body: { name: 'orders' } })
    const res = await call(app, 'POST', `${S}/${sub.id}/pause`, { tenant })
    expect(res.status).toBe(404)
    expect(res.body.code).toBe('MQ_SUBSCRIPTION_NOT_FOUND')
  })

  test('when the group cannot be created no subscription is left behind', async () => {
    const deps = await sharedDeps()
    const messages = Object.create(deps.messages) as typeof deps.messages
    messages.ensureGroup = () => Promise.reject(new Error('simulated failure'))
    const app = createApp({ ...deps, subscriptionDeps: { ...deps.subscriptionDeps, messages } })
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'orders' } })
    const res = await call(app, 'POST', S, {
      tenant,
      body: minimal,
    })
    expect(res.status).toBe(500)
    expect((await call(app, 'GET', S, { tenant })).body.items).toEqual([])
  })
})

describe('subscriptions: security', () => {
  test("another tenant's subscription answers 404 on every route, like a missing one", async () => {
    const { app, tenant: owner } = await setup()
    const sub = await subscribe(app, owner, {})
    const other = newTenant()
    await call(app, 'POST', Q, { tenant: other, body: { name: 'orders' } })
    for (const [method, path, body] of [
      ['GET', `${S}/${sub.id}`],
      ['PUT', `${S}/${sub.id}`, { maxPollRecords: 1 }],
      ['DELETE', `${S}/${sub.id}`],
      ['POST', `${S}/${sub.id}/pause`],
      ['POST', `${S}/${sub.id}/resume`],
    ] as const) {
      const res = await call(app, method, path, { tenant: other, body })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe('MQ_SUBSCRIPTION_NOT_FOUND')
    }
    expect((await call(app, 'GET', S, { tenant: other })).body.items).toEqual([])
    const still = await call(app, 'GET', `${S}/${sub.id}`, { tenant: owner })
    expect(still.body).toMatchObject({ status: 'active', maxPollRecords: 500 })
    expect((await groupsOf(owner, 'orders', 0)).map((g) => g.name)).toEqual(['g'])
  })

  test('another tenant cannot subscribe to a private queue by its name', async () => {
    const { app } = await setup('private-q')
    const res = await call(app, 'POST', S, {
      tenant: newTenant(),
      body: { ...minimal, queue: 'private-q' },
    })
    expect(res.status).toBe(404)
    expect(res.body.code).toBe('MQ_QUEUE_NOT_FOUND')
  })

  test('writes need mq:consume, reads mq:read; mq:admin does all', async () => {
    const { app, tenant } = await setup()
    for (const scope of ['mq:read', 'mq:publish', 'mq:read mq:publish']) {
      const res = await call(app, 'POST', S, { tenant, scope, body: minimal })
      expect(res.status).toBe(403)
      expect(res.body.code).toBe('MQ_FORBIDDEN')
    }
    const sub = await subscribe(app, tenant, {})
    for (const [method, path, payload] of [
      ['PUT', `${S}/${sub.id}`, { maxPollRecords: 1 }],
      ['DELETE', `${S}/${sub.id}`],
      ['POST', `${S}/${sub.id}/pause`],
      ['POST', `${S}/${sub.id}/resume`],
    ] as const) {
      const res = await call(app, method, path, { tenant, scope: 'mq:read', body: payload })
      expect(res.status).toBe(403)
    }
    expect((await call(app, 'GET', S, { tenant, scope: 'mq:consume' })).status).toBe(403)
    expect((await call(app, 'GET', `${S}/${sub.id}`, { tenant, scope: 'mq:consume' })).status).toBe(
      403
    )
    expect((await call(app, 'GET', `${S}/${sub.id}`, { tenant, scope: 'mq:admin' })).status).toBe(
      200
    )
    expect((await call(app, 'GET', S)).status).toBe(401)
  })

  test("the queue's allowedConsumers decide who may subscribe", async () => {
    const { app, tenant } = await setup('orders', { allowedConsumers: ['billing-svc'] })
    const asSub = async (sub: string, consumerName: string) =>
      call(app, 'POST', S, {
        body: { ...minimal, consumerName },
        headers: { authorization: `Bearer ${await token(tenant, 'mq:consume', { sub })}` },
      })
    const alice = await asSub('alice', 'c1')
    expect(alice.status).toBe(403)
    expect(alice.body.code).toBe('MQ_FORBIDDEN')
    expect((await asSub('billing-svc', 'c2')).status).toBe(201)

    const service = (name?: string) =>
      call(app, 'POST', S, {
        body: { ...minimal, consumerName: `svc-${name ?? 'anonymous'}` },
        headers: {
          'x-service-token': SERVICE_TOKEN,
          'x-tenant-id': tenant,
          ...(name ? { 'x-service-name': name } : {}),
        },
      })
    expect((await service('billing-svc')).status).toBe(201)
    expect((await service('reporting')).status).toBe(403)
    expect((await service()).status).toBe(403)
  })
})
