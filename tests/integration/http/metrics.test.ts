import { describe, expect, test } from 'bun:test'
import { ErrorSchema } from '../../../src/http/schemas/common'
import {
  ConsumerMetricsListSchema,
  MessageQueueMetricsSchema,
  TopicMetricsListSchema,
} from '../../../src/http/schemas/metrics'
import { createLogger } from '../../../src/observability/logger'
import { createMetrics } from '../../../src/wiring/metrics'
import { workerLoops } from '../../../src/wiring/worker'
import { BASE, call } from '../../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp } from '../../helpers/harness'

type App = Awaited<ReturnType<typeof testApp>>

/** The value of one series in Prometheus text, or undefined when it is absent. */
function series(
  text: string,
  name: string,
  labels: Record<string, string> = {}
): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue
    const inner = /\{(.*)\}/.exec(line)?.[1] ?? ''
    const have = inner ? inner.split(',') : []
    if (wanted.length === have.length && wanted.every((w) => have.includes(w))) {
      return Number(line.slice(line.lastIndexOf(' ') + 1))
    }
  }
  return undefined
}

async function scrape(app: App, headers: Record<string, string> = {}): Promise<string> {
  const res = await app.request('/metrics', { headers })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toContain('text/plain; version=0.0.4')
  return res.text()
}

/** A tenant with queue `name`, one pull subscription at the start, and `n` messages in it. */
async function flowing(app: App, name: string, n: number, partitionCount = 2) {
  const tenant = newTenant()
  expect(
    (await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name, partitionCount } })).status
  ).toBe(201)
  const sub = await call(app, 'POST', `${BASE}/subscriptions`, {
    tenant,
    body: {
      queue: name,
      consumerGroup: 'billing',
      consumerName: 'b1',
      subscriptionType: 'redis_consumer',
      offsetResetPolicy: 'earliest',
    },
  })
  expect(sub.status).toBe(201)
  const published = await call(app, 'POST', `${BASE}/publish/batch`, {
    tenant,
    body: { queue: name, messages: Array.from({ length: n }, (_, i) => ({ payload: { i } })) },
  })
  expect(published.status).toBe(201)
  return { tenant, subscriptionId: sub.body.id as string }
}

async function pull(app: App, tenant: string, subscriptionId: string, max: number) {
  const res = await call(app, 'POST', `${BASE}/subscriptions/${subscriptionId}/pull`, {
    tenant,
    body: { max },
  })
  expect(res.status).toBe(200)
  return res.body.messages.map((m: { receipt: string }) => m.receipt) as string[]
}

/** Publishes 6, waits, pulls 4, waits, acks 3 and nacks 1 (far into the future). */
async function scenario(app: App, name = 'orders') {
  const flow = await flowing(app, name, 6)
  await Bun.sleep(60)
  const receipts = await pull(app, flow.tenant, flow.subscriptionId, 4)
  expect(receipts).toHaveLength(4)
  await Bun.sleep(40)
  const base = `${BASE}/subscriptions/${flow.subscriptionId}`
  const acked = await call(app, 'POST', `${base}/ack`, {
    tenant: flow.tenant,
    body: { receipts: receipts.slice(0, 3) },
  })
  expect(acked.body).toEqual({ acked: 3 })
  const nacked = await call(app, 'POST', `${base}/nack`, {
    tenant: flow.tenant,
    body: { receipts: receipts.slice(3), delayMs: 600_000 },
  })
  expect(nacked.body).toEqual({ requeued: 1, deadLettered: 0 })
  return flow
}

describe('JSON metrics: happy', () => {
  test('a tenant sees its totals, lag, rates per second over the minute and real latencies', async () => {
    const app = await testApp()
    const { tenant } = await scenario(app)

    const res = await call(app, 'GET', `${BASE}/metrics`, { tenant, scope: 'mq:read' })
    expect(res.status).toBe(200)
    const m = MessageQueueMetricsSchema.parse(res.body)
    expect(m.redisStreams).toEqual({
      totalStreams: 2,
      totalConsumerGroups: 1,
      totalMessages: 6,
      pendingMessages: 1,
    })
    expect(m.consumers).toEqual({
      activeConsumers: 1,
      totalLag: 2,
      processingRate: 0.05,
      errorRate: 0,
    })
    expect(m.performance.throughput).toBe(0.1)
    // Every delivery waited at least 60 ms in the stream.
    expect(m.performance.averageLatency).toBeGreaterThanOrEqual(60)
    expect(m.performance.averageLatency).toBeLessThan(5000)
    expect(m.performance.p95Latency).toBeGreaterThanOrEqual(60)
    expect(m.performance.p99Latency).toBeGreaterThanOrEqual(m.performance.p95Latency)
  })

  test('topics and consumers list the tenant’s queue and subscription with live figures', async () => {
    const app = await testApp()
    const { tenant, subscriptionId } = await scenario(app)

    const topics = await call(app, 'GET', `${BASE}/metrics/topics`, { tenant, scope: 'mq:read' })
    expect(topics.status).toBe(200)
    expect(TopicMetricsListSchema.parse(topics.body).items).toEqual([
      {
        queue: 'orders',
        partitions: 2,
        length: 6,
        pending: 1,
        scheduled: 0,
        lag: 2,
        publishRate: 0.1,
        consumeRate: 0.05,
        consumerGroups: 1,
      },
    ])

    const consumers = await call(app, 'GET', `${BASE}/metrics/consumers`, {
      tenant,
      scope: 'mq:read',
    })
    expect(consumers.status).toBe(200)
    const [item, ...rest] = ConsumerMetricsListSchema.parse(consumers.body).items
    expect(rest).toEqual([])
    expect(item).toMatchObject({
      subscriptionId,
      queue: 'orders',
      consumerGroup: 'billing',
      consumerName: 'b1',
      lag: 2,
      pending: 1,
      delivered: 4,
      acked: 3,
      failed: 0,
      deadLettered: 0,
    })
    expect(item?.tenantId).toBeUndefined()
    // Acked 40 ms or more after the pull: XPENDING's idle time at the ack.
    expect(item?.avgProcessingMs).toBeGreaterThanOrEqual(40)
    expect(item?.avgProcessingMs).toBeLessThan(5000)
    expect(Date.now() - Date.parse(item?.lastConsumedAt ?? '')).toBeLessThan(10_000)
  })

  test('dead letters and redeliveries count as failures in errorRate', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'jobs' } })
    const sub = await call(app, 'POST', `${BASE}/subscriptions`, {
      tenant,
      body: {
        queue: 'jobs',
        consumerGroup: 'g',
        consumerName: 'c',
        subscriptionType: 'redis_consumer',
        offsetResetPolicy: 'earliest',
        maxRetryAttempts: 2,
      },
    })
    await call(app, 'POST', `${BASE}/publish`, { tenant, body: { queue: 'jobs', payload: 1 } })
    const path = `${BASE}/subscriptions/${sub.body.id}`
    for (const expected of [
      { requeued: 1, deadLettered: 0 },
      { requeued: 0, deadLettered: 1 },
    ]) {
      const [receipt] = await pull(app, tenant, sub.body.id, 1)
      const nacked = await call(app, 'POST', `${path}/nack`, {
        tenant,
        body: { receipts: [receipt], delayMs: 0 },
      })
      expect(nacked.body).toEqual(expected)
    }
    const m = MessageQueueMetricsSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics`, { tenant, scope: 'mq:read' })).body
    )
    // One redelivery and one dead letter in the minute.
    expect(m.consumers.errorRate).toBe(Math.round((2 / 60) * 1000) / 1000)
    expect(m.consumers.processingRate).toBe(0)
  })

  test('rates add up across processes: another process’s counts are in the same figures', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const { tenant } = await flowing(app, 'orders', 6, 1)
    // A second process on the same Redis (an api instance or a worker) counting 24 more.
    const other = createMetrics({
      redis: deps.redis,
      keys: deps.keys,
      logger: createLogger('silent'),
      listQueues: async () => [],
      queues: deps.queueDeps.queues,
      subscriptions: deps.subscriptionDeps.subscriptions,
      messages: deps.messages,
    })
    const queue = await deps.queueDeps.queues.get(tenant, 'orders')
    other.metrics.published(queue!, { published: 24, scheduled: 0, duplicate: 3 })
    await other.close()

    const m = MessageQueueMetricsSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics`, { tenant, scope: 'mq:read' })).body
    )
    expect(m.performance.throughput).toBe(0.5)
  })

  test('a service token sees every tenant, with tenantId on items; X-Tenant-Id narrows it', async () => {
    const app = await testApp()
    const a = await flowing(app, 'orders', 2, 1)
    const b = await flowing(app, 'orders', 3, 1)
    const headers = { 'x-service-token': SERVICE_TOKEN }

    const topics = TopicMetricsListSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics/topics`, { headers })).body
    ).items
    expect(topics).toContainEqual(expect.objectContaining({ tenantId: a.tenant, length: 2 }))
    expect(topics).toContainEqual(expect.objectContaining({ tenantId: b.tenant, length: 3 }))
    const consumers = ConsumerMetricsListSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics/consumers`, { headers })).body
    ).items
    expect(consumers.map((c) => c.subscriptionId)).toEqual(
      expect.arrayContaining([a.subscriptionId, b.subscriptionId])
    )
    const all = MessageQueueMetricsSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics`, { headers })).body
    )
    expect(all.redisStreams.totalMessages).toBeGreaterThanOrEqual(5)

    const narrowed = await call(app, 'GET', `${BASE}/metrics/topics`, {
      headers: { ...headers, 'x-tenant-id': b.tenant },
    })
    expect(TopicMetricsListSchema.parse(narrowed.body).items).toEqual([
      expect.objectContaining({ queue: 'orders', length: 3 }),
    ])
    expect(narrowed.body.items[0].tenantId).toBeUndefined()
  })
})

describe('JSON metrics: security', () => {
  test('another tenant sees none of it', async () => {
    const app = await testApp()
    await scenario(app)
    const stranger = newTenant()
    const topics = await call(app, 'GET', `${BASE}/metrics/topics`, { tenant: stranger })
    expect(topics.body).toEqual({ items: [] })
    const consumers = await call(app, 'GET', `${BASE}/metrics/consumers`, { tenant: stranger })
    expect(consumers.body).toEqual({ items: [] })
    const m = MessageQueueMetricsSchema.parse(
      (await call(app, 'GET', `${BASE}/metrics`, { tenant: stranger })).body
    )
    expect(m.redisStreams.totalMessages).toBe(0)
    expect(m.performance.throughput).toBe(0)
  })

  test.each(['', '/topics', '/consumers'])(
    'GET /metrics%s: no credentials 401, no mq:read 403',
    async (suffix) => {
      const app = await testApp()
      const anonymous = await call(app, 'GET', `${BASE}/metrics${suffix}`)
      expect(anonymous.status).toBe(401)
      expect(ErrorSchema.parse(anonymous.body).code).toBe('MQ_UNAUTHORIZED')
      const publisher = await call(app, 'GET', `${BASE}/metrics${suffix}`, {
        tenant: newTenant(),
        scope: 'mq:publish',
      })
      expect(publisher.status).toBe(403)
      expect(ErrorSchema.parse(publisher.body).code).toBe('MQ_FORBIDDEN')
    }
  )
})

describe('Prometheus /metrics', () => {
  test('default process metrics and mq_ series that move when messages flow', async () => {
    const app = await testApp()
    const before = await scrape(app)
    expect(series(before, 'process_cpu_seconds_total')).toBeGreaterThan(0)
    const count = (text: string, name: string, labels?: Record<string, string>) =>
      series(text, name, labels) ?? 0

    await scenario(app)
    const after = await scrape(app)
    const moved = (name: string, labels?: Record<string, string>) =>
      count(after, name, labels) - count(before, name, labels)
    expect(moved('mq_messages_published_total', { outcome: 'published' })).toBe(6)
    expect(moved('mq_messages_delivered_total', { attempt: 'first' })).toBe(4)
    expect(moved('mq_messages_acked_total')).toBe(3)
    expect(moved('mq_messages_nacked_total')).toBe(1)
    expect(moved('mq_publish_to_delivery_seconds_count')).toBe(4)
    // Each of the four waited at least 60 ms: no observation fell in the buckets below 50 ms.
    expect(moved('mq_publish_to_delivery_seconds_bucket', { le: '0.05' })).toBe(0)
    expect(
      moved('mq_http_requests_total', {
        method: 'POST',
        route: '/api/v1/mq/subscriptions/:id/ack',
        status: '200',
      })
    ).toBe(1)
    // Every series is declared once, however many apps share the process's registry.
    expect(after.match(/^# HELP mq_messages_published_total /gm)).toHaveLength(1)
  })

  test('HTTP series are labelled by route pattern, never by the raw path', async () => {
    const app = await testApp()
    const tenant = newTenant()
    const name = `secret-name-${crypto.randomUUID().slice(0, 8)}`
    await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name } })
    expect((await call(app, 'GET', `${BASE}/queues/${name}`, { tenant })).status).toBe(200)
    await call(app, 'GET', `/no/such/${name}`)

    const text = await scrape(app)
    const http = text.split('\n').filter((l) => l.startsWith('mq_http_'))
    expect(http.some((l) => l.includes(name))).toBe(false)
    expect(
      series(text, 'mq_http_requests_total', {
        method: 'GET',
        route: '/api/v1/mq/queues/:name',
        status: '200',
      })
    ).toBeGreaterThanOrEqual(1)
    expect(
      series(text, 'mq_http_requests_total', { method: 'GET', route: 'unmatched', status: '404' })
    ).toBeGreaterThanOrEqual(1)
    expect(
      series(text, 'mq_http_request_duration_seconds_count', {
        method: 'GET',
        route: '/api/v1/mq/queues/:name',
        status: '200',
      })
    ).toBeGreaterThanOrEqual(1)
  })

  test('lag, pending and length per queue are read from Redis at scrape time', async () => {
    const app = await testApp()
    // Named to sort first: only the first queues by name get series.
    const { tenant } = await scenario(app, '0-lagging')
    const text = await scrape(app)
    const labels = { tenant, queue: '0-lagging' }
    expect(series(text, 'mq_queue_lag_messages', labels)).toBe(2)
    expect(series(text, 'mq_queue_pending_messages', labels)).toBe(1)
    expect(series(text, 'mq_queue_length_messages', labels)).toBe(6)
  })

  test('delayed messages promoted by the ticker feed the lateness histogram', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const ticker = workerLoops(deps).find((l) => l.name === 'delayed-ticker')!
    const before = series(await scrape(app), 'mq_delay_lateness_seconds_count') ?? 0
    ticker.start()
    try {
      const tenant = newTenant()
      await call(app, 'POST', `${BASE}/queues`, { tenant, body: { name: 'later' } })
      const res = await call(app, 'POST', `${BASE}/publish`, {
        tenant,
        body: { queue: 'later', payload: 1, delayMs: 100 },
      })
      expect(res.body.status).toBe('scheduled')
      let after = before
      for (let i = 0; i < 50 && after === before; i++) {
        await Bun.sleep(100)
        after = series(await scrape(app), 'mq_delay_lateness_seconds_count') ?? 0
      }
      expect(after).toBeGreaterThan(before)
    } finally {
      await ticker.stop()
    }
  })

  test('METRICS_TOKEN guards it: 401 envelope without the bearer, 200 with it', async () => {
    const app = await testApp({ METRICS_TOKEN: 'scrape-secret-0123' })
    for (const authorization of [undefined, 'Bearer wrong', 'scrape-secret-0123']) {
      const res = await call(app, 'GET', '/metrics', {
        headers: authorization ? { authorization } : {},
      })
      expect(res.status).toBe(401)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_UNAUTHORIZED')
    }
    await scrape(app, { authorization: 'Bearer scrape-secret-0123' })
  })

  test('METRICS_ENABLED=false: 404', async () => {
    const app = await testApp({ METRICS_ENABLED: false })
    const res = await call(app, 'GET', '/metrics')
    expect(res.status).toBe(404)
    expect(ErrorSchema.parse(res.body).code).toBe('MQ_NOT_FOUND')
  })
})
