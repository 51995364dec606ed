import { describe, expect, test } from 'bun:test'
import { createApp } from '../../../src/app'
import { QueueListSchema, QueueSchema } from '../../../src/http/schemas/queues'
import { BASE, call } from '../../helpers/api'
import { newTenant, sharedDeps, testApp, token } from '../../helpers/harness'

const Q = `${BASE}/queues`

describe('queues: happy', () => {
  test('create, get with stats, list, update, purge, delete', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const created = await call(app, 'POST', Q, {
      tenant,
      body: { name: 'orders', partitionCount: 2, description: 'order events' },
    })
    expect(created.status).toBe(201)
    const queue = QueueSchema.parse(created.body)
    expect(queue).toMatchObject({
      name: 'orders',
      displayName: 'orders',
      partitionCount: 2,
      overflow: 'reject',
      retentionMs: 604_800_000,
      maxLength: 10_000,
      status: 'active',
      type: 'redis_stream',
    })
    expect(created.body.tenantId).toBeUndefined()

    const got = await call(app, 'GET', `${Q}/orders`, { tenant, scope: 'mq:read' })
    expect(got.status).toBe(200)
    expect(QueueSchema.parse(got.body).stats).toEqual({
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: null,
      ledgerGap: 0,
    })

    const updated = await call(app, 'PUT', `${Q}/orders`, {
      tenant,
      body: { status: 'paused', maxLength: 5, displayName: 'Orders' },
    })
    expect(updated.status).toBe(200)
    expect(updated.body).toMatchObject({ status: 'paused', maxLength: 5, displayName: 'Orders' })
    expect(new Date(updated.body.updatedAt).getTime()).toBeGreaterThanOrEqual(
      new Date(queue.updatedAt).getTime()
    )

    const purged = await call(app, 'POST', `${Q}/orders/purge`, { tenant })
    expect(purged).toMatchObject({ status: 200, body: { purged: 0 } })

    expect((await call(app, 'DELETE', `${Q}/orders`, { tenant })).status).toBe(204)
    expect((await call(app, 'GET', `${Q}/orders`, { tenant })).status).toBe(404)
  })

  test('stats and purge see what is in the streams; delete removes every key', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'stats.q', partitionCount: 2 } })
    const stream = (p: number) => deps.keys.partition(tenant, 'stats.q', p, 'stream')
    await deps.redis.xgroup('CREATE', stream(0), 'g1', '0', 'MKSTREAM')
    await deps.redis.xgroup('CREATE', stream(1), 'g1', '0', 'MKSTREAM')
    await deps.redis.xadd(stream(0), '*', 'm', '1')
    await deps.redis.xadd(stream(1), '*', 'm', '2')
    const lastId = await deps.redis.xadd(stream(1), '*', 'm', '3')
    await deps.redis.xreadgroup('GROUP', 'g1', 'c1', 'COUNT', 1, 'STREAMS', stream(1), '>')
    await deps.redis.zadd(
      deps.keys.partition(tenant, 'stats.q', 0, 'delayed'),
      Date.now() + 60_000,
      'x'
    )

    const got = await call(app, 'GET', `${Q}/stats.q`, { tenant })
    expect(got.body.stats).toEqual({
      length: 3,
      pending: 1,
      scheduled: 1,
      consumerGroups: 1,
      lastMessageId: lastId,
      ledgerGap: 0,
    })

    const purged = await call(app, 'POST', `${Q}/stats.q/purge`, { tenant })
    expect(purged.body).toEqual({ purged: 4 })
    const after = await call(app, 'GET', `${Q}/stats.q`, { tenant })
    expect(after.body.stats).toMatchObject({
      length: 0,
      pending: 0,
      scheduled: 0,
      consumerGroups: 1,
    })
    // Ids stay monotonic across a purge, so an old receipt can never match a new message.
    const next = await deps.redis.xadd(stream(1), '*', 'm', '4')
    expect(next! > lastId!).toBe(true)

    await deps.redis.set(deps.keys.dedup(tenant, 'stats.q', 0, 'm-1'), '1')
    expect((await call(app, 'DELETE', `${Q}/stats.q`, { tenant })).status).toBe(204)
    const left = await deps.redis.keys(`${deps.keys.prefix}:{${tenant}:stats.q:*`)
    expect(left).toEqual([])
  })

  test('list pages by name with a cursor, filtered by prefix and status', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const name of ['b-1', 'a-1', 'a-2', 'a-3']) {
      expect((await call(app, 'POST', Q, { tenant, body: { name } })).status).toBe(201)
    }
    await call(app, 'PUT', `${Q}/a-2`, { tenant, body: { status: 'paused' } })

    const first = await call(app, 'GET', `${Q}?limit=2`, { tenant, scope: 'mq:read' })
    const page1 = QueueListSchema.parse(first.body)
    expect(page1.items.map((q) => q.name)).toEqual(['a-1', 'a-2'])
    expect(page1.nextCursor).toBeString()
    const second = await call(app, 'GET', `${Q}?limit=2&cursor=${page1.nextCursor}`, { tenant })
    expect(second.body.items.map((q: { name: string }) => q.name)).toEqual(['a-3', 'b-1'])
    expect(second.body.nextCursor).toBeNull()

    const prefixed = await call(app, 'GET', `${Q}?prefix=a-&status=active`, { tenant })
    expect(prefixed.body.items.map((q: { name: string }) => q.name)).toEqual(['a-1', 'a-3'])
  })
})

describe('queues: errors', () => {
  test('duplicate name is 409 MQ_QUEUE_EXISTS', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'dup' } })
    const again = await call(app, 'POST', Q, { tenant, body: { name: 'dup' } })
    expect(again.status).toBe(409)
    expect(again.body).toMatchObject({ code: 'MQ_QUEUE_EXISTS', requestId: expect.any(String) })
  })

  test.each([
    [{ name: '' }, 'name'],
    [{ name: '-starts-with-symbol' }, 'name'],
    [{ name: 'has:colon' }, 'name'],
    [{ name: 'a{b}' }, 'name'],
    [{ name: 'x'.repeat(201) }, 'name'],
    [{ name: 'ok', partitionCount: 0 }, 'partitionCount'],
    [{ name: 'ok', overflow: 'explode' }, 'overflow'],
    [{ name: 'ok', unknownField: 1 }, ''],
    [{}, 'name'],
  ])('invalid body %j is 400 naming %s', async (body, path) => {
    const app = await testApp()
    const res = await call(app, 'POST', Q, { tenant: newTenant(), body })
    expect(res.status).toBe(400)
    expect(res.body.code).toBe('MQ_VALIDATION_FAILED')
    expect(res.body.details.issues.map((i: { path: string }) => i.path)).toContain(path)
    // zod 4 issues carry the rejected input; it must not be echoed back.
    expect(res.body.details.issues.every((i: object) => !('input' in i))).toBe(true)
  })

  test('PUT may not change name or partitionCount', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'fixed' } })
    for (const body of [{ name: 'other' }, { partitionCount: 4 }]) {
      const res = await call(app, 'PUT', `${Q}/fixed`, { tenant, body })
      expect(res.status).toBe(400)
    }
  })

  test('missing queue is 404 MQ_QUEUE_NOT_FOUND for get, update, delete and purge', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const [method, path, body] of [
      ['GET', `${Q}/nope`],
      ['PUT', `${Q}/nope`, { description: 'x' }],
      ['DELETE', `${Q}/nope`],
      ['POST', `${Q}/nope/purge`],
    ] as const) {
      const res = await call(app, method, path, { tenant, body })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe('MQ_QUEUE_NOT_FOUND')
    }
  })

  test('malformed JSON is 400 MQ_INVALID_JSON; wrong content type is 415', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const empty = await call(app, 'POST', Q, { tenant })
    expect(empty.body.code).toBe('MQ_VALIDATION_FAILED')
    const malformed = await app.request(Q, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${await token(tenant)}`,
        'content-type': 'application/json',
      },
      body: '{"name": ',
    })
    expect(malformed.status).toBe(400)
    expect(((await malformed.json()) as { code: string }).code).toBe('MQ_INVALID_JSON')
    const text = await call(app, 'POST', Q, {
      tenant,
      body: { name: 'x' },
      headers: { 'content-type': 'text/plain' },
    })
    expect(text.status).toBe(415)
    expect(text.body.code).toBe('MQ_UNSUPPORTED_MEDIA_TYPE')
  })

  test('the tenant queue cap answers 429 MQ_RATE_LIMITED', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const capped = { ...deps.queueDeps, maxQueuesPerTenant: 2 }
    const cappedApp = createApp({ ...deps, queueDeps: capped })
    const tenant = newTenant()
    expect((await call(cappedApp, 'POST', Q, { tenant, body: { name: 'one' } })).status).toBe(201)
    expect((await call(cappedApp, 'POST', Q, { tenant, body: { name: 'two' } })).status).toBe(201)
    const third = await call(cappedApp, 'POST', Q, { tenant, body: { name: 'three' } })
    expect(third.status).toBe(429)
    expect(third.body.code).toBe('MQ_RATE_LIMITED')
    expect(third.headers.get('retry-after')).toBe('60')
    // Another tenant is not held to the first one's count.
    expect(
      (await call(app, 'POST', Q, { tenant: newTenant(), body: { name: 'one' } })).status
    ).toBe(201)
  })
})

describe('queues: security', () => {
  test("another tenant's queue answers 404 exactly like a missing one", async () => {
    const app = await testApp()
    const owner = newTenant()
    const other = newTenant()
    await call(app, 'POST', Q, { tenant: owner, body: { name: 'private' } })
    const missing = await call(app, 'GET', `${Q}/never-existed`, { tenant: other })
    for (const [method, path, body] of [
      ['GET', `${Q}/private`],
      ['PUT', `${Q}/private`, { description: 'stolen' }],
      ['DELETE', `${Q}/private`],
      ['POST', `${Q}/private/purge`],
    ] as const) {
      const res = await call(app, method, path, { tenant: other, body })
      expect(res.status).toBe(404)
      expect(res.body.code).toBe(missing.body.code)
    }
    const listed = await call(app, 'GET', Q, { tenant: other })
    expect(listed.body.items).toEqual([])
    // Same name in another tenant is a different queue.
    expect((await call(app, 'POST', Q, { tenant: other, body: { name: 'private' } })).status).toBe(
      201
    )
    const still = await call(app, 'GET', `${Q}/private`, { tenant: owner })
    expect(still.body.description).toBe('')
  })

  test('writes need mq:admin; reads need mq:read', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const forbidden = await call(app, 'POST', Q, {
      tenant,
      scope: 'mq:read mq:publish',
      body: { name: 'x' },
    })
    expect(forbidden.status).toBe(403)
    expect(forbidden.body.code).toBe('MQ_FORBIDDEN')
    expect((await call(app, 'GET', Q, { tenant, scope: 'mq:publish' })).status).toBe(403)
    expect((await call(app, 'GET', Q, { tenant, scope: 'mq:read' })).status).toBe(200)
  })
})
