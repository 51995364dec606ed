import { afterEach, describe, expect, test } from 'bun:test'
import { createApp } from '../../../src/app'
import { ErrorSchema } from '../../../src/http/schemas/common'
import { HealthSchema, PingSchema, StatusSchema } from '../../../src/http/schemas/health'
import { BASE, call } from '../../helpers/api'
import { newTenant, SERVICE_TOKEN, sharedDeps, testApp } from '../../helpers/harness'
import { type OutageDeps, startOutageDeps, timed } from '../../helpers/outage'

const Q = `${BASE}/queues`

describe('health: happy', () => {
  test.each(['/health', `${BASE}/health`])(
    'GET %s answers 200 with the seed shape, no credentials needed',
    async (path) => {
      const app = await testApp()
      const res = await call(app, 'GET', path)
      expect(res.status).toBe(200)
      const report = HealthSchema.parse(res.body)
      expect(report.status).not.toBe('unhealthy')
      expect(report.service).toBe('message-queue-service')
      for (const check of ['redisStreams', 'database', 'queues', 'consumers'] as const) {
        expect(report.checks[check]).toBe('healthy')
        expect(report.details[check].status).toBe('healthy')
        expect(report.details[check].latencyMs).toBeGreaterThanOrEqual(0)
      }
      expect(Number.isNaN(Date.parse(report.timestamp))).toBe(false)
      expect(report.metrics).toMatchObject({ messageQueue: { totalQueues: expect.any(Number) } })
    }
  )

  test('the health check leaves no scratch key behind', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    await call(app, 'GET', '/health')
    expect(await deps.redis.exists(deps.keys.healthStream(process.pid))).toBe(0)
  })

  test('GET /health/ping answers pong with a latency', async () => {
    const app = await testApp()
    const res = await call(app, 'GET', `${BASE}/health/ping`)
    expect(res.status).toBe(200)
    const pong = PingSchema.parse(res.body)
    expect(pong.latency).toBeGreaterThanOrEqual(0)
    expect(pong.latency).toBeLessThan(1000)
    expect(Math.abs(Date.parse(pong.timestamp) - Date.now())).toBeLessThan(5000)
  })
})

describe('status', () => {
  test('a tenant with mq:admin sees only its own queues, with live stats', async () => {
    const deps = await sharedDeps()
    const app = await testApp()
    const [tenant, other] = [newTenant(), newTenant()]
    for (const name of ['alpha', 'beta']) {
      expect((await call(app, 'POST', Q, { tenant, body: { name } })).status).toBe(201)
    }
    await call(app, 'POST', Q, { tenant: other, body: { name: 'gamma' } })
    const lastId = await deps.redis.xadd(
      deps.keys.partition(tenant, 'alpha', 0, 'stream'),
      '*',
      'm',
      '1'
    )

    const res = await call(app, 'GET', `${BASE}/status`, { tenant })
    expect(res.status).toBe(200)
    const status = StatusSchema.parse(res.body)
    expect(status.status).toBe('running')
    expect(status.redis.version).toMatch(/^\d+\.\d+/)
    expect(status.redis.connectedClients).toBeGreaterThan(0)
    expect(status.application.pid).toBe(process.pid)
    expect(status.queues.map((q) => q.name).sort()).toEqual(['alpha', 'beta'])
    expect(status.queues.find((q) => q.name === 'alpha')).toEqual({
      name: 'alpha',
      status: 'active',
      length: 1,
      pending: 0,
      scheduled: 0,
      consumerGroups: 0,
      lastMessageId: lastId,
      ledgerGap: 0,
    })
    // The tenant's own view does not name tenants.
    expect(status.queues.every((q) => q.tenantId === undefined)).toBe(true)
  })

  test('the service token naming a tenant gets that tenant’s view', async () => {
    const app = await testApp()
    const tenant = newTenant()
    await call(app, 'POST', Q, { tenant, body: { name: 'svc-view' } })
    const res = await call(app, 'GET', `${BASE}/status`, {
      headers: { 'x-service-token': SERVICE_TOKEN, 'x-tenant-id': tenant },
    })
    expect(res.status).toBe(200)
    expect(StatusSchema.parse(res.body).queues.map((q) => q.name)).toEqual(['svc-view'])
  })

  test('status needs mq:admin: 403 with mq:read, 401 without credentials', async () => {
    const app = await testApp()
    const tenant = newTenant()
    for (const scope of ['mq:read', 'mq:publish mq:consume mq:read']) {
      const res = await call(app, 'GET', `${BASE}/status`, { tenant, scope })
      expect(res.status).toBe(403)
      expect(ErrorSchema.parse(res.body).code).toBe('MQ_FORBIDDEN')
    }
    const anonymous = await call(app, 'GET', `${BASE}/status`)
    expect(anonymous.status).toBe(401)
  })
})

describe('health: unhealthy', () => {
  let outage: OutageDeps | undefined
  afterEach(async () => {
    await outage?.close()
    outage = undefined
  })

  async function outageApp() {
    outage = await startOutageDeps()
    const app = createApp(outage.deps)
    expect((await call(app, 'GET', '/health')).status).toBe(200)
    return app
  }

  test('Redis killed: /health is 503 unhealthy naming redisStreams; ping and status are 503', async () => {
    const app = await outageApp()
    outage!.kill()
    await Bun.sleep(100)
    for (const path of ['/health', `${BASE}/health`]) {
      const res = await call(app, 'GET', path)
      expect(res.status).toBe(503)
      const report = HealthSchema.parse(res.body)
      expect(report.status).toBe('unhealthy')
      expect(report.checks.redisStreams).toBe('unhealthy')
      // Why it failed is not for anonymous callers (it names hosts and ports).
      expect(report.details.redisStreams).not.toHaveProperty('message')
      expect(report.checks.database).toBe('healthy')
    }
    const ping = await call(app, 'GET', `${BASE}/health/ping`)
    expect(ping.status).toBe(503)
    expect(ErrorSchema.parse(ping.body)).toMatchObject({ code: 'MQ_UNAVAILABLE', retryAfter: 1 })
    const status = await call(app, 'GET', `${BASE}/status`, {
      headers: { 'x-service-token': SERVICE_TOKEN },
    })
    expect(status.status).toBe(503)
    expect(ErrorSchema.parse(status.body).code).toBe('MQ_UNAVAILABLE')
  })

  test('Redis frozen: /health answers 503 within 2 s instead of hanging, and recovers', async () => {
    const app = await outageApp()
    outage!.freeze()
    const { result, ms } = await timed(() => call(app, 'GET', '/health'))
    expect(result.status).toBe(503)
    expect(HealthSchema.parse(result.body).checks.redisStreams).toBe('unhealthy')
    expect(ms).toBeLessThan(2000)
    const ping = await timed(() => call(app, 'GET', `${BASE}/health/ping`))
    expect(ping.result.status).toBe(503)
    expect(ping.ms).toBeLessThan(2000)
    outage!.thaw()
    let status = 0
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await call(app, 'GET', '/health')).status
      if (status !== 200) await Bun.sleep(100)
    }
    expect(status).toBe(200)
  })
})
