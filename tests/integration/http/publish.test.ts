import { describe, expect, test } from 'bun:test'
import { BatchResultSchema, PublishResultSchema } from '../../../src/http/schemas/publish'
import { BASE, call } from '../../helpers/api'
import { newTenant, sharedDeps, testApp } from '../../helpers/harness'

async function setup(queue: Record<string, unknown> = {}) {
  const app = await testApp()
  const deps = await sharedDeps()
  const tenant = newTenant()
  const name = (queue.name as string) ?? 'orders'
  const created = await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name, ...queue } })
  expect(created.status).toBe(201)
  const entries = async (partition = 0) =>
    deps.redis.xrange(deps.keys.partition(tenant, name, partition, 'stream'), '-', '+')
  return { app, deps, tenant, name, entries }
}

describe('publish: happy', () => {
  test('one message is stored with its fields and answered 201', async () => {
    const { app, tenant, entries } = await setup()
    const res = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      scope: 'mq:publish',
      body: {
        queue: 'orders',
        payload: { total: 42, items: ['a'] },
        headers: { type: 'order.created' },
        key: 'customer-42',
        correlationId: 'corr-1',
        traceId: 'trace-1',
      },
    })
    expect(res.status).toBe(201)
    const out = PublishResultSchema.parse(res.body)
    expect(out).toMatchObject({ queue: 'orders', partition: 0, status: 'published' })
    expect(out.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/)
    const [entry] = await entries()
    const fields = Object.fromEntries(
      (entry![1] as string[]).flatMap((v, i, a) => (i % 2 ? [] : [[v, a[i + 1]]]))
    )
    expect(fields).toMatchObject({
      i: out.messageId,
      p: '{"total":42,"items":["a"]}',
      h: '{"type":"order.created"}',
      k: 'customer-42',
      c: 'corr-1',
      t: 'trace-1',
    })
  })

  test('POST /topics/{name}/publish publishes to the named queue', async () => {
    const { app, tenant, entries } = await setup()
    const res = await call(app, 'POST', `${BASE}/topics/orders/publish`, {
      tenant,
      body: { payload: 'hi' },
    })
    expect(res.status).toBe(201)
    expect(res.body.queue).toBe('orders')
    expect(await entries()).toHaveLength(1)
  })

  test('batch results come in input order; one invalid message stores nothing', async () => {
    const { app, tenant, entries } = await setup({ partitionCount: 3 })
    const messages = Array.from({ length: 30 }, (_, i) => ({ payload: { i }, key: `k${i % 7}` }))
    const res = await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: { queue: 'orders', messages },
    })
    expect(res.status).toBe(201)
    const out = BatchResultSchema.parse(res.body)
    expect(out).toMatchObject({ queue: 'orders', published: 30, duplicates: 0 })
    const counts = await Promise.all([0, 1, 2].map(async (p) => (await entries(p)).length))
    expect(counts.reduce((a, b) => a + b)).toBe(30)

    const bad = await call(app, 'POST', `${BASE}/publish/batch`, {
      tenant,
      body: {
        queue: 'orders',
        messages: [{ payload: 1 }, { payload: 2, ttlMs: -5 }, { payload: 3 }],
      },
    })
    expect(bad.status).toBe(400)
    expect(bad.body.details.index).toBe(1)
    expect(bad.body.details.issues[0].path).toBe('messages.1.ttlMs')
    const after = await Promise.all([0, 1, 2].map(async (p) => (await entries(p)).length))
    expect(after.reduce((a, b) => a + b)).toBe(30)
  })

  test('a key always routes to one partition, in publish order', async () => {
    const { app, tenant, entries } = await setup({ partitionCount: 4 })
    for (let i = 0; i < 20; i++) {
      for (const key of ['alice', 'bob', 'carol']) {
        await call(app, 'POST', `${BASE}/publish`, {
          tenant,
          body: { queue: 'orders', payload: { key, i }, key },
        })
      }
    }
    const seen = new Map<string, { partition: number; order: number[] }>()
    for (const p of [0, 1, 2, 3]) {
      for (const [, fields] of await entries(p)) {
        const payload = JSON.parse(fields[fields.indexOf('p') + 1]!) as { key: string; i: number }
        const s = seen.get(payload.key) ?? { partition: p, order: [] }
        expect(s.partition).toBe(p)
        s.order.push(payload.i)
        seen.set(payload.key, s)
      }
    }
    for (const s of seen.values()) expect(s.order).toEqual(Array.from({ length: 20 }, (_, i) => i))
  })

  test('50 concurrent publishes of one messageId store exactly one message', async () => {
    const { app, tenant, entries } = await setup({ partitionCount: 4 })
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        call(app, 'POST', `${BASE}/publish`, {
          tenant,
          body: { queue: 'orders', payload: 1, messageId: 'order-1' },
        })
      )
    )
    expect(results.filter((r) => r.status === 201)).toHaveLength(1)
    expect(results.filter((r) => r.status === 200 && r.body.duplicate === true)).toHaveLength(49)
    const first = results.find((r) => r.status === 201)!.body
    for (const r of results) {
      expect(r.body).toMatchObject({
        messageId: 'order-1',
        partition: first.partition,
        publishedAt: first.publishedAt,
      })
    }
    const counts = await Promise.all([0, 1, 2, 3].map(async (p) => (await entries(p)).length))
    expect(counts.reduce((a, b) => a + b)).toBe(1)
  })

  test('Idempotency-Key stands in for a missing messageId', async () => {
    const { app, tenant, entries } = await setup()
    const send = () =>
      call(app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'orders', payload: 1 },
        headers: { 'idempotency-key': 'req-77' },
      })
    expect((await send()).status).toBe(201)
    const again = await send()
    expect(again).toMatchObject({ status: 200, body: { messageId: 'req-77', duplicate: true } })
    expect(await entries()).toHaveLength(1)
  })

  test('encrypted queue: no plaintext in Redis', async () => {
    const { app, tenant, entries } = await setup({ encrypted: true })
    const secret = 'card-4111-1111-1111-1111'
    expect(
      (
        await call(app, 'POST', `${BASE}/publish`, {
          tenant,
          body: { queue: 'orders', payload: { secret } },
        })
      ).status
    ).toBe(201)
    const [entry] = await entries()
    const raw = JSON.stringify(entry)
    expect(raw).not.toContain(secret)
    expect(raw).toContain('"e","1"')
  })
})

describe('publish: errors', () => {
  test('schemas with the same $id in two tenants both work', async () => {
    const schema = {
      $id: 'https://example.com/order.json',
      type: 'object',
      required: ['total'],
      properties: { total: { type: 'number' }, parts: { type: 'array', items: { $ref: '#' } } },
    }
    const first = await setup({ schema })
    // Another tenant, and the queue reloaded from the database: each compiles the schema again.
    const second = await setup({ schema })
    for (const { app, tenant } of [first, second]) {
      const publish = (payload: unknown) =>
        call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: 'orders', payload } })
      expect((await publish({ total: 1, parts: [{ total: 2 }] })).status).toBe(201)
      const bad = await publish({ total: 1, parts: [{ total: 'x' }] })
      expect(bad.status).toBe(400)
      expect(bad.body.details.issues[0].path).toBe('/parts/0/total')
    }
  })

  test('missing queue 404, paused 409, too large 413, schema 400', async () => {
    const { app, tenant } = await setup({
      schema: { type: 'object', required: ['total'], properties: { total: { type: 'number' } } },
    })
    const missing = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'nope', payload: 1 },
    })
    expect(missing.body.code).toBe('MQ_QUEUE_NOT_FOUND')

    const schema = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: { total: 'x' } },
    })
    expect(schema.status).toBe(400)
    expect(schema.body.code).toBe('MQ_VALIDATION_FAILED')
    expect(schema.body.details.issues[0].path).toBe('/total')
    expect(
      (
        await call(app, 'POST', `${BASE}/publish`, {
          tenant,
          body: { queue: 'orders', payload: { total: 1 } },
        })
      ).status
    ).toBe(201)

    const big = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: { total: 1, pad: 'x'.repeat(1_048_577) } },
    })
    expect(big.status).toBe(413)
    expect(big.body.code).toBe('MQ_MESSAGE_TOO_LARGE')

    await call(app, 'PUT', `${BASE}/queues/orders`, { tenant, body: { status: 'paused' } })
    const paused = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: { total: 1 } },
    })
    expect(paused.status).toBe(409)
    expect(paused.body.code).toBe('MQ_QUEUE_PAUSED')
  })

  test('an invalid JSON Schema is refused when the queue is created', async () => {
    const app = await testApp()
    const res = await call(app, 'POST', `${BASE}/queues`, {
      tenant: newTenant(),
      body: { name: 'q', schema: { type: 'no-such-type' } },
    })
    expect(res.status).toBe(400)
    expect(res.body.details.issues[0].path).toBe('schema')
  })

  test('overflow reject: 429 MQ_QUEUE_FULL at maxLength, room again once consumed', async () => {
    const { app, deps, tenant, name } = await setup({ maxLength: 3 })
    const stream = deps.keys.partition(tenant, name, 0, 'stream')
    await deps.redis.xgroup('CREATE', stream, 'g', '0', 'MKSTREAM')
    for (let i = 0; i < 3; i++) {
      expect(
        (await call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: name, payload: i } }))
          .status
      ).toBe(201)
    }
    const full = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: name, payload: 3 },
    })
    expect(full.status).toBe(429)
    expect(full.body).toMatchObject({ code: 'MQ_QUEUE_FULL', retryAfter: 1 })
    expect(full.headers.get('retry-after')).toBe('1')
    // Read but unacknowledged entries are not trimmed to make room.
    const read = (await deps.redis.xreadgroup(
      'GROUP',
      'g',
      'c',
      'COUNT',
      2,
      'STREAMS',
      stream,
      '>'
    )) as [string, Array<[string, string[]]>][]
    expect(
      (await call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: name, payload: 3 } }))
        .status
    ).toBe(429)
    await deps.redis.xack(stream, 'g', read[0]![1][0]![0])
    expect(
      (await call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: name, payload: 3 } }))
        .status
    ).toBe(201)
    expect(await deps.redis.xlen(stream)).toBe(3)
  })

  test('overflow drop_oldest trims the oldest to make room', async () => {
    const { app, tenant, entries } = await setup({ maxLength: 2, overflow: 'drop_oldest' })
    for (let i = 0; i < 5; i++) {
      expect(
        (
          await call(app, 'POST', `${BASE}/publish`, {
            tenant,
            body: { queue: 'orders', payload: i },
          })
        ).status
      ).toBe(201)
    }
    const left = (await entries()).map(([, f]) => f[f.indexOf('p') + 1])
    expect(left).toEqual(['3', '4'])
  })

  test.each([
    [{ queue: 'orders' }, 'payload'],
    [{ queue: 'orders', payload: 1, delayMs: 5, deliverAt: '2030-01-01T00:00:00Z' }, 'deliverAt'],
    [{ queue: 'orders', payload: 1, messageId: 'has space' }, 'messageId'],
    [{ queue: 'orders', payload: 1, extra: true }, ''],
  ])('invalid message %j is 400 at %s', async (body, path) => {
    const { app, tenant } = await setup()
    const res = await call(app, 'POST', `${BASE}/publish`, { tenant, body })
    expect(res.status).toBe(400)
    expect(res.body.details.issues.map((i: { path: string }) => i.path)).toContain(path)
  })
})

describe('publish: security', () => {
  test("another tenant's queue is 404; mq:read cannot publish; allowedProducers holds", async () => {
    const { app, tenant } = await setup({ allowedProducers: ['billing'] })
    const other = await call(app, 'POST', `${BASE}/publish`, {
      tenant: newTenant(),
      body: { queue: 'orders', payload: 1 },
    })
    expect(other.status).toBe(404)
    expect(other.body.code).toBe('MQ_QUEUE_NOT_FOUND')
    const reader = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      scope: 'mq:read',
      body: { queue: 'orders', payload: 1 },
    })
    expect(reader.status).toBe(403)
    const stranger = await call(app, 'POST', `${BASE}/publish`, {
      tenant,
      body: { queue: 'orders', payload: 1 },
    })
    expect(stranger.status).toBe(403)
  })
})
