import { afterEach, describe, expect, test } from 'bun:test'
import { createApp } from '../../../src/app'
import { publishMessage } from '../../../src/domain/publish'
import { ErrorSchema } from '../../../src/http/schemas/common'
import { HealthSchema } from '../../../src/http/schemas/health'
import { InternalQueueStatusSchema } from '../../../src/http/schemas/internal'
import { PeekResultSchema } from '../../../src/http/schemas/messages'
import { MessageQueueMetricsSchema } from '../../../src/http/schemas/metrics'
import { PublishResultSchema } from '../../../src/http/schemas/publish'
import { AuditSink } from '../../../src/observability/audit'
import { createLogger } from '../../../src/observability/logger'
import { BASE, call } from '../../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp } from '../../helpers/harness'

const I = '/internal/mq'
const service = { 'x-service-token': SERVICE_TOKEN }
type App = Awaited<ReturnType<typeof testApp>>

const PUBLISHING = [
  ['user-events', 'user-events'],
  ['user-notifications', 'user-notifications'],
  ['audit-logs', 'audit-logs'],
  ['notifications', 'notifications'],
] as const

/** The payloads in a tenant's queue, oldest first (a non-destructive peek). */
async function payloads(app: App, tenant: string, queue: string): Promise<unknown[]> {
  const res = await call(app, 'GET', `${BASE}/queues/${queue}/messages`, { tenant })
  expect(res.status).toBe(200)
  return PeekResultSchema.parse(res.body).items.map((m) => m.payload)
}

describe('internal API: happy', () => {
  test.each(PUBLISHING)(
    'POST /internal/mq/%s publishes to the tenant’s queue, creating it on first use',
    async (path, queue) => {
      const app = await testApp()
      const tenant = newTenant()
      const first = await call(app, 'POST', `${I}/${path}`, {
        headers: service,
        body: { tenantId: tenant, payload: { n: 1 }, headers: { type: 'signup' }, key: 'u-1' },
      })
      expect(first.status).toBe(201)
      expect(PublishResultSchema.parse(first.body)).toMatchObject({
        queue,
        partition: 0,
        status: 'published',
      })
      // The second call finds the queue; X-Tenant-Id names the tenant just as well.
      const second = await call(app, 'POST', `${I}/${path}`, {
        headers: { ...service, 'x-tenant-id': tenant },
        body: { payload: { n: 2 } },
      })
      expect(second.status).toBe(201)
      expect(await payloads(app, tenant, queue)).toEqual([{ n: 1 }, { n: 2 }])
      const listed = await call(app, 'GET', `${BASE}/queues`, { tenant })
      expect(listed.body.items.map((q: { name: string }) => q.name)).toEqual([queue])
    }
  )

  test('a repeated messageId is a duplicate: 200 with the first message’s ids', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const body = { tenantId: tenant, payload: 'x', messageId: 'evt-1' }
    const first = await call(app, 'POST', `${I}/user-events`, { headers: service, body })
    const again = await call(app, 'POST', `${I}/user-events`, { headers: service, body })
    expect(first.status).toBe(201)
    expect(again.status).toBe(200)
    expect(again.body).toMatchObject({ messageId: 'evt-1', duplicate: true })
    expect(await payloads(app, tenant, 'user-events')).toEqual(['x'])
  })

  test('queue status: 404 before first use, then the queue’s figures', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const [path, queue] of [
      ['audit-queue-status', 'audit-logs'],
      ['notification-queue', 'notifications'],
    ] as const) {
      const before = await call(app, 'GET', `${I}/${path}?tenantId=${tenant}`, { headers: service })
      expect(before.status).toBe(404)
      expect(ErrorSchema.parse(before.body).code).toBe('MQ_QUEUE_NOT_FOUND')
      for (const n of [1, 2, 3]) {
        await call(app, 'POST', `${I}/${queue}`, {
          headers: service,
          body: { tenantId: tenant, payload: n },
        })
      }
      const after = await call(app, 'GET', `${I}/${path}`, {
        headers: { ...service, 'x-tenant-id': tenant },
      })
      expect(after.status).toBe(200)
      expect(InternalQueueStatusSchema.parse(after.body)).toEqual({
        tenantId: tenant,
        queue,
        partitions: 1,
        length: 3,
        pending: 0,
        scheduled: 0,
        lag: 0,
        publishRate: 0.05,
        consumeRate: 0,
        consumerGroups: 0,
      })
    }
  })

  test('metrics cover every tenant; X-Tenant-Id narrows them to one', async () => {
    const app = await testApp()
    const [a, b] = [newTenant(), newTenant()]
    await call(app, 'POST', `${I}/user-events`, {
      headers: service,
      body: { tenantId: a, payload: 1 },
    })
    await call(app, 'POST', `${I}/user-events`, {
      headers: service,
      body: { tenantId: b, payload: 2 },
    })
    const all = await call(app, 'GET', `${I}/metrics`, { headers: service })
    expect(all.status).toBe(200)
    expect(
      MessageQueueMetricsSchema.parse(all.body).redisStreams.totalMessages
    ).toBeGreaterThanOrEqual(2)
    const one = await call(app, 'GET', `${I}/metrics`, {
      headers: { ...service, 'x-tenant-id': b },
    })
    expect(MessageQueueMetricsSchema.parse(one.body).redisStreams).toEqual({
      totalStreams: 1,
      totalConsumerGroups: 0,
      totalMessages: 1,
      pendingMessages: 0,
    })
  })

  test('health-detailed has every check with its status and timing', async () => {
    const app = await testApp()
    // Every test file runs in this one process: collect what earlier files left, so the memory
    // check sees the heap this test needs rather than their garbage.
    Bun.gc(true)
    const res = await call(app, 'GET', `${I}/health-detailed`, { headers: service })
    expect(res.status).toBe(200)
    const report = HealthSchema.parse(res.body)
    for (const check of ['redisStreams', 'database', 'queues', 'consumers', 'memory'] as const) {
      expect(report.details[check].status).toBe('healthy')
      expect(report.details[check].latencyMs).toBeGreaterThanOrEqual(0)
    }
  })
})

describe('internal API: errors', () => {
  test('no tenant, a malformed one, or two different ones: 400', async () => {
    const app = await testApp()
    const cases: Array<{ headers?: Record<string, string>; body: Record<string, unknown> }> = [
      { body: { payload: 1 } },
      { body: { tenantId: 'not-a-uuid', payload: 1 } },
      { headers: { 'x-tenant-id': 'nope' }, body: { payload: 1 } },
      { headers: { 'x-tenant-id': newTenant() }, body: { tenantId: newTenant(), payload: 1 } },
      { body: { tenantId: newTenant() } },
      { body: { tenantId: newTenant(), payload: 1, queue: 'other' } },
    ]
    for (const c of cases) {
      const res = await call(app, 'POST', `${I}/user-events`, {
        headers: { ...service, ...c.headers },
        body: c.body,
      })
      expect(res.status).toBe(400)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_VALIDATION_FAILED')
    }
    const status = await call(app, 'GET', `${I}/audit-queue-status`, { headers: service })
    expect(status.status).toBe(400)
  })

  test('a paused well-known queue answers 409 like any other', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, {
      tenant,
      body: { name: 'notifications', status: 'paused' },
    })
    const res = await call(app, 'POST', `${I}/notifications`, {
      headers: service,
      body: { tenantId: tenant, payload: 1 },
    })
    expect(res.status).toBe(409)
    expect(ErrorSchema.parse(res.body).code).toBe('MQ_QUEUE_PAUSED')
  })
})

describe('internal API: security', () => {
  const routes = [
    ['POST', '/user-events'],
    ['POST', '/user-notifications'],
    ['POST', '/audit-logs'],
    ['GET', '/audit-queue-status'],
    ['POST', '/notifications'],
    ['GET', '/notification-queue'],
    ['GET', '/metrics'],
    ['GET', '/health-detailed'],
  ] as const

  test.each(routes)(
    '%s /internal/mq%s: a JWT, no token or a wrong token is 401',
    async (method, path) => {
      const app = await testApp()
      const tenant = newTenant()
      const body = method === 'POST' ? { tenantId: tenant, payload: 1 } : undefined
      const attempts: Array<{ tenant?: string; headers?: Record<string, string> }> = [
        { tenant },
        {},
        { headers: { 'x-service-token': `${SERVICE_TOKEN}x` } },
        { headers: { authorization: `Bearer ${SERVICE_TOKEN}` } },
      ]
      for (const opts of attempts) {
        const res = await call(app, method, `${I}${path}`, { ...opts, body })
        expect(res.status).toBe(401)
        expect(ErrorSchema.parse(res.body).code).toBe('MQ_UNAUTHORIZED')
      }
    }
  )

  test('nothing was created by the refused calls', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${I}/user-events`, { tenant, body: { tenantId: tenant, payload: 1 } })
    expect((await call(app, 'GET', `${BASE}/queues/user-events`, { tenant })).status).toBe(404)
  })
})

describe('audit events', () => {
  let closers: Array<() => unknown> = []
  afterEach(async () => {
    for (const close of closers) await close()
    closers = []
  })

  test('queue and subscription changes land in the tenant’s audit-logs queue, no secrets', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'audit-logs' } })
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })
    await call(app, 'PUT', `${BASE}/queues/orders`, { tenant, body: { description: 'x' } })
    await call(app, 'POST', `${BASE}/queues/orders/purge`, { tenant })
    const sub = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: {
        queue: 'orders',
        consumerGroup: 'g',
        consumerName: 'c',
        subscriptionType: 'webhook',
        handlerConfig: {
          url: 'https://example.com/hook',
          headers: { authorization: 'hook-secret' },
        },
      },
    })
    expect(sub.status).toBe(201)
    const path = `${BASE}/subscriptions/${sub.body.id}`
    await call(app, 'PUT', path, { tenant, body: { maxRetryAttempts: 5 } })
    await call(app, 'POST', `${path}/pause`, { tenant })
    await call(app, 'POST', `${path}/resume`, { tenant })
    await call(app, 'DELETE', path, { tenant })
    await call(app, 'DELETE', `${BASE}/queues/orders`, { tenant })
    // A refused change is not audited.
    expect((await call(app, 'DELETE', `${BASE}/queues/orders`, { tenant })).status).toBe(404)
    await deps.audit.settled()

    const events = (await payloads(app, tenant, 'audit-logs')) as Array<Record<string, unknown>>
    expect(events.map((e) => [e.operation, e.resource])).toEqual([
      ['queue.created', 'queue:audit-logs'],
      ['queue.created', 'queue:orders'],
      ['queue.updated', 'queue:orders'],
      ['queue.purged', 'queue:orders'],
      ['subscription.created', `subscription:${sub.body.id}`],
      ['subscription.updated', `subscription:${sub.body.id}`],
      ['subscription.paused', `subscription:${sub.body.id}`],
      ['subscription.resumed', `subscription:${sub.body.id}`],
      ['subscription.deleted', `subscription:${sub.body.id}`],
      ['queue.deleted', 'queue:orders'],
    ])
    expect(events[2]).toMatchObject({
      tenantId: tenant,
      actor: { kind: 'user', name: 'tester' },
      details: { fields: ['description'] },
    })
    expect(events[4]?.details).toEqual({
      queue: 'orders',
      consumerGroup: 'g',
      consumerName: 'c',
      subscriptionType: 'webhook',
    })
    const text = JSON.stringify(events)
    expect(text).not.toContain(sub.body.signingSecret)
    expect(text).not.toContain('hook-secret')
  })

  test('a tenant without an audit-logs queue gets none made for it', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })
    await deps.audit.settled()
    expect((await call(app, 'GET', `${BASE}/queues/audit-logs`, { tenant })).status).toBe(404)
  })

  test('events are POSTed to AUDIT_SERVICE_URL; a slow service neither slows nor fails the request', async () => {
    const deps = await sharedDeps()
    const received: Array<{ headers: Headers; body: Record<string, unknown> }> = []
    let delayMs = 0
    const server = Bun.serve({
      hostname: '127.0.0.1',
      port: 0,
      async fetch(req) {
        received.push({ headers: req.headers, body: (await req.json()) as Record<string, unknown> })
        await Bun.sleep(delayMs)
        return new Response(null, { status: 204 })
      },
    })
    closers.push(() => server.stop(true))
    const lines: string[] = []
    const audit = new AuditSink({
      publish: (ctx, queue, input) => publishMessage(deps.publishDeps, ctx, queue, input),
      url: `http://127.0.0.1:${server.port}/internal/audit/events`,
      serviceToken: SERVICE_TOKEN,
      logger: createLogger('warn', { write: (line: string) => lines.push(line) }),
      timeoutMs: 200,
    })
    const app = createApp({ ...deps, audit })
    const tenant = newTenant()

    expect(
      (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'orders' } })).status
    ).toBe(201)
    await audit.settled()
    expect(received).toHaveLength(1)
    expect(received[0]?.headers.get('x-service-token')).toBe(SERVICE_TOKEN)
    expect(received[0]?.headers.get('x-tenant-id')).toBe(tenant)
    expect(received[0]?.body).toMatchObject({
      operation: 'queue.created',
      resource: 'queue:orders',
      tenantId: tenant,
    })
    expect(lines).toEqual([])

    delayMs = 2000
    const start = performance.now()
    const purged = await call(app, 'POST', `${BASE}/queues/orders/purge`, { tenant })
    expect(purged.status).toBe(200)
    expect(performance.now() - start).toBeLessThan(150)
    await audit.settled()
    expect(lines.map((l) => JSON.parse(l).msg)).toEqual([
      'audit event not sent to the audit service',
    ])
  })
})
